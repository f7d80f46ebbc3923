import ActivationPolicy
import ConfigModel
import ConfigStore
import Foundation
import Logging
import NIOCore
import PairNode
import PairModel
import Wire

/// Configuration replication over the peer link. The server that serves leads, the other
/// follows; the roles follow the policy's states and are set up again whenever they change.
/// The store's reads and writes run on a serial queue off the control loop; their results
/// come back as events, and replication frames wait in `inbox` meanwhile, so they are handled
/// in order against the store as it really is.
extension Controller {
    /// The node chose a new direction: the old machine stops, the new one starts.
    func setReplicationRole(_ role: ReplicationRole) {
        switch activeReplication {
        case .leader: performLeader(leader.linkDown())
        case .follower: follower.linkDown()
        case .none: break
        }
        inbox.removeAll { if case .configChange = $0 { true } else if case .configSnapshot = $0 { true } else { false } }
        activeReplication = role
        logger.info("configuration replication: \(role == .leader ? "leading" : role == .follower ? "following" : "idle")")
        switch role {
        case .leader: performLeader(leader.linkUp())
        case .follower: performFollower(follower.linkUp(log: store))
        case .none: break
        }
    }

    /// Handles queued replication frames, one at a time, while the store is free.
    func processReplicationInbox() {
        while !diskBusy, !inbox.isEmpty {
            let message = inbox.removeFirst()
            switch message {
            case .configChange(let first):
                // A read burst of records is applied as one batch.
                var messages = [first]
                while case .configChange(let next)? = inbox.first {
                    messages.append(next)
                    inbox.removeFirst()
                }
                guard replicationRole == .follower else { continue }
                do {
                    let records = try messages.map { try ChangeRecord($0) }
                    performFollower(follower.recordsReceived(records, log: store))
                } catch {
                    replicationViolation("an unreadable record: \(error)")
                }
            case .configSnapshot(let chunk):
                guard replicationRole == .follower else { continue }
                do {
                    performFollower(try follower.snapshotChunkReceived(chunk))
                } catch {
                    replicationViolation(error.description)
                }
            case .configDivergence(let probe):
                if replicationRole == .follower {
                    do { performFollower(try follower.divergenceReported(probe, log: store)) } catch { logger.error("divergence search: \(error)") }
                } else if becomeLeaderIfServing() {
                    do { performLeader(try leader.probeReceived(probe, log: store)) } catch { logger.error("divergence probe: \(error)") }
                }
            case .catchUpRequest(let request):
                guard becomeLeaderIfServing() else { continue }
                do {
                    performLeader(try leader.catchUpRequested(request, log: store, at: wallMs()))
                    reportLag()
                } catch {
                    logger.error("catch-up request: \(error)")
                }
            case .configAck(let ack):
                guard replicationRole == .leader else { continue }
                do {
                    performLeader(try leader.acknowledgementReceived(ack.revision, leaderRevision: store.head.revision, at: wallMs()))
                    reportLag()
                } catch {
                    replicationViolation(error.description)
                }
            default:
                break
            }
        }
    }

    /// A follower may ask before this side noticed its own new role; the node decides whether
    /// a serving server leads now.
    private func becomeLeaderIfServing() -> Bool {
        if replicationRole != .leader { feed(.peerAskedForConfiguration) }
        return replicationRole == .leader
    }

    func replicationViolation(_ detail: String) {
        logger.error("configuration replication stopped: \(detail); closing the peer link")
        peer?.close(Goodbye(reason: .protocolError, detail: detail))
    }

    // MARK: Leading

    func performLeader(_ actions: [ReplicationLeader.Action]) {
        for action in actions {
            switch action {
            case .sendRecords(let after, let upTo):
                guard let channel = peer?.channel else { continue }
                let store = self.store
                disk.async {
                    var cursor = after
                    while cursor < upTo {
                        guard let batch = try? store.replicatedChanges(after: cursor, limit: Int(min(upTo - cursor, 2_000))),
                            let last = batch.last
                        else { break }
                        for message in batch { channel.write(PeerMessage.configChange(message), promise: nil) }
                        channel.flush()
                        cursor = last.revision
                    }
                }
            case .sendSnapshot:
                guard let channel = peer?.channel else { continue }
                let store = self.store
                let bound = NIOLoopBound(self, eventLoop: loop)
                let loop = self.loop
                disk.async {
                    let snapshot = store.snapshot()
                    do {
                        for chunk in try snapshot.chunks() { channel.write(PeerMessage.configSnapshot(chunk), promise: nil) }
                        channel.flush()
                    } catch {
                        loop.execute { bound.value.logger.error("cannot send the configuration snapshot: \(error)") }
                        return
                    }
                    loop.execute {
                        let controller = bound.value
                        controller.logger.info("configuration snapshot at revision \(snapshot.revision) sent to the peer")
                        controller.performLeader(controller.leader.snapshotSent(revision: snapshot.revision, leaderRevision: store.head.revision, at: controller.wallMs()))
                        controller.reportLag()
                    }
                }
            case .sendDivergence(let probe):
                sendPeer(.configDivergence(probe))
            case .releaseWrites, .releaseAllWrites:
                break  // the write concern reads the acknowledged revision itself (settleWaitingWrites)
            case .followerLagging(let reason):
                logger.warning("\(reason)")
            }
        }
        settleWaitingWrites()
    }

    func reportLag() {
        let lag = leader.lag(leaderRevision: store.head.revision)
        metrics.replicationLag(revisions: lag, milliseconds: leader.lagMilliseconds(now: wallMs()))
        feed(.peerReplicationLag(lag))
    }

    /// Writes configuration changes (this server must be active) and streams them to the peer.
    func write(_ changes: [ConfigChange]) -> EventLoopFuture<[ChangeRecord]> {
        let promise = loop.makePromise(of: [ChangeRecord].self)
        let store = self.store
        let bound = NIOLoopBound(self, eventLoop: loop)
        let loop = self.loop
        let now = clock.wallNow
        disk.async {
            do {
                let records = try store.write(changes, at: now)
                loop.execute {
                    let controller = bound.value
                    if let last = records.last {
                        controller.performLeader(controller.leader.committed(upTo: last.revision, committedAtMs: last.committedAtMs))
                        controller.reportLag()
                        controller.metrics.revision(last.revision)
                    }
                    controller.clients.configurationChanged(records.map(\.change))
                    controller.configurationMoved()
                    promise.succeed(records)
                }
            } catch {
                promise.fail(error)
            }
        }
        return promise.futureResult
    }

    /// A session token chain must stop logging in (a logout, a kick): recorded in the
    /// configuration, so the peer refuses it too, after a failover included. Only a server
    /// that serves writes; a session cannot be on one that does not (it would be redirected).
    /// Revocations within 20 ms are written together: 10,000 panels logging out at once (a
    /// site shutting down, the simulator ending) make a few writes, not 10,000.
    func revoke(_ session: RevokedSession) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        pendingRevocations.append((session, promise))
        guard pendingRevocations.count == 1 else { return promise.futureResult }
        loop.assumeIsolated().scheduleTask(in: .milliseconds(20)) { [self] in
            let batch = pendingRevocations
            pendingRevocations = []
            guard node.state == .active else {
                logger.warning("\(batch.count) session tokens not revoked: this server does not serve")
                for (_, promise) in batch { promise.succeed() }
                return
            }
            for start in stride(from: 0, to: batch.count, by: ConfigLimits.changesPerWrite) {
                let part = batch[start..<min(batch.count, start + ConfigLimits.changesPerWrite)]
                write(part.map { ConfigChange.revokeSession($0.0) }).whenComplete { [logger] result in
                    if case .failure(let error) = result { logger.error("\(part.count) session tokens not revoked: \(error)") }
                    for (_, promise) in part { promise.succeed() }
                }
            }
        }
        return promise.futureResult
    }

    // MARK: Following

    func performFollower(_ actions: [ReplicationFollower.Action]) {
        for action in actions {
            switch action {
            case .sendCatchUp(let request):
                sendPeer(.catchUpRequest(request))
            case .sendProbe(let probe):
                sendPeer(.configDivergence(probe))
            case .sendAck(let ack):
                sendPeer(.configAck(ack))
            case .apply(let records):
                onDisk { store in
                    let reached = try store.apply(records)
                    return { controller in
                        controller.clients.configurationChanged(records.map(\.change))
                        controller.configurationMoved()
                        controller.performFollower(controller.follower.applied(upTo: reached, log: controller.store))
                    }
                } failed: { controller, error in
                    guard let error = error as? ConfigError else { throw error }
                    controller.logger.warning("replicated records refused: \(error)")
                    controller.performFollower(try controller.follower.applyFailed(error, log: controller.store))
                }
            case .installSnapshot(let snapshot, let journalAfter):
                let now = clock.wallNow
                onDisk { store in
                    try store.installSnapshot(try snapshot.decoded(), journalAfter: journalAfter, at: now)
                    return { controller in
                        let journalled = journalAfter.map { ": this server's changes after revision \($0) are in the divergence journal" } ?? ""
                        controller.logger.notice("configuration snapshot installed at revision \(snapshot.revision)\(journalled)")
                        controller.clients.configurationReplaced(controller.store.configuration)
                        controller.configurationMoved()
                        controller.performFollower(controller.follower.applied(upTo: snapshot.revision, log: controller.store))
                    }
                } failed: { controller, error in
                    throw error
                }
            }
        }
    }

    /// Runs store work off the loop, then its continuation on the loop; frames wait meanwhile.
    private func onDisk(
        _ work: @escaping @Sendable (any ConfigurationStoring) throws -> (Controller) throws -> Void,
        failed: @escaping (Controller, Error) throws -> Void
    ) {
        diskBusy = true
        let store = self.store
        let bound = NIOLoopBound(self, eventLoop: loop)
        let boundFailed = NIOLoopBound(failed, eventLoop: loop)
        let loop = self.loop
        disk.async {
            let outcome = Result { try work(store) }
            loop.execute {
                let controller = bound.value
                controller.diskBusy = false
                do {
                    switch outcome {
                    case .success(let continuation): try continuation(controller)
                    case .failure(let error): try boundFailed.value(controller, error)
                    }
                } catch {
                    controller.replicationViolation("\(error)")
                }
                controller.noteSync()
                controller.processReplicationInbox()
                controller.afterInput()
            }
        }
    }

    /// The first time this secondary holds the revision its leader announced, it has synced.
    func noteSync() {
        // The follower's own view of its lag (the leader's revision as last announced).
        if replicationRole == .follower {
            let head = store.head.revision
            metrics.replicationLag(revisions: peerRevision > head ? peerRevision - head : 0, milliseconds: 0)
        }
        guard !node.isSynced, replicationRole == .follower, store.head.revision >= peerRevision, peerRevision > 0 || store.head.revision == 0 else { return }
        try? stateStore.setFact("synced", "yes")
        logger.notice("first configuration sync completed at revision \(store.head.revision)")
        feed(.synced)
    }
}
