import HealthMonitor
import Wire

/// Start-up, the peer link (rows 1, 2, 3, 5) and a split healing (row 6).
extension ActivationPolicy {
    mutating func start(at now: MonotonicTime) -> [PolicyAction] {
        guard !started else { return [] }
        started = true
        switch (role, persistent.state) {
        case (_, .awaitingAuthorization):
            // Deactivated before the restart: stays so until authorized.
            return [.deactivate(.awaitingAuthorization)]
        case (.secondary, .active):
            // It was serving when it stopped; its clients will come back to it.
            return [.activate(epoch: persistent.epoch)]
        case (.primary, _):
            // Normally the primary serves, but first it gives the secondary a moment to say
            // whether it took over while the primary was down (row 5).
            persistent.state = .standby
            startupDeadline = now + configuration.startupPeerWait
            return [.deactivate(.standby)]
        case (.secondary, _):
            persistent.state = .standby
            return [.deactivate(.standby)]
        }
    }

    mutating func startupWaitExpired(at now: MonotonicTime) -> [PolicyAction] {
        guard role == .primary, persistent.state == .standby, link == .down else { return [] }
        guard activationRefusal == nil else { return [.warning("cannot serve: \(activationRefusal!)")] }
        return [.warning("secondary unreachable after \(configuration.startupPeerWait); serving without it")]
            + activate(at: now, incident: nil)
    }

    mutating func linkChanged(_ report: PeerLinkMonitor.Report, at now: MonotonicTime) -> [PolicyAction] {
        switch report {
        case .up, .restored:
            link = .up(stable: false)
            hasHeardFromPeer = true
            linkLostAt = nil
            selfDeactivationAt = nil
            healDecision = nil
            peerLinkUpStatus = nil
            ownLinkUpStatus = status
            // The first frame this side sends on a new connection: both sides compare these
            // two announcements if both were active (row 6).
            return [.announce(status)]
        case .stable:
            guard link != .down else { return [] }
            link = .up(stable: true)
            return applyHealDecision(at: now)
        case .lost:
            return linkLost(at: now)
        case .suspect, .recovered:
            return []
        }
    }

    mutating func linkLost(at now: MonotonicTime) -> [PolicyAction] {
        link = .down
        linkLostAt = now
        peer = nil
        ownLinkUpStatus = nil
        peerLinkUpStatus = nil
        healDecision = nil
        var actions: [PolicyAction] = []
        if handover != nil {
            handover = nil
            actions.append(.warning("handover abandoned: peer link lost"))
        }
        if switchover != nil {
            switchover = nil
            actions.append(.warning("switchover abandoned: peer link lost"))
        }
        if trial != nil {
            // Activated for a handover and now the primary is gone too: this is a failover.
            trial = nil
            let incident = makeIncident(.peerLinkLost, at: now)
            persistent.activationIncident = incident.id
            return actions + [.persist(persistent), .recordIncident(incident)]
        }
        switch persistent.state {
        case .standby where hasHeardFromPeer:
            // Row 2: activate at once.
            guard activationRefusal == nil else {
                return actions + [.warning("peer link lost but cannot activate: \(activationRefusal!)")]
            }
            return actions + activate(at: now, incident: .peerLinkLost)
        case .active where role == .primary:
            return actions + scheduleSelfDeactivationIfCorrelated(at: now)
        default:
            return actions
        }
    }

    // MARK: Row 3

    mutating func censusReported(_ report: ClientCensus.Report, at now: MonotonicTime) -> [PolicyAction] {
        guard role == .primary, persistent.state == .active else { return [] }
        switch report {
        case .majorityLost(let lost, let population):
            clientLoss = ClientLoss(at: now, lost: lost, population: population, majority: true)
        case .largeShareLost(let lost, let population):
            clientLoss = ClientLoss(at: now, lost: lost, population: population, majority: false)
        }
        guard let loss = clientLoss else { return [] }
        if link == .down { return scheduleSelfDeactivationIfCorrelated(at: now) }
        return requestHandover(at: now, lost: loss.lost, population: loss.population)
    }

    mutating func scheduleSelfDeactivationIfCorrelated(at now: MonotonicTime) -> [PolicyAction] {
        guard let lostAt = linkLostAt, let loss = clientLoss, loss.majority,
            abs((loss.at - lostAt).nanoseconds) <= configuration.lossCorrelationWindow.nanoseconds
        else { return [] }
        selfDeactivationAt = max(now, lostAt + configuration.deactivationSettle)
        return []
    }

    mutating func selfDeactivationDue(at now: MonotonicTime) -> [PolicyAction] {
        guard role == .primary, persistent.state == .active, link == .down, clientLoss?.majority == true else { return [] }
        let incident = makeIncident(.linkAndMajorityLost, at: now)
        return [.recordIncident(incident)] + deactivate(to: .awaitingAuthorization, redirect: .deactivated)
    }

    // MARK: Peer announcements (rows 1, 5, 6 and epochs)

    mutating func peerAnnounced(_ announced: PeerStatus, at now: MonotonicTime) -> [PolicyAction] {
        guard link != .down else { return [] }
        peer = announced
        highestPeerEpoch = max(highestPeerEpoch, announced.epoch)
        var actions: [PolicyAction] = []
        if persistent.state != .active { actions += adoptEpoch(announced.epoch) }
        if peerLinkUpStatus == nil {
            peerLinkUpStatus = announced
            if let own = ownLinkUpStatus, own.state == .active, announced.state == .active {
                healDecision = Self.resolveSplit(own: own, peer: announced)
            }
        } else if healDecision != nil, announced.state != .active || announced.epoch != peerLinkUpStatus?.epoch {
            // The peer moved on since the link came up (it yielded, or serves under a new
            // epoch): the split that decision was about is over.
            healDecision = nil
        }
        if trial != nil, announced.state == .awaitingAuthorization {
            actions += trialConfirmed(at: now)
        }
        switch persistent.state {
        case .active:
            actions += activePeerAnnounced(announced, at: now)
        case .standby where role == .primary && announced.state == .active && startupDeadline != nil:
            // Row 5: the secondary took over while this primary was down.
            startupDeadline = nil
            persistent.state = .awaitingAuthorization
            actions += [.persist(persistent), .deactivate(.awaitingAuthorization)] + announceIfLinked()
        case .standby where role == .primary && announced.state != .active,
            .awaitingAuthorization where announced.state == .standby:
            // Nobody serves and the secondary will not on its own with the link up: serve.
            guard activationRefusal == nil else { return actions + [.warning("cannot serve: \(activationRefusal!)")] }
            let resuming = persistent.state == .awaitingAuthorization
            actions += activate(at: now, incident: resuming ? .resumedService : nil)
        default:
            break
        }
        return actions
    }

    mutating func activePeerAnnounced(_ announced: PeerStatus, at now: MonotonicTime) -> [PolicyAction] {
        guard announced.state == .active else {
            // The active server must hold the highest epoch (a failed handover left the peer
            // standby at a higher one): advance past it.
            return announced.epoch > persistent.epoch ? reassert() : []
        }
        if handover != nil || trial != nil { return [] }  // Both active on purpose (row 4).
        if healDecision != nil { return applyHealDecision(at: now) }
        guard announced.epoch > persistent.epoch else { return [] }  // The peer will yield to us.
        if let pending = switchover {
            // The switchover this server asked for has happened.
            var actions = deactivate(to: .standby, redirect: .switchover)
            if let id = pending.acknowledging { actions.append(.acknowledgeIncident(id)) }
            return actions + adoptEpoch(announced.epoch)
        }
        // The peer activated later, at a higher epoch, with the link up (forced by an
        // administrator): this server is stale and yields.
        return deactivate(to: yieldedState, redirect: .handedOver) + adoptEpoch(announced.epoch)
    }

    /// Row 6. The side with fewer logged-in clients yields, so as few clients as possible
    /// move; on a tie the higher epoch keeps serving. Both sides evaluate this on the same
    /// two announcements (the first each sent on the new connection), so they always agree.
    static func resolveSplit(own: PeerStatus, peer: PeerStatus) -> HealDecision {
        let ownWins = own.loggedInClients != peer.loggedInClients ? own.loggedInClients > peer.loggedInClients : own.epoch > peer.epoch
        return ownWins ? .keep(loser: peer) : .yield(winner: peer)
    }

    /// Carries out a heal decision once the link is stable: a flapping link does not move
    /// clients back and forth.
    mutating func applyHealDecision(at now: MonotonicTime) -> [PolicyAction] {
        guard link == .up(stable: true), let decision = healDecision, persistent.state == .active else { return [] }
        healDecision = nil
        switch decision {
        case .yield(let winner):
            // The incident shows the two announcements compared, so the decision can be checked.
            let compared = ownLinkUpStatus?.loggedInClients ?? loggedInClients
            let incident = makeIncident(.splitResolved(yielded: true), at: now) {
                $0.peer = winner
                $0.loggedInClients = compared
            }
            return [.recordIncident(incident)] + deactivate(to: yieldedState, redirect: .yieldedAfterSplit)
                + adoptEpoch(winner.epoch)
        case .keep(let loser):
            let compared = ownLinkUpStatus?.loggedInClients ?? loggedInClients
            let incident = makeIncident(.splitResolved(yielded: false), at: now) {
                $0.peer = loser
                $0.loggedInClients = compared
            }
            return [.recordIncident(incident)]
        }
    }
}
