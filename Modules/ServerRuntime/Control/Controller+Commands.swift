import ActivationPolicy
import ConfigModel
import ConfigStore
import Foundation
import Licensing
import Logging
import NIOCore
import PairModel
import Wire

/// What an administrator (and the process's own shutdown) asks of the controller.
extension Controller {
    /// Gives an administrator command to the policy and returns its answer.
    func admin(_ command: AdminCommand) -> AdminOutcome {
        guard let reply = feed(.admin(command)).adminReply else { return .refused("the command had no effect") }
        return reply.accepted ? .accepted(reply.text) : .refused(reply.text)
    }

    func status() -> RuntimeStatus {
        let head = store.head
        let verified = licence.verified
        return RuntimeStatus(
            role: settings.role, serverId: settings.serverId, state: node.state, epoch: node.epoch, peerLinkUp: node.isLinkUp,
            peer: node.peerStatus, clientsLoggedIn: clients.registry.count, configRevision: head.revision, configEpoch: head.epoch,
            replicationLag: replicationRole == .leader ? leader.lag(leaderRevision: head.revision) : nil,
            replication: "\(replicationRole)", activationIncident: node.activationIncident, canActivate: node.canActivate,
            synced: node.isSynced, licenceId: verified?.licence.licenceId, licenceExpires: verified?.licence.expires,
            peerClientEndpoint: peerClientEndpoint, warnings: [slowLinkWarning].compactMap { $0 },
            maintenance: node.inMaintenance ? maintenanceWindow : nil, stateSince: stateSince, peerId: peerInfo?.nodeId ?? lastPeerId,
            witness: witnessSummary)
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
        if node.state == .active, let peerStatus = node.peerStatus, peerStatus.canActivate, peerStatus.state != .active,
            node.activationIncident == nil
        {
            switch admin(.switchover(acknowledging: nil)) {
            case .accepted:
                logger.notice("shutting down: handing service over to the peer first")
                let timeout = loop.scheduleTask(in: .nanoseconds((settings.timings.switchoverTimeout + .seconds(1)).nanoseconds)) {}
                handover = waitForState(.standby).or(timeout.futureResult).map { _ in }
            case .refused(let reason):
                logger.warning("shutting down without a handover: \(reason)")
            }
        } else if node.state == .active, node.activationIncident != nil {
            logger.warning(
                "shutting down while serving because of incident \(node.activationIncident!): this does not authorize the switch back; clients are disconnected")
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        return handover.hop(to: loop).map {
            let controller = bound.value
            controller.halted = true
            controller.endWaitingWrites()
            let sessions = controller.clients.registry.all
            if controller.node.peerStatus?.state == .active, let target = controller.peerClientEndpoint {
                for session in sessions { session.redirect(to: target, reason: .switchover, epoch: controller.node.epoch) }
            } else {
                for session in sessions { session.end(Goodbye(reason: .shuttingDown, detail: "the server is shutting down")) }
            }
            controller.peer?.close(Goodbye(reason: .shuttingDown, detail: "the peer is shutting down"))
            controller.timer?.cancel()
            controller.logger.notice("shut down: \(sessions.count) client sessions ended, state \(controller.node.state), epoch \(controller.node.epoch)")
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
    public var warnings: [String] = []
    /// Maintenance mode, while it is on.
    public var maintenance: MaintenanceWindow?
    /// When this server entered `state`.
    public var stateSince: Date?
    /// The peer's id, once a link has been authenticated in this run.
    public var peerId: String?
    /// The witness in one line (nil: none configured).
    public var witness: String?
}

extension Controller {
    /// A renewed or replacement licence, installed by an administrator on the primary: verified
    /// against the vendor keys and this server's id, written over the licence file (atomically),
    /// then enforced at once and shared with the secondary. A licence that fails any check
    /// changes nothing.
    func installLicence(_ text: String) -> AdminOutcome {
        guard settings.role == .primary else { return .refused("licences are installed on the primary; it shares them with the secondary") }
        let verified: VerifiedLicence
        do {
            verified = try licences.verify(text, boundTo: settings.serverId)
        } catch {
            return .refused("the licence is refused: \(error)")
        }
        if let current = licence.verified, verified.licence.expires < current.licence.expires {
            return .refused(
                "licence \(verified.licence.licenceId) expires before the installed \(current.licence.licenceId); install a newer one")
        }
        if let file = settings.licenceFile {
            do {
                try Data(text.utf8).write(to: file, options: .atomic)
            } catch {
                return .refused("the licence could not be written to \(file.path): \(error.localizedDescription)")
            }
        }
        licence = .own(verified)
        logger.notice("licence \(verified.licence.licenceId) installed by an administrator (expires \(verified.licence.expires))")
        updateActivationPermission()
        if peer != nil { sendPeer(.licence(LicenceTransfer(text: verified.text))) }
        return .accepted("licence \(verified.licence.licenceId) installed, expires \(verified.licence.expires); shared with the secondary")
    }
}
