import ConfigModel
import ConfigStore
import Foundation
import NIOCore
import Testing
import PairModel
import Wire

/// Two stores joined by the replication machines over an in-memory link that carries the
/// real peer messages (encoded and decoded by Wire's codec): what the server's shell does
/// over TCP, minus the sockets.
final class ReplicatedPair {
    let leaderStore: ConfigStore
    let followerStore: ConfigStore
    var leader: ReplicationLeader
    var follower = ReplicationFollower()
    private(set) var toLeader: [PeerMessage] = []
    private(set) var toFollower: [PeerMessage] = []
    var released: [String] = []
    var linked = false
    /// Every message the leader sent, for tests that count what crossed the link.
    var sentToFollower: [PeerMessage] = []
    var violations: [String] = []
    /// When false, the follower's acknowledgements are dropped (a stuck follower).
    var followerAcknowledges = true
    var nowMs: UInt64 = 1_000
    let codec = FrameCodec<PeerMessage>(configuration: .peer)

    init(leader: ConfigStore, follower: ConfigStore, window: Int = 50) {
        leaderStore = leader
        followerStore = follower
        self.leader = ReplicationLeader(configuration: .init(window: window))
    }

    /// Encodes and decodes every message, as the link would.
    func transmit(_ message: PeerMessage) throws -> PeerMessage {
        var buffer = ByteBuffer()
        try codec.encode(message, into: &buffer)
        return try #require(try codec.decode(from: &buffer, allocator: ByteBufferAllocator()))
    }

    func connect() throws {
        linked = true
        try perform(leader.linkUp())
        try perform(follower.linkUp(log: followerStore))
        try run()
    }

    func disconnect() throws {
        linked = false
        toLeader = []
        toFollower = []
        try perform(leader.linkDown())
        follower.linkDown()
    }

    /// Tells the leader about everything committed so far (writes made outside `write`).
    func publish() throws {
        try perform(leader.committed(upTo: leaderStore.position.revision, committedAtMs: nowMs))
        try run()
    }

    /// Commits on the leader and lets replication run to quiescence.
    @discardableResult
    func write(_ changes: [ConfigChange], synchronous: Bool = false) throws -> [ChangeRecord] {
        let records = try leaderStore.write(changes)
        guard let last = records.last else { return records }
        try perform(leader.committed(upTo: last.revision, committedAtMs: last.committedAtMs))
        if synchronous { try perform(leader.awaitReplication(of: last.revision)) }
        try run()
        return records
    }

    /// Delivers what is queued, both ways, until nothing moves.
    func run() throws {
        var rounds = 0
        while linked && (!toLeader.isEmpty || !toFollower.isEmpty) {
            rounds += 1
            #expect(rounds < 10_000, "replication did not settle")
            if rounds >= 10_000 { return }
            try deliverToFollower()
            try deliverToLeader()
        }
    }

    /// The follower reads everything queued for it, as one read burst.
    func deliverToFollower() throws {
        let inbound = toFollower
        toFollower = []
        var batch: [ChangeRecord] = []
        for message in inbound {
            if case .configChange(let change) = message {
                batch.append(try ChangeRecord(change))
                continue
            }
            if !batch.isEmpty {
                try perform(follower.recordsReceived(batch, log: followerStore))
                batch = []
            }
            switch message {
            case .configSnapshot(let chunk):
                do {
                    try perform(follower.snapshotChunkReceived(chunk))
                } catch {
                    violations.append("\(error)")
                }
            case .configDivergence(let probe): try perform(follower.divergenceReported(probe, log: followerStore))
            default: Issue.record("unexpected message to the follower: \(message)")
            }
        }
        if !batch.isEmpty { try perform(follower.recordsReceived(batch, log: followerStore)) }
    }

    func deliverToLeader() throws {
        let outbound = toLeader
        toLeader = []
        for message in outbound {
            switch message {
            case .catchUpRequest(let request): try perform(leader.catchUpRequested(request, log: leaderStore, at: nowMs))
            case .configDivergence(let probe): try perform(leader.probeReceived(probe, log: leaderStore))
            case .configAck(let ack):
                do {
                    try perform(leader.acknowledgementReceived(ack.revision, leaderRevision: leaderStore.position.revision, at: nowMs))
                } catch {
                    violations.append("\(error)")
                }
            default: Issue.record("unexpected message to the leader: \(message)")
            }
        }
    }

    func sendToFollower(_ message: PeerMessage) throws {
        let transmitted = try transmit(message)
        sentToFollower.append(transmitted)
        toFollower.append(transmitted)
    }

    func perform(_ actions: [ReplicationLeader.Action]) throws {
        for action in actions {
            switch action {
            case .sendRecords(let after, let upTo):
                for message in try leaderStore.replicatedChanges(after: after, limit: Int(upTo - after)) {
                    try sendToFollower(.configChange(message))
                }
            case .sendSnapshot:
                let snapshot = leaderStore.snapshot()
                for chunk in try snapshot.chunks(maximumChunkBytes: 4096) { try sendToFollower(.configSnapshot(chunk)) }
                try perform(leader.snapshotSent(revision: snapshot.revision, leaderRevision: leaderStore.position.revision, at: nowMs))
            case .sendDivergence(let probe): try sendToFollower(.configDivergence(probe))
            case .releaseWrites(let upTo): released.append("up to \(upTo)")
            case .releaseAllWrites(let reason): released.append(reason)
            case .followerLagging(let reason): released.append("lagging: \(reason)")
            }
        }
    }

    func perform(_ actions: [ReplicationFollower.Action]) throws {
        for action in actions {
            switch action {
            case .sendCatchUp(let request): toLeader.append(try transmit(.catchUpRequest(request)))
            case .sendProbe(let probe): toLeader.append(try transmit(.configDivergence(probe)))
            case .apply(let records):
                do {
                    let reached = try followerStore.apply(records)
                    try perform(follower.applied(upTo: reached, log: followerStore))
                } catch let error as ConfigError {
                    try perform(follower.applyFailed(error, log: followerStore))
                }
            case .installSnapshot(let snapshot, let journalAfter):
                try followerStore.installSnapshot(try snapshot.decoded(), journalAfter: journalAfter)
                try perform(follower.applied(upTo: snapshot.revision, log: followerStore))
            case .sendAck(let ack):
                if followerAcknowledges { toLeader.append(try transmit(.configAck(ack))) }
            }
        }
    }

    var inSync: Bool {
        leaderStore.configuration == followerStore.configuration && leaderStore.head == followerStore.head
    }
}

@Suite struct ReplicationTests {
    @Test func aNewFollowerGetsASnapshotThenEveryChange() throws {
        let primary = try TemporaryStore(epoch: 2)
        let secondary = try TemporaryStore(epoch: nil)
        try seed(primary.store)
        let pair = ReplicatedPair(leader: primary.store, follower: secondary.store)
        try pair.connect()
        #expect(pair.inSync)
        #expect(pair.leader.lag(leaderRevision: 8) == 0)
        try pair.write([.putPartyLine(PartyLine(name: "Tower"))])
        try pair.write([.setKeys(username: "bob", keys: [talkListen(2, .partyLine("Tower"))])])
        #expect(pair.inSync)
        #expect(secondary.store.position.epoch == 2, "records keep the epoch they were written in")
        #expect(try secondary.reopen().configuration == primary.store.configuration, "applied durably")
    }

    @Test func aFollowerThatWasAwayCatchesUpIncrementally() throws {
        let primary = try TemporaryStore(epoch: 2)
        let secondary = try TemporaryStore(epoch: nil)
        let pair = ReplicatedPair(leader: primary.store, follower: secondary.store)
        try pair.connect()
        try seed(primary.store)
        try pair.publish()
        try pair.disconnect()
        for n in 0..<300 { try primary.store.write([.setSetting(key: "counter", value: "\(n)")]) }
        try pair.connect()
        #expect(pair.inSync, "300 records through a window of 50")
        #expect(secondary.store.position.logStart == 1, "incremental: no snapshot replaced the log")
        #expect(try secondary.store.records(after: 0, limit: 1000).count == 308)
    }

    @Test func aFollowerBehindThePrunedLogGetsASnapshot() throws {
        let primary = try TemporaryStore(epoch: 2, retention: 100)
        let secondary = try TemporaryStore(epoch: nil)
        let pair = ReplicatedPair(leader: primary.store, follower: secondary.store)
        try pair.connect()
        try pair.write([.setSetting(key: "counter", value: "start")])
        try pair.disconnect()
        for n in 0..<1_500 { try primary.store.write([.setSetting(key: "counter", value: "\(n)")]) }
        #expect(primary.store.position.logStart > 2)
        try pair.connect()
        #expect(pair.inSync)
        #expect(secondary.store.position.logStart == primary.store.position.revision + 1, "a snapshot was installed")
        #expect(try secondary.store.journal().isEmpty, "only behind: nothing diverged")
    }

    @Test func aSplitKeepsTheLosersChangesInTheJournal() throws {
        let primary = try TemporaryStore(epoch: 2)
        let secondary = try TemporaryStore(epoch: nil)
        let first = ReplicatedPair(leader: primary.store, follower: secondary.store)
        try first.connect()
        try seed(primary.store)
        try first.publish()
        #expect(first.inSync)
        try first.disconnect()

        // Split: both serve and both write.
        try secondary.store.setWriteEpoch(3)
        try secondary.store.write([.putPartyLine(PartyLine(name: "Tower")), .setSetting(key: "site.name", value: "Harbour")])
        try primary.store.write([.putPartyLine(PartyLine(name: "Ambulance"))])
        try primary.store.write([.setSetting(key: "shift", value: "night")])

        // The link heals and the secondary wins (it now leads); the primary follows.
        try primary.store.setWriteEpoch(nil)
        let healed = ReplicatedPair(leader: secondary.store, follower: primary.store)
        try healed.connect()
        #expect(healed.inSync)
        #expect(primary.store.configuration.partyLine("Tower") != nil)
        #expect(primary.store.configuration.partyLine("Ambulance") == nil)
        let journal = try primary.store.journal()
        #expect(journal.map(\.record.change) == [.putPartyLine(PartyLine(id: 5, name: "Ambulance")), .setSetting(key: "shift", value: "night")])
        #expect(journal.allSatisfy { $0.record.epoch == 2 && $0.status == .open })

        // An administrator re-applies one on the active server, marks it on the standby that
        // holds the journal, and discards the other.
        #expect(throws: ConfigError.notActiveServer) { try primary.store.reapplyJournalEntry(journal[0].id) }
        let reapplied = try #require(try secondary.store.write([journal[0].record.change]).first)
        #expect(reapplied.epoch == 3)
        try primary.store.markJournalEntryReapplied(journal[0].id, asRevision: reapplied.revision)
        try healed.publish()
        try primary.store.discardJournalEntry(journal[1].id)
        #expect(try primary.store.journal().map(\.status) == [.reapplied, .discarded])
        #expect(throws: ConfigError.journal("journal entry \(journal[1].id) was already discarded")) {
            try primary.store.discardJournalEntry(journal[1].id)
        }
        #expect(healed.inSync)
        #expect(secondary.store.configuration.partyLine("Ambulance") != nil)
    }

    @Test func synchronousWritesWaitForTheFollower() throws {
        let primary = try TemporaryStore(epoch: 2)
        let secondary = try TemporaryStore(epoch: nil)
        let pair = ReplicatedPair(leader: primary.store, follower: secondary.store)
        try pair.connect()
        try pair.write([.putPartyLine(PartyLine(name: "Tower"))], synchronous: true)
        #expect(pair.released == ["up to 1"])
        try pair.disconnect()
        try pair.write([.putPartyLine(PartyLine(name: "Tower-2"))], synchronous: true)
        #expect(pair.released.last == "no peer is following: acknowledged once durable here only")
    }

    @Test func aSynchronousWriteWaitingWhenTheLinkDropsIsReleasedWithTheReason() throws {
        var leader = ReplicationLeader()
        _ = leader.linkUp()
        let log = MemoryLog(epochs: Array(repeating: 2, count: 5))
        _ = try leader.catchUpRequested(log.head.request, log: log, at: 0)
        #expect(leader.awaitReplication(of: 6) == [])
        #expect(leader.lagMilliseconds(now: 100) == 0)
        _ = leader.committed(upTo: 6, committedAtMs: 1_000)
        #expect(leader.lagMilliseconds(now: 1_250) == 250)
        #expect(leader.lag(leaderRevision: 6) == 1)
        #expect(leader.linkDown() == [.releaseAllWrites(reason: "the peer link is down: acknowledged once durable here only")])
        #expect(leader.lag(leaderRevision: 6) == nil)
    }

    @Test func aGapMakesTheFollowerAskAgain() throws {
        let store = try TemporaryStore(epoch: nil)
        var follower = ReplicationFollower()
        _ = follower.linkUp(log: store.store)
        let record = try ChangeRecord(revision: 5, epoch: 2, committedAtMs: 0, change: .setSetting(key: "a", value: "b"), after: .zero)
        #expect(follower.recordsReceived([record], log: store.store) == [.sendCatchUp(CatchUpRequest(lastRevision: 0, lastEpoch: 0, lastChain: .zero))])
    }
}
