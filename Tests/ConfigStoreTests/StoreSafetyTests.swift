import ConfigModel
import ConfigStore
import Dispatch
import Foundation
import NIOCore
import Synchronization
import Testing
import PairModel
import Wire

/// The model's limits and the store's own races, found by an outside review (issue 8,
/// items 8 to 13).
@Suite struct StoreSafetyTests {
    // MARK: 8. A journal entry is re-applied once

    @Test func reapplyingOneJournalEntryFromManyThreads_appliesItExactlyOnce() throws {
        for _ in 0..<10 {
            let temporary = try TemporaryStore(epoch: 2)
            try seed(temporary.store)
            try temporary.store.write([.putPartyLine(PartyLine(name: "Split-Line"))])
            let leader = try TemporaryStore(epoch: 3)
            try leader.store.write([.setSetting(key: "x", value: "1")])
            try temporary.store.installSnapshot(leader.store.snapshot(), journalAfter: 8)
            let entry = try #require(try temporary.store.journal().first)
            try temporary.store.setWriteEpoch(3)
            let before = temporary.store.position.revision
            let outcomes = Mutex([String]())
            let store = temporary.store
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                let outcome: String
                do {
                    outcome = "applied \(try store.reapplyJournalEntry(entry.id).revision)"
                } catch {
                    outcome = "\(error)"
                }
                outcomes.withLock { $0.append(outcome) }
            }
            let results = outcomes.withLock { $0 }
            #expect(results.filter { $0.hasPrefix("applied") }.count == 1, "\(results)")
            #expect(temporary.store.position.revision == before + 1, "one new revision, not one per caller")
            #expect(try temporary.store.journal().first?.status == .reapplied)
        }
    }

    // MARK: 9. One spelling per name

    @Test func nfcAndNfdSpellingsAreOneName_onDiskToo() throws {
        let temporary = try TemporaryStore()
        try temporary.store.write([.putPartyLine(PartyLine(name: "Caf\u{E9}"))])
        try temporary.store.write([.putPartyLine(PartyLine(name: "Cafe\u{301}"))])
        #expect(temporary.store.configuration.partyLines.count == 1)
        try temporary.store.write([.removePartyLine(name: "Cafe\u{301}")])
        #expect(temporary.store.configuration.partyLine("Café") == nil)
        let reopened = try temporary.reopen()
        #expect(reopened.configuration.partyLines.isEmpty, "a removed name never comes back after a restart")
    }

    // MARK: 10. No trap on any replicated value; ids without a scan

    @Test func aReplicatedIdAtTheTopOfTheRange_doesNotTrapTheNextCreation() throws {
        let temporary = try TemporaryStore(epoch: nil)
        let extreme = Operator(id: UInt32.max, username: "max", displayName: "Max", passwordHash: sampleHash)
        try temporary.store.apply([try nextRecord(after: temporary.store, epoch: 2, .putOperator(extreme))])
        try temporary.store.setWriteEpoch(3)
        let records = try temporary.store.write([.putOperator(ann()), .putPartyLine(PartyLine(name: "Fire-Ops"))])
        let ids = records.compactMap { record -> UInt32? in
            switch record.change {
            case .putOperator(let value): value.id
            case .putPartyLine(let value): value.id
            default: nil
            }
        }
        #expect(ids == [1, 2], "the lowest free numbers once the top one is taken")
        #expect(Set(temporary.store.configuration.operators.values.map(\.id)).count == 2)
    }

    @Test func idsContinueAboveEveryOneHandedOut_evenAfterARemovalAndARestart() throws {
        let temporary = try TemporaryStore()
        try temporary.store.write([.putPartyLine(PartyLine(name: "A")), .putPartyLine(PartyLine(name: "B"))])
        try temporary.store.write([.removePartyLine(name: "B")])
        let reopened = try temporary.reopen()
        try reopened.setWriteEpoch(2)
        let record = try #require(try reopened.write([.putPartyLine(PartyLine(name: "C"))]).first)
        #expect(record.change == .putPartyLine(PartyLine(id: 3, name: "C")), "B's number is not handed to C")
    }

    // MARK: 11. Password hashes with hostile or weak parameters

    static let hostile = "$scrypt$ln=20,r=32,p=16$c2FsdHNhbHRzYWx0$" + Data(repeating: 7, count: 32).base64EncodedString()
    static let weak = "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0$" + Data(repeating: 7, count: 32).base64EncodedString()

    @Test func hashParametersAreBoundedOnEveryPathIn() throws {
        let temporary = try TemporaryStore()
        for (hash, words) in [(Self.hostile, "costs too much to verify"), (Self.weak, "is too weak")] {
            do throws(ConfigError) {
                try temporary.store.write([.putOperator(Operator(username: "eve", displayName: "Eve", passwordHash: hash))])
                Issue.record("a write with \(hash) was accepted")
            } catch {
                #expect(error.description.contains(words), "\(error)")
            }
            #expect(throws: ConfigError.self) { try temporary.store.write([.putAdmin(AdminAccount(username: "eve", passwordHash: hash, role: .admin))]) }
            // Replicated: refused too, so a compromised leader cannot make logins cost minutes.
            let follower = try TemporaryStore(epoch: nil)
            let record = try nextRecord(after: follower.store, epoch: 2, .putOperator(Operator(id: 1, username: "eve", displayName: "Eve", passwordHash: hash)))
            #expect(throws: ConfigError.self) { try follower.store.apply([record]) }
            // In a snapshot.
            var configuration = SystemConfiguration()
            configuration.apply(unchecked: .putOperator(Operator(id: 1, username: "eve", displayName: "Eve", passwordHash: hash)))
            let snapshot = StoreSnapshot(configuration: configuration, revision: 1, epoch: 2, chain: .zero, epochHistory: [])
            #expect(throws: ConfigError.self) { try follower.store.installSnapshot(snapshot) }
            // Imported.
            let document = """
                {"format": "vcom-config", "version": 1, "operators": [{"username": "eve", "displayName": "Eve", "passwordHash": "\(hash)"}]}
                """
            #expect(throws: ConfigError.self) { try temporary.store.importDocument(document) }
            // And never verified: a hostile stored hash costs nothing at login.
            #expect(!PasswordHasher.verify("anything", against: hash))
        }
    }

    // MARK: 12. Limits, and snapshots in chunks

    @Test func aWriteAboveALimitIsRefusedNamingIt() throws {
        let temporary = try TemporaryStore()
        let settings = (0..<ConfigLimits.settings).map { ConfigChange.setSetting(key: "s\($0)", value: "v") }
        try temporary.store.write(settings)
        do throws(ConfigError) {
            try temporary.store.write([.setSetting(key: "one-more", value: "v")])
            Issue.record("a setting above the limit was accepted")
        } catch {
            #expect(error.description == "the configuration already holds 10000 settings, the limit (docs/config-store.md)")
        }
        try temporary.store.write([.setSetting(key: "s1", value: "changed")])  // replacing is fine
        #expect(throws: ConfigError.self) {
            try temporary.store.write([.setSetting(key: "s2", value: String(repeating: "é", count: 1025))])
        }
    }

    @Test func aLargeSnapshotCrossesTheLinkInChunksBelowTheFrameLimit() throws {
        let primary = try TemporaryStore(epoch: 2)
        // About 9 MB of configuration: 8,000 settings of 1,000 two-byte characters.
        let value = String(repeating: "é", count: 1_000)
        for start in stride(from: 0, to: 8_000, by: 2_000) {
            try primary.store.write((start..<(start + 2_000)).map { .setSetting(key: "k\($0)", value: value) })
        }
        let chunks = try primary.store.snapshot().chunks()
        #expect(chunks.count >= 9)
        let codec = FrameCodec<PeerMessage>(configuration: .peer)
        var follower = ReplicationFollower()
        let secondary = try TemporaryStore(epoch: nil)
        _ = follower.linkUp(log: secondary.store)
        var installed: [ReplicationFollower.Action] = []
        for chunk in chunks {
            var frame = ByteBuffer()
            try codec.encode(.configSnapshot(chunk), into: &frame)
            #expect(frame.readableBytes < WireConfiguration.peer.maxFrameLength)
            guard case .configSnapshot(let received)? = try codec.decode(from: &frame, allocator: ByteBufferAllocator()) else {
                Issue.record("chunk did not decode")
                return
            }
            installed += try follower.snapshotChunkReceived(received)
        }
        guard case .installSnapshot(let snapshot, nil)? = installed.first, installed.count == 1 else {
            Issue.record("expected one install, got \(installed.count) actions")
            return
        }
        try secondary.store.installSnapshot(try snapshot.decoded())
        #expect(secondary.store.configuration == primary.store.configuration)
        #expect(secondary.store.head == primary.store.head)
    }

    @Test func snapshotChunksOutOfOrderOrAboveTheLimitAreRefused() throws {
        var follower = ReplicationFollower()
        let store = try TemporaryStore(epoch: nil)
        _ = follower.linkUp(log: store.store)
        let huge = ConfigSnapshot(
            epoch: 2, revision: 9, chain: .zero, totalLength: UInt64(ConfigLimits.snapshotBytes) + 1, offset: 0, epochHistory: [],
            body: ByteBuffer())
        #expect(throws: ReplicationViolation.self) { try follower.snapshotChunkReceived(huge) }
        let stray = ConfigSnapshot(epoch: 2, revision: 9, chain: .zero, totalLength: 10, offset: 5, epochHistory: [], body: ByteBuffer(bytes: [1]))
        #expect(throws: ReplicationViolation.self) { try follower.snapshotChunkReceived(stray) }
    }

    // MARK: 13. Somebody must stay able to authorize; names are trimmed text

    @Test func theLastAdministratorCannotBeDemoted() throws {
        let temporary = try TemporaryStore()
        try seed(temporary.store)
        #expect(throws: ConfigError.inUse("admin 'root' is the last account with the admin role; give another account that role first")) {
            try temporary.store.write([.putAdmin(AdminAccount(username: "root", passwordHash: sampleHash, role: .viewer))])
        }
        try temporary.store.write([
            .putAdmin(AdminAccount(username: "second", passwordHash: sampleHash, role: .admin)),
            .putAdmin(AdminAccount(username: "root", passwordHash: sampleHash, role: .viewer)),
        ])
        #expect(temporary.store.configuration.admin("root")?.role == .viewer)
    }

    @Test func namesWithSurroundingSpacesOrOnlySpacesAreRefused() throws {
        let temporary = try TemporaryStore()
        for name in [" Tower", "Tower ", "   ", "\u{A0}Tower"] {
            #expect(throws: ConfigError.self, "'\(name)'") { try temporary.store.write([.putPartyLine(PartyLine(name: name))]) }
        }
        #expect(throws: ConfigError.invalid(["display name of 'ann' must not begin or end with a space"])) {
            try temporary.store.write([.putOperator(Operator(username: "ann", displayName: "Ann ", passwordHash: sampleHash))])
        }
        #expect(temporary.store.configuration.partyLines.isEmpty)
    }
}

extension SystemConfiguration {
    /// Builds a configuration for tests without the write path's checks (as a hostile
    /// snapshot would arrive).
    mutating func apply(unchecked change: ConfigChange) {
        if case .putOperator(let value) = change {
            var snapshot = ByteBuffer()
            snapshot.writeInteger(UInt32(operators.count + 1))
            for existing in operators.values { try? existing.write(to: &snapshot) }
            try? value.write(to: &snapshot)
            for _ in 0..<4 { snapshot.writeInteger(UInt32(0)) }
            if let decoded = try? SystemConfiguration(wire: &snapshot) { self = decoded }
        }
    }
}
