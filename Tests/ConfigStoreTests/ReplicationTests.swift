import ConfigStore
import Foundation
import NIOCore
import Testing
import Wire

/// Two stores joined by the replication machines over an in-memory link that carries the
/// real peer messages (encoded and decoded by Wire's codec): what the server's shell does
/// over TCP, minus the sockets.
final class ReplicatedPair {
    let leaderStore: ConfigStore
    let followerStore: ConfigStore
    var leader = ReplicationLeader(configuration: .init(window: 50))
    var follower = ReplicationFollower()
    private var toLeader: [PeerMessage] = []
    private var toFollower: [PeerMessage] = []
    private var pendingSnapshot: ConfigSnapshot?
    var released: [String] = []
    var linked = false
    let codec = FrameCodec<PeerMessage>(configuration: .peer)

    init(leader: ConfigStore, follower: ConfigStore) {
        leaderStore = leader
        followerStore = follower
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
        try perform(leader.committed(upTo: leaderStore.position.revision, committedAtMs: 0))
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

    func run() throws {
        var rounds = 0
        while linked && (!toLeader.isEmpty || !toFollower.isEmpty) {
            rounds += 1
            #expect(rounds < 10_000, "replication did not settle")
            if rounds >= 10_000 { return }
            // The follower reads everything queued for it, as one read burst.
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
                case .configSnapshot(let snapshot):
                    pendingSnapshot = snapshot
                    try perform(follower.snapshotReceived())
                case .configDivergence(let probe): try perform(follower.divergenceReported(probe, log: followerStore))
                default: Issue.record("unexpected message to the follower: \(message)")
                }
            }
            if !batch.isEmpty { try perform(follower.recordsReceived(batch, log: followerStore)) }
            let outbound = toLeader
            toLeader = []
            for message in outbound {
                switch message {
                case .catchUpRequest(let request): try perform(leader.catchUpRequested(request, log: leaderStore))
                case .configAck(let ack):
                    try perform(leader.acknowledgementReceived(ack.revision, leaderRevision: leaderStore.position.revision))
                default: Issue.record("unexpected message to the leader: \(message)")
                }
            }
        }
    }

    func perform(_ actions: [ReplicationLeader.Action]) throws {
        for action in actions {
            switch action {
            case .sendRecords(let after, let upTo):
                for message in try leaderStore.replicatedChanges(after: after, limit: Int(upTo - after)) {
                    toFollower.append(try transmit(.configChange(message)))
                }
            case .sendSnapshot(let revision):
                var body = ByteBuffer()
                try leaderStore.configuration.write(to: &body)
                let epoch = try leaderStore.epoch(at: revision) ?? 0
                toFollower.append(try transmit(.configSnapshot(ConfigSnapshot(epoch: epoch, revision: revision, body: body))))
            case .sendDivergence(let probe): toFollower.append(try transmit(.configDivergence(probe)))
            case .releaseWrites(let upTo): released.append("up to \(upTo)")
            case .releaseAllWrites(let reason): released.append(reason)
            }
        }
    }

    func perform(_ actions: [ReplicationFollower.Action]) throws {
        for action in actions {
            switch action {
            case .sendCatchUp(let request): toLeader.append(try transmit(.catchUpRequest(request)))
            case .apply(let records):
                let reached = try followerStore.apply(records)
                try perform(follower.applied(upTo: reached))
            case .installSnapshot(let journalAfter):
                let snapshot = try #require(pendingSnapshot)
                var body = snapshot.body
                try followerStore.installSnapshot(
                    try SystemConfiguration(wire: &body), revision: snapshot.revision, epoch: snapshot.epoch, journalAfter: journalAfter)
                try perform(follower.applied(upTo: snapshot.revision))
            case .sendAck(let ack): toLeader.append(try transmit(.configAck(ack)))
            }
        }
    }

    var inSync: Bool {
        leaderStore.configuration == followerStore.configuration && leaderStore.position.revision == followerStore.position.revision
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
        secondary.store.setWriteEpoch(3)
        try secondary.store.write([.putPartyLine(PartyLine(name: "Tower")), .setSetting(key: "site.name", value: "Harbour")])
        try primary.store.write([.putPartyLine(PartyLine(name: "Ambulance"))])
        try primary.store.write([.setSetting(key: "shift", value: "night")])

        // The link heals and the secondary wins (it now leads); the primary follows.
        primary.store.setWriteEpoch(nil)
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

    @Test func aSynchronousWriteWaitingWhenTheLinkDropsIsReleasedWithTheReason() {
        var leader = ReplicationLeader()
        _ = leader.linkUp()
        let position = ConfigStore.Position(revision: 5, epoch: 2, logStart: 1)
        struct Log: ReplicationLog {
            var position: ConfigStore.Position
            func epoch(at revision: UInt64) -> UInt64? { revision <= position.revision ? 2 : nil }
            func lastRevision(notAfter revision: UInt64, epochAtMost epoch: UInt64) -> (revision: UInt64, epoch: UInt64) { (min(revision, 5), 2) }
        }
        _ = try? leader.catchUpRequested(CatchUpRequest(lastRevision: 5, lastEpoch: 2), log: Log(position: position))
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
        let record = ChangeRecord(revision: 5, epoch: 2, committedAtMs: 0, change: .setSetting(key: "a", value: "b"))
        #expect(follower.recordsReceived([record], log: store.store) == [.sendCatchUp(CatchUpRequest(lastRevision: 0, lastEpoch: 0))])
    }
}
