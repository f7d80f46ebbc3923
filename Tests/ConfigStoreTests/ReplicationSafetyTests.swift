import ConfigModel
import ConfigStore
import Foundation
import NIOCore
import Testing
import PairModel
import Wire

/// Histories replication must refuse or repair, each found by an outside review
/// (issue 8, items 1 to 7): late, duplicated, reordered and older-epoch records, histories
/// rewritten under a reused epoch, and a follower that stops acknowledging.
@Suite struct ReplicationSafetyTests {
    // MARK: 1. Behind a pruned leader is not diverged

    @Test func aFollowerOnlyBehindAPrunedLeader_getsASnapshotAndAnEmptyJournal() throws {
        let primary = try TemporaryStore(epoch: 2, retention: 10)
        let secondary = try TemporaryStore(epoch: nil)
        let pair = ReplicatedPair(leader: primary.store, follower: secondary.store)
        try pair.connect()
        for n in 0..<5 { try pair.write([.setSetting(key: "counter", value: "\(n)")]) }
        try pair.disconnect()
        for n in 5..<1_010 { try primary.store.write([.setSetting(key: "counter", value: "\(n)")]) }
        #expect(primary.store.position.logStart == 1_001, "the leader pruned revision 5 away")
        try pair.connect()
        #expect(pair.inSync)
        #expect(try secondary.store.journal().isEmpty, "five consistent records are not a divergence")
        #expect(pair.sentToFollower.contains { if case .configSnapshot = $0 { true } else { false } })
    }

    @Test func aFollowerBehindALeaderThatChangedEpochSincePruning_isStillOnlyBehind() throws {
        // The leader served again under a new epoch after the follower left; the epoch history
        // (never pruned) still says revision 5 is of epoch 2 on the leader too.
        let primary = try TemporaryStore(epoch: 2, retention: 10)
        let secondary = try TemporaryStore(epoch: nil)
        let pair = ReplicatedPair(leader: primary.store, follower: secondary.store)
        try pair.connect()
        for n in 0..<5 { try pair.write([.setSetting(key: "counter", value: "\(n)")]) }
        try pair.disconnect()
        for n in 5..<20 { try primary.store.write([.setSetting(key: "counter", value: "\(n)")]) }
        try primary.store.setWriteEpoch(4)
        for n in 20..<1_020 { try primary.store.write([.setSetting(key: "counter", value: "\(n)")]) }
        try pair.connect()
        #expect(pair.inSync)
        #expect(try secondary.store.journal().isEmpty)
        #expect(secondary.store.epochHistory.map(\.epoch) == [2, 4])
    }

    // MARK: 2. Epochs never go backwards

    @Test func aRecordOfAnOlderEpochIsRefusedAndThePositionKeepsItsEpoch() throws {
        let store = try TemporaryStore(epoch: nil)
        let leader = try TemporaryStore(epoch: 2)
        for n in 0..<5 { try leader.store.write([.setSetting(key: "n", value: "\(n)")]) }
        try store.store.apply(try leader.store.records(after: 0, limit: 10))
        #expect(store.store.position.epoch == 2)
        let stale = try nextRecord(after: store.store, epoch: 1, .setSetting(key: "n", value: "stale"))
        #expect(throws: ConfigError.staleEpoch(1, current: 2)) { try store.store.apply([stale]) }
        #expect(store.store.position == ConfigStore.Position(revision: 5, epoch: 2, logStart: 1))
        #expect(throws: ConfigError.staleEpoch(1, current: 2)) { try store.store.setWriteEpoch(1) }
        #expect(store.store.writeEpoch == nil)
        try store.store.setWriteEpoch(2)
        #expect(store.store.writeEpoch == 2, "the same epoch continues")
    }

    @Test func aLeaderStreamingAnOlderEpoch_breaksTheLink() throws {
        let store = try TemporaryStore(epoch: 3)
        try store.store.write([.setSetting(key: "n", value: "1")])
        var follower = ReplicationFollower()
        _ = follower.linkUp(log: store.store)
        #expect(throws: ReplicationViolation.self) { try follower.applyFailed(.staleEpoch(1, current: 3), log: store.store) }
    }

    // MARK: 3. The same position is not the same record

    @Test func theSameRevisionUnderAnotherEpoch_isADivergenceNotADuplicate() throws {
        let primary = try TemporaryStore(epoch: 2)
        let secondary = try TemporaryStore(epoch: nil)
        let first = ReplicatedPair(leader: primary.store, follower: secondary.store)
        try first.connect()
        for n in 0..<5 { try first.write([.setSetting(key: "n", value: "\(n)")]) }
        try first.disconnect()
        // The secondary served alone (epoch 2 records of its own... here written as the
        // primary's epoch, as the review did) and the primary moved on under epoch 3.
        try secondary.store.setWriteEpoch(2)
        try secondary.store.write([.setSetting(key: "local", value: "written alone")])
        try secondary.store.setWriteEpoch(nil)
        try primary.store.setWriteEpoch(3)
        try primary.store.write([.setSetting(key: "n", value: "6")])
        try primary.store.write([.setSetting(key: "n", value: "7")])

        // Fed straight to the store: refused, nothing applied.
        let theirs = try primary.store.records(after: 5, limit: 10)
        #expect(throws: ConfigError.self) { try secondary.store.apply(theirs) }
        #expect(secondary.store.position.revision == 6 && secondary.store.position.epoch == 2)

        // Over the link: journalled, and the leader's history taken.
        let healed = ReplicatedPair(leader: primary.store, follower: secondary.store)
        try healed.connect()
        #expect(healed.inSync)
        let journal = try secondary.store.journal()
        #expect(journal.map(\.record.change) == [.setSetting(key: "local", value: "written alone")])
        #expect(journal.map(\.record.revision) == [6])
        #expect(secondary.store.configuration.settings["n"] == "7")
    }

    @Test func aStreamedRecordAtAHeldPositionWithAnotherEpoch_restartsTheCatchUp() throws {
        let secondary = try TemporaryStore(epoch: nil)
        let other = try TemporaryStore(epoch: 2)
        for n in 0..<6 { try other.store.write([.setSetting(key: "n", value: "\(n)")]) }
        try secondary.store.apply(try other.store.records(after: 0, limit: 10))
        var follower = ReplicationFollower()
        _ = follower.linkUp(log: secondary.store)
        let conflicting = try ChangeRecord(revision: 6, epoch: 3, committedAtMs: 0, change: .setSetting(key: "n", value: "x"), after: .zero)
        do {
            try secondary.store.apply([conflicting])
            Issue.record("a record of epoch 3 at revision 6 was taken for the held 6/e2")
        } catch {
            #expect(try follower.applyFailed(error, log: secondary.store) == [.sendCatchUp(secondary.store.head.request)])
        }
    }

    @Test func aHistoryRewrittenUnderAReusedEpoch_isJournalledNotKept() throws {
        // Both hold 1-100 of epoch 2; then the primary wrote 101-150 under epoch 4, which
        // reached the secondary, and lost its disk. Restored from a backup taken at 100 (its
        // policy epoch with it), it served again under epoch 4 and wrote 101-120: other records
        // at the same positions and epoch.
        let primary = try TemporaryStore(epoch: 2)
        let secondary = try TemporaryStore(epoch: nil)
        let pair = ReplicatedPair(leader: primary.store, follower: secondary.store)
        try pair.connect()
        for n in 0..<100 { try primary.store.write([.setSetting(key: "n", value: "\(n)")]) }
        try pair.publish()
        let backup = primary.directory.appendingPathComponent("backup.sqlite")
        try primary.store.backup(to: backup.path)
        try primary.store.setWriteEpoch(4)
        for n in 100..<150 { try primary.store.write([.setSetting(key: "old-history", value: "\(n)")]) }
        try pair.publish()
        #expect(pair.inSync)
        try pair.disconnect()

        let restored = try ConfigStore(path: backup.path)
        try restored.setWriteEpoch(4)
        for n in 100..<120 { try restored.write([.setSetting(key: "new-history", value: "\(n)")]) }
        #expect(restored.head.revision == 120 && restored.head.epoch == 4)

        let healed = ReplicatedPair(leader: restored, follower: secondary.store)
        try healed.connect()
        #expect(healed.inSync, "the follower took the restored leader's history")
        let journal = try secondary.store.journal()
        #expect(journal.map(\.record.revision) == Array(101...150), "the lost history is kept for review, all of it")
        #expect(journal.allSatisfy { $0.record.change == .setSetting(key: "old-history", value: "\($0.record.revision - 1)") })
    }

    @Test func aFollowerAtTheSamePositionAndEpochWithOtherContent_isNotStreamedOnTop() throws {
        let restoredLeader = MemoryLog(epochs: Array(repeating: 2, count: 100) + Array(repeating: 4, count: 20), tag: "new")
        var oldHistory = MemoryLog(epochs: Array(repeating: 2, count: 100) + Array(repeating: 4, count: 20), tag: "old")
        for index in 0..<100 { oldHistory.marks[index] = restoredLeader.marks[index] }
        var leader = ReplicationLeader()
        _ = leader.linkUp()
        // The follower's last record is 120/e4 too, but another one: a probe, not a stream.
        let actions = try leader.catchUpRequested(oldHistory.head.request, log: restoredLeader, at: 0)
        guard case .sendDivergence(let probe)? = actions.first else {
            Issue.record("expected a divergence probe, got \(actions)")
            return
        }
        var follower = ReplicationFollower()
        _ = follower.linkUp(log: oldHistory)
        let next = try follower.divergenceReported(probe, log: oldHistory)
        // Same epoch, other chain: step back before epoch 4, to the end of epoch 2.
        #expect(next == [.sendProbe(ConfigDivergence(revision: 100, epoch: 2, chain: oldHistory.marks[99].chain))])
        let answer = try leader.probeReceived(ConfigDivergence(revision: 100, epoch: 2, chain: oldHistory.marks[99].chain), log: restoredLeader)
        guard case .sendDivergence(let agreed)? = answer.first else {
            Issue.record("expected the leader's answer, got \(answer)")
            return
        }
        #expect(try follower.divergenceReported(agreed, log: oldHistory) == [.sendCatchUp(CatchUpRequest(lastRevision: 0, lastEpoch: 0, lastChain: nil))])
        #expect(follower.divergedAfter == 100)
    }

    // MARK: 4. A gap inside a batch

    @Test func aGapInsideABatch_appliesTheRunAndAsksFromTheGapAtOnce() throws {
        let leader = try TemporaryStore(epoch: 2)
        for n in 0..<3 { try leader.store.write([.setSetting(key: "n", value: "\(n)")]) }
        let records = try leader.store.records(after: 0, limit: 10)
        let follower = try TemporaryStore(epoch: nil)
        var machine = ReplicationFollower()
        _ = machine.linkUp(log: follower.store)
        #expect(machine.recordsReceived([records[0], records[2]], log: follower.store) == [.apply([records[0]])])
        let reached = try follower.store.apply([records[0]])
        #expect(
            machine.applied(upTo: reached, log: follower.store) == [
                .sendAck(ConfigAck(revision: 1)), .sendCatchUp(follower.store.head.request),
            ])
    }

    @Test func aGapInsideABatchOverTheLink_closesWithoutAnotherCommit() throws {
        let primary = try TemporaryStore(epoch: 2)
        let secondary = try TemporaryStore(epoch: nil)
        let pair = ReplicatedPair(leader: primary.store, follower: secondary.store)
        try pair.connect()
        for n in 0..<3 { try primary.store.write([.setSetting(key: "n", value: "\(n)")]) }
        let records = try primary.store.records(after: 0, limit: 10)
        // Deliver 1 and 3 only, as a reordering bug would.
        try pair.perform(pair.follower.recordsReceived([records[0], records[2]], log: secondary.store))
        try pair.run()
        #expect(pair.inSync, "the follower asked from revision 1 and got 2 and 3")
        #expect(secondary.store.position.revision == 3)
    }

    // MARK: 5. The in-flight window after a snapshot

    @Test func theWindowHoldsAfterASnapshotUntilTheFirstAcknowledgement() throws {
        let primary = try TemporaryStore(epoch: 2)
        let secondary = try TemporaryStore(epoch: nil)
        let pair = ReplicatedPair(leader: primary.store, follower: secondary.store, window: 100)
        pair.followerAcknowledges = false
        try pair.connect()
        #expect(pair.sentToFollower.contains { if case .configSnapshot = $0 { true } else { false } })
        for n in 0..<2_000 {
            let record = try primary.store.write([.setSetting(key: "n", value: "\(n)")])[0]
            try pair.perform(pair.leader.committed(upTo: record.revision, committedAtMs: record.committedAtMs))
        }
        let records = pair.sentToFollower.filter { if case .configChange = $0 { true } else { false } }
        #expect(records.count == 100, "never more than the window in flight (\(records.count) sent)")
    }

    // MARK: 6. A follower that never acknowledges

    @Test func aStuckFollower_isMarkedLaggingAndTheLeaderStaysBounded() throws {
        var leader = ReplicationLeader(configuration: .init(window: 20_000, acknowledgementTimeoutMs: 5_000))
        _ = leader.linkUp()
        let log = MemoryLog(epochs: [2])
        _ = try leader.catchUpRequested(log.head.request, log: log, at: 1_000)
        for revision in UInt64(2)...200_001 {
            _ = leader.committed(upTo: revision, committedAtMs: 1_000 + revision / 100)
        }
        #expect(leader.trackedCommitCount <= 1_024, "memory bounded: \(leader.trackedCommitCount) commit times held")
        #expect(leader.lagMilliseconds(now: 3_000) >= 2_000 - 1, "the lag is never under-reported")
        #expect(leader.awaitReplication(of: 200_001) == [], "a synchronous write waits for the follower...")
        #expect(leader.tick(at: 5_999) == [])
        let actions = leader.tick(at: 6_000)
        #expect(leader.lagging)
        #expect(actions.count == 2)
        guard case .followerLagging(let reason)? = actions.first, case .releaseAllWrites? = actions.last else {
            Issue.record("expected lagging and released writes, got \(actions)")
            return
        }
        #expect(reason.contains("acknowledged nothing for 5000 ms"))
        #expect(leader.awaitReplication(of: 200_001) == [.releaseAllWrites(reason: "the peer is lagging: acknowledged once durable here only")])
        // It catches up: no longer lagging once everything sent is acknowledged.
        _ = try leader.acknowledgementReceived(leader.sent, leaderRevision: 200_001, at: 7_000)
        #expect(!leader.lagging)
    }

    // MARK: 7. Acknowledging what was never sent

    @Test func anAcknowledgementBeyondWhatWasSent_isAProtocolViolation() throws {
        var leader = ReplicationLeader()
        _ = leader.linkUp()
        let log = MemoryLog(epochs: Array(repeating: 2, count: 10))
        _ = try leader.catchUpRequested(MemoryLog(epochs: []).head.request.withRevision(0), log: log, at: 0)
        _ = leader.snapshotSent(revision: 10, leaderRevision: 10, at: 0)
        _ = leader.awaitReplication(of: 10)
        #expect(throws: ReplicationViolation("the follower acknowledged revision 1000 but only 10 were sent")) {
            try leader.acknowledgementReceived(1_000, leaderRevision: 10, at: 0)
        }
        #expect(leader.lag(leaderRevision: 10) == nil, "no acknowledgement was taken")
    }
}

extension CatchUpRequest {
    func withRevision(_ revision: UInt64) -> CatchUpRequest {
        CatchUpRequest(lastRevision: revision, lastEpoch: lastEpoch, lastChain: lastChain)
    }
}
