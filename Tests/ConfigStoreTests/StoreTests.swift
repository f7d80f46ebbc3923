import ConfigModel
import ConfigStore
import Foundation
import Testing
import PairModel
import Wire

@Suite struct StoreTests {
    @Test func writesAreStampedPersistedAndSurviveAReopen() throws {
        let temporary = try TemporaryStore(epoch: 4)
        try seed(temporary.store)
        #expect(temporary.store.position.revision == 8)
        #expect(temporary.store.position.epoch == 4)
        let reopened = try temporary.reopen()
        #expect(reopened.configuration == temporary.store.configuration)
        #expect(reopened.position == temporary.store.position)
        #expect(try reopened.records(after: 0, limit: 100).map(\.revision) == Array(1...8))
        #expect(try reopened.records(after: 0, limit: 100).allSatisfy { $0.epoch == 4 })
        #expect(try reopened.integrityCheck() == "ok")
    }

    @Test func eachEntryIsStoredInItsFinalStateWhateverATransactionDidToIt() throws {
        let temporary = try TemporaryStore()
        try seed(temporary.store)
        try temporary.store.write([.setKeys(username: "ann", keys: []), .setKeys(username: "bob", keys: []), .removeOperator(username: "bob")])
        // Removed and re-added in one transaction: its old keys must not come back from disk.
        try temporary.store.write([
            .setKeys(username: "ann", keys: []), .removeOperator(username: "ann"), .putOperator(ann()),
            .setSetting(key: "a", value: "1"), .setSetting(key: "a", value: "2"), .removeSetting(key: "site.name"),
        ])
        let reopened = try temporary.reopen()
        #expect(reopened.configuration == temporary.store.configuration)
        #expect(reopened.configuration.keys(of: "ann").isEmpty)
        #expect(reopened.configuration.settings == ["a": "2"])
    }

    @Test func aStandbyRefusesWrites() throws {
        let temporary = try TemporaryStore(epoch: nil)
        #expect(throws: ConfigError.notActiveServer) { try temporary.store.write([.putPartyLine(PartyLine(name: "X"))]) }
        #expect(ConfigError.notActiveServer.description == "not the active server: configuration changes go to the active server")
        #expect(temporary.store.position.revision == 0)
    }

    @Test func aWriteIsAllOrNothing() throws {
        let temporary = try TemporaryStore()
        try seed(temporary.store)
        let before = temporary.store.configuration
        #expect(throws: ConfigError.self) {
            try temporary.store.write([.putPartyLine(PartyLine(name: "New")), .removePartyLine(name: "Fire-Ops")])
        }
        #expect(temporary.store.configuration == before)
        #expect(try temporary.reopen().configuration == before, "nothing reached the disk either")
        #expect(temporary.store.position.revision == 8)
    }

    @Test func applyingIsInOrderIdempotentAndStopsAtAGap() throws {
        let leader = try TemporaryStore(epoch: 2)
        try seed(leader.store)
        let records = try leader.store.records(after: 0, limit: 100)
        let follower = try TemporaryStore(epoch: nil)
        #expect(try follower.store.apply(Array(records[0..<3])) == 3)
        #expect(try follower.store.apply(Array(records[0..<5])) == 5, "the first three are skipped, not applied twice")
        #expect(try follower.store.apply(Array(records[6...])) == 5, "revision 7 after 5 is a gap: nothing applied")
        #expect(try follower.store.apply(records) == 8)
        #expect(follower.store.configuration == leader.store.configuration)
        #expect(follower.store.position == leader.store.position)
    }

    @Test func theLogIsPrunedToItsRetentionAndRemembersItsBase() throws {
        let temporary = try TemporaryStore(epoch: 2, retention: 100)
        for n in 0..<1_200 { try temporary.store.write([.setSetting(key: "counter", value: "\(n)")]) }
        let position = temporary.store.position
        #expect(position.revision == 1_200)
        #expect(position.logStart > 1 && position.logStart <= 1_101, "pruned in steps, keeping at least the last 100")
        #expect(try temporary.store.records(after: 0, limit: 10).first?.revision == position.logStart)
        let base = try #require(try temporary.store.mark(at: position.logStart - 1))
        #expect(base.epoch == 2 && base.chain != nil, "the revision before the log keeps its epoch and chain")
        let pruned = try #require(try temporary.store.mark(at: position.logStart - 2))
        #expect(pruned.epoch == 2 && pruned.chain == nil, "a pruned record's epoch is still known, from the epoch history")
        #expect(try temporary.reopen().position == position)
    }

    @Test func aSnapshotReplacesEverythingAndCanJournalWhatDiverged() throws {
        let follower = try TemporaryStore(epoch: 2)
        try seed(follower.store)  // revisions 1-8 of epoch 2: this side's own, never replicated
        let leader = try TemporaryStore(epoch: 3)
        try leader.store.write([.putPartyLine(PartyLine(name: "Only-On-Leader"))])
        try follower.store.installSnapshot(leader.store.snapshot(), journalAfter: 5, at: Date(timeIntervalSince1970: 1000))
        #expect(follower.store.configuration == leader.store.configuration)
        #expect(follower.store.position == ConfigStore.Position(revision: 1, epoch: 3, logStart: 2))
        let journal = try follower.store.journal()
        #expect(journal.map(\.record.revision) == [6, 7, 8])
        #expect(journal.allSatisfy { $0.status == .open && $0.detectedAtMs == 1_000_000 })
    }
}
