import AdminProtocol
import ConfigModel
import HealthMonitor
import NIOCore
import PairModel

/// The write concern (issue 30): an administrator's write is acknowledged once the peer holds
/// it on its disk, or after `write.timeout-ms` as local only with the reason. Acknowledged
/// writes used to end in divergence journals when the server that took them was set aside
/// soon after (a paused primary resuming, a split settled against it); the answer now says
/// which writes a failover keeps. A server that stops serving while a write waits does not
/// acknowledge it at all: it was the "zombie leader" that leader leases and MongoDB's
/// `w: "majority"` exist to stop.
extension Controller {
    struct WaitingWrite {
        let revision: UInt64
        let promise: EventLoopPromise<WriteDurability>
        let timeout: Scheduled<Void>
    }

    /// The write was taken but is not acknowledged: this server stopped serving first.
    struct NotServingAnymore: Error, CustomStringConvertible {
        var description: String {
            "not the active server: this server stopped serving before its peer confirmed the write, which is not acknowledged "
                + "and not in force; read the configuration on the server that serves before writing it again"
        }
    }

    /// Writes `changes` and answers once the write concern decides.
    func writeAcknowledged(_ changes: [ConfigChange]) -> EventLoopFuture<(records: [ChangeRecord], durability: WriteDurability)> {
        let bound = NIOLoopBound(self, eventLoop: loop)
        return write(changes).flatMap { records in
            let revision = records.last?.revision ?? bound.value.store.head.revision
            return bound.value.confirmation(of: revision).map { (records, $0) }
        }
    }

    /// When `revision`, durable here, counts as acknowledged.
    func confirmation(of revision: UInt64) -> EventLoopFuture<WriteDurability> {
        guard settings.writeConcern.both else {
            return loop.makeSucceededFuture(.localOnly(reason: "write.concern is local (the peer gets it right after)"))
        }
        if let confirmed = confirmedRevision, confirmed >= revision { return loop.makeSucceededFuture(.replicated) }
        if let reason = nothingToWaitFor() { return loop.makeSucceededFuture(.localOnly(reason: reason)) }
        let promise = loop.makePromise(of: WriteDurability.self)
        let bound = NIOLoopBound(self, eventLoop: loop)
        let timeout = loop.assumeIsolated().scheduleTask(in: TimeAmount(settings.writeConcern.timeout)) {
            bound.value.writeTimedOut(revision)
        }
        waitingWrites.append(WaitingWrite(revision: revision, promise: promise, timeout: timeout))
        return promise.futureResult
    }

    /// What the peer has confirmed on its disk of this server's log, while it follows.
    private var confirmedRevision: UInt64? {
        activeReplication == .leader && leader.follower == .following ? leader.acknowledged : nil
    }

    /// Local only at once: the link has been down longer than a write would wait (a peer that
    /// is gone: every write would wait its full time for nothing), or the peer is lagging.
    private func nothingToWaitFor() -> String? {
        if let since = peerLinkDownSince, clock.now - since >= settings.writeConcern.timeout {
            return "the peer link is down"
        }
        if activeReplication == .leader, leader.lagging { return "the peer is lagging" }
        return nil
    }

    /// After anything that may settle a waiting write: the peer's acknowledgement, a change of
    /// state or of replication.
    func settleWaitingWrites() {
        guard !waitingWrites.isEmpty else { return }
        if let confirmed = confirmedRevision {
            let done = waitingWrites.filter { $0.revision <= confirmed }
            waitingWrites.removeAll { $0.revision <= confirmed }
            for write in done {
                write.timeout.cancel()
                write.promise.succeed(.replicated)
            }
        }
        if node.state != .active {
            let refused = waitingWrites
            waitingWrites = []
            if !refused.isEmpty { logger.warning("\(refused.count) configuration writes not acknowledged: this server stopped serving before its peer confirmed them") }
            for write in refused {
                write.timeout.cancel()
                write.promise.fail(NotServingAnymore())
            }
        } else if activeReplication == .leader, leader.lagging {
            let local = waitingWrites
            waitingWrites = []
            for write in local {
                write.timeout.cancel()
                write.promise.succeed(.localOnly(reason: "the peer is lagging"))
            }
        }
    }

    /// The server stops deciding: what still waits gets its answer now (a promise left
    /// unanswered would hang its administrator until the admin session ends).
    func endWaitingWrites() {
        let waiting = waitingWrites
        waitingWrites = []
        for write in waiting {
            write.timeout.cancel()
            if node.state == .active {
                write.promise.succeed(.localOnly(reason: "the server is shutting down"))
            } else {
                write.promise.fail(NotServingAnymore())
            }
        }
    }

    private func writeTimedOut(_ revision: UInt64) {
        guard let index = waitingWrites.firstIndex(where: { $0.revision == revision }) else { return }
        let write = waitingWrites.remove(at: index)
        guard node.state == .active else {
            write.promise.fail(NotServingAnymore())
            return
        }
        let reason: String
        if !node.isLinkUp {
            reason = "the peer link is down"
        } else if activeReplication != .leader || leader.follower != .following {
            reason = "the peer is still catching up"
        } else {
            reason = "the peer did not confirm it within \(Int(settings.writeConcern.timeout / .milliseconds(1))) ms"
        }
        write.promise.succeed(.localOnly(reason: reason))
    }

    /// The link's state as the write concern reads it.
    func notePeerLink(_ report: PeerLinkMonitor.Report) {
        switch report {
        case .up, .restored: peerLinkDownSince = nil
        case .lost: peerLinkDownSince = clock.now
        default: break
        }
    }
}
