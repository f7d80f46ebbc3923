import ActivationPolicy
import ConfigStore
import Foundation
import Logging
import NIOCore
import Wire

/// What an administrator (and the process's own shutdown) asks of the controller.
extension Controller {
    /// Gives an administrator command to the policy and returns its answer.
    func admin(_ command: AdminCommand) -> AdminOutcome {
        adminReplies = []
        handle(.admin(command))
        let replies = adminReplies
        adminReplies = []
        for reply in replies {
            switch reply {
            case .adminAccepted(let text): return .accepted(text)
            case .adminRefused(let text): return .refused(text)
            default: continue
            }
        }
        return .refused("the command had no effect")
    }

    func status() -> RuntimeStatus {
        let head = store.head
        let verified = licence.verified
        return RuntimeStatus(
            role: settings.role, serverId: settings.serverId, state: policy.state, epoch: policy.epoch, peerLinkUp: policy.isLinkUp,
            peer: policy.peerStatus, clientsLoggedIn: clients.registry.count, configRevision: head.revision, configEpoch: head.epoch,
            replicationLag: replicationRole == .leader ? leader.lag(leaderRevision: head.revision) : nil,
            replication: "\(replicationRole)", activationIncident: policy.activationIncident, canActivate: policy.canActivate,
            synced: synced, licenceId: verified?.licence.licenceId, licenceExpires: verified?.licence.expires,
            peerClientEndpoint: peerClientEndpoint)
    }

    /// Graceful shutdown. A server that serves hands its clients over when that needs no
    /// authorization: a planned switchover to a peer that can serve, which redirects them once
    /// the peer serves. A server that holds a failover's incident does not: stopping it does
    /// not authorize the switch back (run `vcom-admin switchover` first). When the peer
    /// already serves (a split), clients are redirected to it. Otherwise they are told the
    /// server is shutting down, and try the other server themselves.
    func beginShutdown() -> EventLoopFuture<Void> {
        shuttingDown = true
        redialTask?.cancel()
        redialTask = nil
        var handover = loop.makeSucceededVoidFuture()
        if policy.state == .active, let peerStatus = policy.peerStatus, peerStatus.canActivate, peerStatus.state != .active,
            policy.activationIncident == nil
        {
            switch admin(.switchover(acknowledging: nil)) {
            case .accepted:
                logger.notice("shutting down: handing service over to the peer first")
                let timeout = loop.scheduleTask(in: .nanoseconds((settings.timings.switchoverTimeout + .seconds(1)).nanoseconds)) {}
                handover = waitForState(.standby).or(timeout.futureResult).map { _ in }
            case .refused(let reason):
                logger.warning("shutting down without a handover: \(reason)")
            }
        } else if policy.state == .active, policy.activationIncident != nil {
            logger.warning(
                "shutting down while serving because of incident \(policy.activationIncident!): this does not authorize the switch back; clients are disconnected")
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        return handover.hop(to: loop).map {
            let controller = bound.value
            controller.halted = true
            let sessions = controller.clients.registry.all
            if controller.policy.peerStatus?.state == .active, let target = controller.peerClientEndpoint {
                for session in sessions { session.redirect(to: target, reason: .switchover, epoch: controller.policy.epoch) }
            } else {
                for session in sessions { session.end(Goodbye(reason: .shuttingDown, detail: "the server is shutting down")) }
            }
            controller.peer?.close(Goodbye(reason: .shuttingDown, detail: "the peer is shutting down"))
            controller.timer?.cancel()
            controller.logger.notice("shut down: \(sessions.count) client sessions ended, state \(controller.policy.state), epoch \(controller.policy.epoch)")
        }
    }
}

/// An administrator command's answer.
public enum AdminOutcome: Equatable, Sendable {
    case accepted(String)
    case refused(String)
}

/// One server's state, for tests, logs and the admin tool.
public struct RuntimeStatus: Equatable, Sendable {
    public var role: ServerRole
    public var serverId: String
    public var state: ServerState
    public var epoch: UInt64
    public var peerLinkUp: Bool
    public var peer: PeerStatus?
    public var clientsLoggedIn: Int
    public var configRevision: UInt64
    public var configEpoch: UInt64
    /// Revisions the peer is behind, while this server leads replication.
    public var replicationLag: UInt64?
    public var replication: String
    public var activationIncident: String?
    public var canActivate: Bool
    public var synced: Bool
    public var licenceId: String?
    public var licenceExpires: Date?
    public var peerClientEndpoint: Endpoint?
}
