import HealthMonitor
import PairModel

/// Row 4: with the link up, a large share of the primary's clients vanished. The primary
/// asks the secondary to activate; the secondary serves on trial and reports whether clients
/// reached it; the primary deactivates only if they did.
///
/// The primary decides, on the report, whenever it arrives: a report slowed by latency or a
/// retransmission still completes the handover (before, a report that missed the primary's
/// deadline left both servers serving for good). The secondary's trial is not a failover
/// until the primary confirms it by deactivating; it is persisted as a trial, so a restart
/// abandons it instead of promoting it.
extension ActivationPolicy {
    mutating func requestHandover(at now: MonotonicTime, lost: Int, population: Int) -> [PolicyAction] {
        guard handover == nil, switchover == nil, let peer, peer.state == .standby else { return [] }
        guard peer.canActivate else {
            return [.warning("\(lost) of \(population) clients lost with the peer link up, but the secondary cannot serve: keeping service")]
        }
        if let until = handoverCooldownUntil, now < until { return [] }
        let id = takeRequestId()
        handover = PendingRequest(id: id, deadline: now + configuration.handoverTimeout + configuration.handoverReportGrace)
        lastHandoverId = id
        let request = ActivationRequest(
            requestId: id, epoch: persistent.epoch, reason: .clientLoss,
            timeoutMs: UInt32(clamping: configuration.handoverTimeout.milliseconds))
        return [
            .warning("\(lost) of \(population) clients lost with the peer link up: asking the secondary to activate"),
            .requestPeerActivation(request),
        ]
    }

    mutating func clientCountReported(_ report: ClientCountReport, at now: MonotonicTime) -> [PolicyAction] {
        if let stale = isStale(report.epoch, "client count report") { return [stale] }
        guard report.requestId == lastHandoverId, persistent.state == .active else { return [] }
        let pending = handover
        handover = nil
        highestPeerEpoch = max(highestPeerEpoch, report.epoch)
        guard Int(report.loggedInClients) >= configuration.handoverMinimumClients else {
            guard pending != nil else { return [] }
            handoverCooldownUntil = now + configuration.handoverRetryBackoff
            lastHandoverId = nil
            // The peer's activation was the trial this server asked for, not a takeover to
            // yield to: its "active" announcement (at a higher epoch) reaches here before its
            // "standby", and must not make this server step down (the chaos suite saw the
            // primary yield, then resume as "secondary never took over": an outage for every
            // client it kept). If the peer still serves, re-assert above it, as on expiry.
            peerActivatedWhileLinked = false
            let warning = PolicyAction.warning("handover abandoned: no client reached the secondary; keeping service")
            guard persistent.state == .active, peer?.state == .active else { return [warning] }
            return [warning] + reassert()
        }
        guard peer?.state == .active || pending != nil else { return [] }
        lastHandoverId = nil
        let incident = makeIncident(.clientLossHandover, at: now)
        return [.recordIncident(incident)] + deactivate(to: .awaitingAuthorization, redirect: .handedOver)
    }

    /// No report at all within the trial and the grace: give the handover up, and if the
    /// secondary is serving on trial, re-assert above it so it stands down (the primary keeps
    /// the service it never gave away).
    mutating func handoverExpired(at now: MonotonicTime) -> [PolicyAction] {
        handover = nil
        lastHandoverId = nil
        handoverCooldownUntil = now + configuration.handoverRetryBackoff
        let warning = PolicyAction.warning("handover abandoned: the secondary did not report in time; keeping service")
        guard persistent.state == .active, peer?.state == .active else { return [warning] }
        return [warning] + reassert()
    }

    // MARK: The secondary's side (and any standby peer asked to take over)

    mutating func activationRequested(_ request: ActivationRequest, at now: MonotonicTime) -> [PolicyAction] {
        guard link != .down else { return [] }
        if let stale = isStale(request.epoch, "activation request") { return [stale] }
        guard persistent.state != .active else {
            return [.reportClientCount(ClientCountReport(requestId: request.requestId, loggedInClients: UInt32(clamping: loggedInClients), epoch: persistent.epoch))]
        }
        if let refusal = activationRefusal {
            return [
                .warning("peer asked this server to activate but it cannot: \(refusal)"),
                .reportClientCount(ClientCountReport(requestId: request.requestId, loggedInClients: 0, epoch: persistent.epoch)),
            ]
        }
        var actions = adoptEpoch(request.epoch)
        switch request.reason {
        case .clientLoss where paused:
            // A handover is automatic: not during maintenance (the peer may not have heard of it yet).
            return actions + [
                .warning("peer asked for a handover during maintenance: declined"),
                .reportClientCount(ClientCountReport(requestId: request.requestId, loggedInClients: 0, epoch: persistent.epoch)),
            ]
        case .clientLoss:
            trial = Trial(requestId: request.requestId, deadline: now + .milliseconds(Int64(request.timeoutMs)), reported: false)
            actions += activate(at: now, incident: nil, onTrial: true)
            return actions + trialProgress()
        default:
            // A planned switchover: the peer checked the authorization before asking. Not a
            // failover, so no incident: moving back needs none named (the admin audit log
            // records who moved service and why).
            actions += activate(at: now, incident: nil)
            return actions
        }
    }

    /// Reports as soon as enough clients logged in during a trial.
    mutating func trialProgress() -> [PolicyAction] {
        guard var current = trial, !current.reported, loggedInClients >= configuration.handoverMinimumClients else { return [] }
        current.reported = true
        trial = current
        return [
            .reportClientCount(
                ClientCountReport(requestId: current.requestId, loggedInClients: UInt32(clamping: loggedInClients), epoch: persistent.epoch))
        ]
    }

    /// The primary deactivated: the trial is now the real thing, and this server holds the
    /// incident the switch back must name.
    mutating func trialConfirmed(at now: MonotonicTime) -> [PolicyAction] {
        trial = nil
        persistent.onTrial = false
        let incident = makeIncident(.clientLossHandover, at: now)
        persistent.activationIncident = incident.id
        return [.persist(persistent), .recordIncident(incident)]
    }

    mutating func trialExpired(at now: MonotonicTime) -> [PolicyAction] {
        guard var current = trial else { return [] }
        if current.reported {
            // Clients came: the primary decides on the report (it deactivates, or re-asserts
            // to cancel). Until then both serve, on purpose.
            current.deadline = nil
            trial = current
            return []
        }
        trial = nil
        return [.reportClientCount(ClientCountReport(requestId: current.requestId, loggedInClients: 0, epoch: persistent.epoch))]
            + deactivate(to: .standby, redirect: nil)
    }

    mutating func takeRequestId() -> UInt32 {
        defer { nextRequestId &+= 1 }
        return nextRequestId
    }
}
