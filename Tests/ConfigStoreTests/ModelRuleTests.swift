import ConfigModel
import ConfigStore
import Foundation
import NIOCore
import Testing
import PairModel
import Wire

@Suite struct ModelRuleTests {
    func seeded() throws -> SystemConfiguration {
        var configuration = SystemConfiguration()
        for change: ConfigChange in [
            .putPartyLine(PartyLine(name: "Fire-Ops")), .putOperator(ann()), .putOperator(bob()),
            .setKeys(username: "ann", keys: [talkListen(1, .partyLine("Fire-Ops")), talkListen(2, .operator("bob"))]),
            .setKeys(username: "bob", keys: [talkListen(3, .partyLine("fire-ops"))]),
            .putAdmin(AdminAccount(username: "root", passwordHash: sampleHash, role: .admin)),
        ] {
            (configuration, _) = try configuration.applying(change)
        }
        return configuration
    }

    @Test func namesAreUniqueRegardlessOfCase() throws {
        let configuration = try seeded()
        let (next, recorded) = try configuration.applying(.putOperator(Operator(username: "ANN", displayName: "Ann S.", passwordHash: sampleHash)))
        #expect(next.operators.count == 2, "same operator, replaced")
        guard case .putOperator(let stored) = recorded else { Issue.record("unexpected \(recorded)"); return }
        #expect(stored.id == configuration.operator("ann")!.id, "a replaced operator keeps its number")
    }

    @Test func newEntriesGetFreshIds() throws {
        let configuration = try seeded()
        let (next, _) = try configuration.applying(.putPartyLine(PartyLine(name: "Police")))
        let ids = next.operators.values.map(\.id) + next.partyLines.values.map(\.id)
        #expect(Set(ids).count == ids.count)
    }

    @Test func deletingAPartyLineInUseNamesTheKeys() throws {
        #expect(throws: ConfigError.inUse("party line 'Fire-Ops' is used by keys: ann key 1, bob key 3; change those keys first")) {
            try seeded().applying(.removePartyLine(name: "fire-ops"))
        }
    }

    @Test func deletingAnOperatorOthersCallIsRefused() throws {
        #expect(throws: ConfigError.inUse("operator 'bob' is the target of keys: ann key 2; change those keys first")) {
            try seeded().applying(.removeOperator(username: "bob"))
        }
        // Deleting ann takes her own keys with her.
        let (next, _) = try seeded().applying(.removeOperator(username: "ann"))
        #expect(next.keys(of: "ann").isEmpty)
    }

    @Test func keysMustPointAtSomethingThatExists() throws {
        #expect(throws: ConfigError.invalid(["key 4 of 'ann': party line 'Nowhere' does not exist", "key 5 of 'ann': operator 'zed' does not exist"])) {
            try seeded().applying(.setKeys(username: "ann", keys: [talkListen(4, .partyLine("Nowhere")), talkListen(5, .operator("zed"))]))
        }
    }

    @Test func keyRulesAreAllReportedAtOnce() throws {
        let keys = [
            PanelKey(slot: 0, talk: false, listen: false, target: .operator("ann"), latching: false),
            talkListen(7, .partyLine("Fire-Ops")), talkListen(7, .partyLine("Fire-Ops")),
        ]
        let configuration = try seeded()
        do throws(ConfigError) {
            _ = try configuration.applying(.setKeys(username: "ann", keys: keys))
            Issue.record("must be refused")
        } catch {
            guard case .invalid(let problems) = error else { Issue.record("unexpected \(error)"); return }
            #expect(problems.contains("key 0 of 'ann': slot must be 1 to 64"))
            #expect(problems.contains("key 0 of 'ann': a key must talk, listen or both"))
            #expect(problems.contains("key 0 of 'ann': a key cannot call its own operator"))
            #expect(problems.contains("key 7 of 'ann': slot 7 is used twice"))
        }
    }

    @Test func theLastAdminCannotBeRemoved() throws {
        #expect(throws: ConfigError.inUse("admin 'root' is the last account with the admin role; create another first")) {
            try seeded().applying(.removeAdmin(username: "root"))
        }
    }

    @Test func plaintextPasswordsAreRefused() throws {
        #expect(throws: ConfigError.invalid(["the password of operator 'eve' is not a stored hash"])) {
            try seeded().applying(.putOperator(Operator(username: "eve", displayName: "Eve", passwordHash: "hunter2")))
        }
    }

    @Test func badNamesAndSettingsAreRefused() throws {
        #expect(throws: ConfigError.invalid(["operator username 'ann smith' must be 1 to 64 letters, digits, '.', '_' or '-'"])) {
            try seeded().applying(.putOperator(Operator(username: "ann smith", displayName: "x", passwordHash: sampleHash)))
        }
        #expect(throws: ConfigError.invalid(["setting name 'Site Name' must be 1 to 64 lower-case letters, digits, '.', '_' or '-'"])) {
            try seeded().applying(.setSetting(key: "Site Name", value: "x"))
        }
        #expect(throws: ConfigError.notFound("party line 'Nowhere'")) { try seeded().applying(.removePartyLine(name: "Nowhere")) }
    }
}

@Suite struct CodecTests {
    @Test func everyChangeRoundTripsThroughItsPeerMessage() throws {
        let changes: [ConfigChange] = [
            .putOperator(Operator(id: 9, username: "ann", displayName: "Ann Smith 🎙", passwordHash: sampleHash, enabled: false)),
            .removeOperator(username: "bob"), .putPartyLine(PartyLine(id: 3, name: "Fire-Ops")), .removePartyLine(name: "Police"),
            .setKeys(username: "ann", keys: [talkListen(1, .partyLine("Fire-Ops"), latching: true), PanelKey(slot: 64, talk: false, listen: true, target: .operator("bob"), latching: false)]),
            .setKeys(username: "ann", keys: []),
            .putAdmin(AdminAccount(username: "root", passwordHash: sampleHash, role: .viewer)), .removeAdmin(username: "ops"),
            .setSetting(key: "site.name", value: ""), .removeSetting(key: "site.name"),
        ]
        for (index, change) in changes.enumerated() {
            let record = try ChangeRecord(revision: UInt64(index + 1), epoch: 3, committedAtMs: 1_700_000_000_000, change: change, after: .zero)
            #expect(try ChangeRecord(record.message) == record)
        }
    }

    @Test func aSnapshotRoundTrips() throws {
        let temporary = try TemporaryStore()
        try seed(temporary.store)
        var buffer = ByteBuffer()
        try temporary.store.configuration.write(to: &buffer)
        #expect(try SystemConfiguration(wire: &buffer) == temporary.store.configuration)
    }

    @Test func aForgedKeyCountIsRefused() {
        var buffer = ByteBuffer()
        buffer.writeInteger(5 as UInt8)
        buffer.writeInteger(3 as UInt16)
        buffer.writeString("ann")
        buffer.writeInteger(UInt32.max)
        #expect(throws: WireError.countTooLarge(field: "change.keys", count: UInt32.max, available: 0)) { try ConfigChange(wire: &buffer) }
    }
}

@Suite struct PasswordHasherTests {
    @Test func hashesVerifyOnlyTheRightPassword() throws {
        let hasher = PasswordHasher()
        let hash = try hasher.hash("correct horse")
        #expect(hash.hasPrefix("$scrypt$ln=14,r=8,p=1$"))
        #expect(PasswordHasher.verify("correct horse", against: hash))
        #expect(!PasswordHasher.verify("correct horse!", against: hash))
        #expect(try hasher.hash("correct horse") != hash, "salted: the same password hashes differently")
        #expect(PasswordHasher.isHash(hash))
        #expect(!PasswordHasher.isHash("$scrypt$ln=99,r=8,p=1$AAAA$AAAA"))
        #expect(!PasswordHasher.verify("x", against: "not a hash"))
    }
}
