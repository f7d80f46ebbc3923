import HealthMonitor
import Wire

/// Row 4: with the link up, a large share of the primary's clients vanished. The primary
/// asks the secondary to activate; the secondary serves on trial and reports whether clients
/// reached it; the primary deactivates only if they did.
extension ActivationPolicy {
    mutating func requestHandover(at now: MonotonicTime, lost: Int, population: Int) -> [PolicyAction] {
        guard handover == nil, switchover == nil, peer?.state == .standby else { return [] }
        if let until = handoverCooldownUntil, now < until { return [] }
        let id = takeRequestId()
        // The secondary's trial plus two heartbeat intervals' worth of slack for its report.
        handover = PendingRequest(id: id, deadline: now + configuration.handoverTimeout + .milliseconds(200))
        let request = ActivationRequest(
            requestId: id, epoch: persistent.epoch, reason: .clientLoss,
            timeoutMs: UInt32(clamping: configuration.handoverTimeout.milliseconds))
        return [
            .warning("\(lost) of \(population) clients lost with the peer link up: asking the secondary to activate"),
            .requestPeerActivation(request),
        ]
    }

    mutating func clientCountReported(_ report: ClientCountReport, at now: MonotonicTime) -> [PolicyAction] {
        guard let pending = handover, pending.id == report.requestId, persistent.state == .active else { return [] }
        handover = nil
        highestPeerEpoch = max(highestPeerEpoch, report.epoch)
        guard Int(report.loggedInClients) >= configuration.handoverMinimumClients else {
            handoverCooldownUntil = now + configuration.handoverRetryBackoff
            return [.warning("handover abandoned: no client reached the secondary; keeping service")]
        }
        let incident = makeIncident(.clientLossHandover, at: now)
        return [.recordIncident(incident)] + deactivate(to: .awaitingAuthorization, redirect: .handedOver)
    }

    mutating func handoverExpired(at now: MonotonicTime) -> [PolicyAction] {
        handover = nil
        handoverCooldownUntil = now + configuration.handoverRetryBackoff
        return [.warning("handover abandoned: the secondary did not report in time; keeping service")]
    }

    // MARK: The secondary's side (and any standby peer asked to take over)

    mutating func activationRequested(_ request: ActivationRequest, at now: MonotonicTime) -> [PolicyAction] {
        guard link != .down else { return [] }
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
        case .clientLoss:
            trial = Trial(requestId: request.requestId, deadline: now + .milliseconds(Int64(request.timeoutMs)), reported: false)
            actions += activate(at: now, incident: nil)
            return actions + trialProgress()
        default:
            // A planned switchover; the peer checked the authorization before asking.
            actions += activate(at: now, incident: .plannedSwitchover)
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

    /// The primary deactivated: the trial is now the real thing.
    mutating func trialConfirmed(at now: MonotonicTime) -> [PolicyAction] {
        trial = nil
        let incident = makeIncident(.clientLossHandover, at: now)
        persistent.activationIncident = incident.id
        return [.persist(persistent), .recordIncident(incident)]
    }

    mutating func trialExpired(at now: MonotonicTime) -> [PolicyAction] {
        guard let current = trial else { return [] }
        trial = nil
        if current.reported {
            // Clients came but the primary kept serving (its own deadline passed first):
            // stay active; the epoch rule settles which server serves.
            return []
        }
        return [.reportClientCount(ClientCountReport(requestId: current.requestId, loggedInClients: 0, epoch: persistent.epoch))]
            + deactivate(to: .standby, redirect: nil)
    }

    mutating func takeRequestId() -> UInt32 {
        defer { nextRequestId &+= 1 }
        return nextRequestId
    }
}
