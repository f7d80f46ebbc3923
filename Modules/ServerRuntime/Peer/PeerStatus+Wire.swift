import ActivationPolicy
import PairModel
import Wire

/// The policy's view of a peer and Wire's announcement of it: the policy speaks the pair's
/// vocabulary only; the shell translates at the link.
extension PeerStatus {
    init(_ announcement: StateAnnouncement) {
        self.init(
            role: announcement.role, state: announcement.state, epoch: announcement.epoch,
            loggedInClients: Int(announcement.loggedInClients), canActivate: announcement.canActivate,
            settleRound: announcement.settleRound)
    }

    func announcement(configRevision: UInt64) -> StateAnnouncement {
        StateAnnouncement(
            role: role, state: state, epoch: epoch, loggedInClients: UInt32(clamping: loggedInClients),
            configRevision: configRevision, canActivate: canActivate, settleRound: settleRound)
    }
}
