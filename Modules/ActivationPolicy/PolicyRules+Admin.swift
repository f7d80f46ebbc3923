import HealthMonitor
import PairModel

/// Administrator commands: the switchover (planned, or the authorized switch back after a
/// failover) and forced activation.
extension ActivationPolicy {
    mutating func adminCommand(_ command: AdminCommand, at now: MonotonicTime) -> [PolicyAction] {
        switch command {
        case .switchover(let acknowledging): return switchover(acknowledging: acknowledging, at: now)
        case .forceActivation(let reason): return forceActivation(reason: reason, at: now)
        }
    }

    /// Why a switchover acknowledging `acknowledging` would be refused now, or nil: what the
    /// command checks, and what an administrator's dry run asks.
    public func switchoverRefusal(acknowledging: String?) -> String? {
        guard persistent.state == .active else { return "this server is \(persistent.state); run the switchover on the active server" }
        guard link != .down, let peer else { return "the peer link is down; the peer cannot take over" }
        guard peer.state != .active else { return "the peer is already active" }
        guard peer.canActivate else { return "the peer cannot serve (no licence or no configuration yet); it would take over nobody" }
        guard switchover == nil, handover == nil, trial == nil else { return "a handover is already in progress" }
        guard !splitToSettle else { return "both servers are active after a split and wait for a stable link to settle it; try again shortly" }
        if let incident = persistent.activationIncident {
            guard acknowledging == incident else {
                let given = acknowledging.map { "'\($0)' is not it" } ?? "none was named"
                return "this server serves because of incident \(incident); the switchover must acknowledge it (\(given))"
            }
        } else if let named = acknowledging {
            return "there is no open incident on this server ('\(named)' was named); a planned switchover names none"
        }
        guard let lag = peerReplicationLag else { return "the peer's configuration state is unknown; wait for replication to report" }
        guard lag == 0 else { return "the peer is \(lag) configuration revisions behind; wait until it caught up" }
        return nil
    }

    /// Checks first, then asks the peer to take over; this server yields once the peer
    /// announces it is active, so clients are redirected to a server that already serves.
    mutating func switchover(acknowledging: String?, at now: MonotonicTime) -> [PolicyAction] {
        if let refusal = switchoverRefusal(acknowledging: acknowledging) { return [.adminRefused(refusal)] }
        let id = takeRequestId()
        switchover = PendingRequest(id: id, deadline: now + configuration.switchoverTimeout, acknowledging: acknowledging)
        let request = ActivationRequest(
            requestId: id, epoch: persistent.epoch, reason: .plannedSwitchover,
            timeoutMs: UInt32(clamping: configuration.switchoverTimeout.milliseconds))
        return [.adminAccepted("switchover to the \(peer.map { "\($0.role)" } ?? "peer") started"), .requestPeerActivation(request)]
    }

    mutating func forceActivation(reason: String, at now: MonotonicTime) -> [PolicyAction] {
        guard persistent.state != .active else { return [.adminRefused("this server is already active")] }
        guard let refusal = activationRefusal else {
            startupDeadline = nil
            return [.adminAccepted("forced activation")] + activate(at: now, incident: .forcedActivation(reason: reason))
        }
        return [.adminRefused("cannot activate: \(refusal)")]
    }
}
