import HealthMonitor
import PairModel

/// Start-up, the peer link (rows 1, 2, 3, 5) and what a server does when it finds its peer
/// active beside it.
extension ActivationPolicy {
    mutating func start(at now: MonotonicTime) -> [PolicyAction] {
        guard !started else { return [] }
        started = true
        switch (role, persistent.state) {
        case (_, .awaitingAuthorization):
            // Deactivated before the restart: stays so until authorized.
            return [.deactivate(.awaitingAuthorization)]
        case (.secondary, .active) where persistent.onTrial:
            // A row-4 trial interrupted by a restart: it never became a failover, and this
            // server cannot know what the primary decided meanwhile. Abandoned, never promoted.
            persistent.state = .standby
            persistent.onTrial = false
            return [
                .warning("a handover trial was interrupted by a restart: abandoned; this server stands by"), .persist(persistent),
                .deactivate(.standby),
            ]
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

    /// The primary waited for its secondary in vain. Never paired (a first start alone): it
    /// serves. Paired before: the secondary may be serving behind a cut link, and two islands
    /// are worse than a visible outage, so it waits for authorization and says what to check.
    mutating func startupWaitExpired(at now: MonotonicTime) -> [PolicyAction] {
        guard role == .primary, persistent.state == .standby, link == .down else { return [] }
        guard activationRefusal == nil else { return [.warning("cannot serve: \(activationRefusal!)")] }
        guard persistent.paired else {
            return [.warning("secondary unreachable after \(configuration.startupPeerWait); serving without it (never paired)")]
                + activate(at: now, incident: nil)
        }
        let incident = makeIncident(.restartedWithoutPeer, at: now)
        persistent.state = .awaitingAuthorization
        return [.recordIncident(incident), .persist(persistent), .deactivate(.awaitingAuthorization)]
    }

    /// A server that could not serve when the rules said it should (no licence yet) and may
    /// now: it does what it would have done then.
    mutating func permissionGranted(at now: MonotonicTime) -> [PolicyAction] {
        guard started, !paused, persistent.state == .standby, link == .down else { return [] }
        switch role {
        case .secondary where hasHeardFromPeer:
            return takeOverFromLostPeer(at: now)
        case .primary where startupDeadline == nil && !hasHeardFromPeer:
            return startupWaitExpired(at: now)
        default:
            return []
        }
    }

    mutating func linkChanged(_ report: PeerLinkMonitor.Report, at now: MonotonicTime) -> [PolicyAction] {
        switch report {
        case .up, .restored:
            link = .up(stable: false)
            hasHeardFromPeer = true
            awaitingWitness = false
            linkLostAt = nil
            linkLostCause = nil
            peerBeforeLoss = nil
            selfDeactivationAt = nil
            activeAtLinkUp = persistent.state == .active
            firstPeerAnnouncementSeen = false
            peerActivatedWhileLinked = false
            splitToSettle = false
            settle = nil
            lastSettleRound = 0
            var actions: [PolicyAction] = []
            if role == .primary, !persistent.paired {
                persistent.paired = true
                actions.append(.persist(persistent))
            }
            // The first frame this side sends on a new connection.
            return actions + [.announce(status)]
        case .stable:
            guard link != .down else { return [] }
            link = .up(stable: true)
            return settleIfDue(at: now)
        case .lost(let cause):
            resumeAt = nil
            return linkLost(cause, at: now)
        case .suspect, .recovered:
            return []
        }
    }

    mutating func linkLost(_ cause: PeerLinkMonitor.LossCause, at now: MonotonicTime) -> [PolicyAction] {
        link = .down
        linkLostAt = now
        linkLostCause = cause
        peerBeforeLoss = peer
        peer = nil
        splitToSettle = false
        settle = nil
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
            // Serving for a handover and now the primary is gone too: this is a failover.
            trial = nil
            persistent.onTrial = false
            let incident = makeIncident(.peerLinkLost, at: now)
            persistent.activationIncident = incident.id
            return actions + [.persist(persistent), .recordIncident(incident)]
        }
        if paused {
            return actions + [.warning("peer link lost during maintenance: no failover until maintenance ends")]
        }
        return actions + actOnLostLink(at: now)
    }

    /// What a lost link calls for: rows 2 and 3, and a start-up wait that the link's arrival
    /// had interrupted. At the loss, or when maintenance ends with the link still down.
    mutating func actOnLostLink(at now: MonotonicTime) -> [PolicyAction] {
        switch persistent.state {
        case .standby where hasHeardFromPeer && (role == .secondary || standbyByPlan):
            // Row 2: activate at once (a primary only when it stands by by plan).
            guard activationRefusal == nil else {
                return [.warning("peer link lost but cannot activate: \(activationRefusal!)")]
            }
            return takeOverFromLostPeer(at: now)
        case .standby where role == .primary && startupDeadline == nil:
            // Its start-up wait ended while the link was up, before the secondary said what it
            // does: now the link is gone, it is as if it had never come.
            return startupWaitExpired(at: now)
        case .active where role == .primary:
            return scheduleSelfDeactivationIfCorrelated(at: now)
        default:
            return []
        }
    }

    /// Row 2's activation, or with a witness the wait for its word: a lost link is a dead
    /// peer or a cut cable, and only the key tells them apart.
    mutating func takeOverFromLostPeer(at now: MonotonicTime) -> [PolicyAction] {
        guard configuration.witness != nil else { return activate(at: now, incident: .peerLinkLost) }
        awaitingWitness = true
        return [.warning("peer link lost: taking over once the witness's key is held (or the peer's process is found gone)")]
    }

    /// Maintenance begins: automatic decisions under way stop (a self-deactivation waiting
    /// for its settle time, a handover); manual ones (a switchover) go on. Ends: a link still down is
    /// acted on as if lost now; client losses seen during maintenance are forgotten (the
    /// census's window is long past).
    mutating func maintenanceChanged(_ on: Bool, at now: MonotonicTime) -> [PolicyAction] {
        guard on != paused else { return [] }
        paused = on
        leaseLostInMaintenance = false
        if on {
            selfDeactivationAt = nil
            // A handover under way (row 4) stops too: the primary keeps its service, and a
            // secondary on trial stands down when it hears the re-assertion (seed 86823 of
            // --witness: the trial's report, read in maintenance, moved service).
            guard handover != nil else { return [] }
            handover = nil
            lastHandoverId = nil
            let warning = PolicyAction.warning("maintenance mode: handover abandoned; keeping service")
            guard persistent.state == .active, peer?.state == .active else { return [warning] }
            return [warning] + reassert()
        }
        clientLoss = nil
        guard started, link == .down else { return [] }
        return actOnLostLink(at: now)
    }

    // MARK: Row 3

    mutating func censusReported(_ report: ClientCensus.Report, at now: MonotonicTime) -> [PolicyAction] {
        guard role == .primary, persistent.state == .active else { return [] }
        guard !paused else { return [.warning("\(report): maintenance mode, no handover or deactivation")] }
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

    /// Row 3 is for the primary's own isolation: the link and the majority of its clients
    /// lost to one network failure. So the link must have gone silent (a closed connection
    /// is a peer that died, whose clients would be redirected to nobody), the majority loss
    /// must belong to the same failure (seen after the link loss, or at most `clientLossLead`
    /// before it: a loss seen earlier happened with the link up), and the secondary must
    /// have said it can serve.
    mutating func scheduleSelfDeactivationIfCorrelated(at now: MonotonicTime) -> [PolicyAction] {
        guard let lostAt = linkLostAt, linkLostCause == .timeout, let loss = clientLoss, loss.majority,
            loss.at.nanoseconds >= lostAt.nanoseconds - configuration.clientLossLead.nanoseconds,
            (loss.at - lostAt).nanoseconds <= configuration.lossCorrelationWindow.nanoseconds
        else { return [] }
        guard peerBeforeLoss?.canActivate == true else {
            return [.warning("peer link and most clients lost, but the secondary said it cannot serve: keeping service")]
        }
        selfDeactivationAt = max(now, lostAt + configuration.deactivationSettle)
        return []
    }

    mutating func selfDeactivationDue(at now: MonotonicTime) -> [PolicyAction] {
        guard !paused, role == .primary, persistent.state == .active, link == .down, clientLoss?.majority == true else { return [] }
        let incident = makeIncident(.linkAndMajorityLost, at: now)
        return [.recordIncident(incident)] + deactivate(to: .awaitingAuthorization, redirect: .deactivated)
    }

    // MARK: Peer announcements (rows 1, 5 and epochs)

    mutating func peerAnnounced(_ announced: PeerStatus, at now: MonotonicTime) -> [PolicyAction] {
        guard link != .down else { return [] }
        if let stale = isStale(announced.epoch, "state announcement") { return [stale] }
        if announced.state != .standby { resumeAt = nil }
        if announced.state == .active {
            if let previous = peer, previous.state != .active { peerActivatedWhileLinked = true }
        } else {
            peerActivatedWhileLinked = false
        }
        peer = announced
        highestPeerEpoch = max(highestPeerEpoch, announced.epoch)
        var actions: [PolicyAction] = []
        if persistent.state != .active, announced.epoch > persistent.epoch {
            // Said back at once: the peer ignores frames below the highest epoch it saw from
            // this server, so one that lost its data directory (epoch 0 again) would otherwise
            // stay unheard, and unreplicated, for the rest of the peer's run.
            actions += adoptEpoch(announced.epoch) + announceIfLinked()
        }
        if !firstPeerAnnouncementSeen {
            firstPeerAnnouncementSeen = true
            // Both were active when the link came up: a split, settled once the link holds.
            splitToSettle = activeAtLinkUp && persistent.state == .active && announced.state == .active
        }
        if announced.settleRound > 0 { actions += settleEntryReceived(announced, at: now) }
        if trial != nil, announced.state == .awaitingAuthorization {
            actions += trialConfirmed(at: now)
        }
        switch persistent.state {
        case .active:
            break  // resolveBothActive, after every event
        case .standby where role == .primary && announced.state == .active && !standbyByPlan:
            // Row 5: the secondary took over while this primary was down (its start-up wait
            // may have ended before the secondary's announcement arrived).
            startupDeadline = nil
            persistent.state = .awaitingAuthorization
            actions += [.persist(persistent), .deactivate(.awaitingAuthorization)] + announceIfLinked()
        case .standby where role == .primary && announced.state != .active:
            // Nobody serves and the secondary will not on its own with the link up: serve.
            guard activationRefusal == nil else { return actions + [.warning("cannot serve: \(activationRefusal!)")] }
            actions += activate(at: now, incident: nil)
        case .awaitingAuthorization where announced.state == .standby:
            // The same, once the announcement has stood (`resumeConfirmation`).
            if configuration.resumeConfirmation == .zero { return actions + resumeIfStillUnserved(at: now) }
            resumeAt = resumeAt ?? now + configuration.resumeConfirmation
        default:
            break
        }
        return actions
    }

    /// An awaiting primary whose secondary said "standby" and still says so, the link up all
    /// along: nobody serves, and the secondary will not on its own with the link up.
    mutating func resumeIfStillUnserved(at now: MonotonicTime) -> [PolicyAction] {
        guard persistent.state == .awaitingAuthorization, link != .down, peer?.state == .standby else { return [] }
        guard activationRefusal == nil else { return [.warning("cannot serve: \(activationRefusal!)")] }
        return activate(at: now, incident: .resumedService)
    }

    /// An active server whose peer is active too, on an up link, outside any exchange that
    /// makes the overlap deliberate. Called after every event, so nothing that ends (a
    /// handover given up, a trial, a hold) leaves two servers serving for good.
    mutating func resolveBothActive(at now: MonotonicTime) -> [PolicyAction] {
        guard persistent.state == .active, link != .down, let peer else { return [] }
        guard peer.state == .active else {
            // The active server must hold the highest epoch (a failed handover left the peer
            // standby at a higher one): advance past it.
            return peer.epoch > persistent.epoch && !isHandingOver ? reassert() : []
        }
        if let pending = switchover, peer.epoch > persistent.epoch {
            // The switchover this server asked for has happened.
            var actions = deactivate(to: .standby, redirect: .switchover)
            standbyByPlan = role == .primary
            if let id = pending.acknowledging { actions.append(.acknowledgeIncident(id)) }
            return actions
        }
        if handover != nil || switchover != nil { return [] }  // the peer's answer decides
        if trial != nil {
            // The primary re-asserted above the trial: it kept its service, the handover is off.
            guard peer.epoch > persistent.epoch else { return [] }
            return [.warning("the primary kept serving: handover trial cancelled")] + deactivate(to: .standby, redirect: .handedOver)
        }
        if splitToSettle { return settleIfDue(at: now) }
        guard peerActivatedWhileLinked || !activeAtLinkUp, peer.epoch > persistent.epoch else { return [] }  // the peer yields to us
        // The peer activated later, at a higher epoch, with the link up (forced by an
        // administrator, or a handover this side no longer waits for): this server yields.
        // So does a server that activated after the link came up, beside a peer that served
        // already at a higher epoch it had not heard yet (a forced activation in the link's
        // first milliseconds: `failover-sim --witness` seed 14104, both serving for 8 s).
        return deactivate(to: yieldedState, redirect: .handedOver)
    }
}
