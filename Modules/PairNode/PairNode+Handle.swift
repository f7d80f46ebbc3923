import ActivationPolicy
import HealthMonitor
import PairModel

extension PairNode {
    /// Takes one input at `now` and returns what to do about it.
    public mutating func handle(_ input: PairInput, at now: MonotonicTime) -> PairEffects {
        var effects = PairEffects()
        switch input {
        case .start:
            decide(.start, at: now, into: &effects)
        case .tick:
            if inMaintenance, let until = maintenanceUntil, now >= until {
                // Said first: what the policy decides at the end follows from it.
                effects.directives.append(.maintenanceEnded)
                setMaintenance(false, until: nil, at: now, into: &effects)
            }
            census.tick(at: now)
            follow(monitor.tick(at: now), at: now, into: &effects)
            decide(.tick, at: now, into: &effects)
        case .peerConnected(let handshake):
            isPeerConnected = true
            peerFollows = false
            follow(monitor.connected(at: now, handshake: handshake), at: now, into: &effects)
        case .peerDisconnected:
            isPeerConnected = false
            peerFollows = false
            follow(monitor.disconnected(at: now), at: now, into: &effects)
        case .peerSignal(let signal):
            follow(monitor.heard(at: now), at: now, into: &effects)
            // A frame read after the loss deadline (this process was frozen) found the link
            // lost: it was sent long ago, and nothing acts on it.
            guard monitor.isConnected else { break }
            switch signal {
            case .heartbeat, .other: break
            case .status(let status): decide(.peerState(status), at: now, into: &effects)
            case .activationRequest(let request): decide(.peerActivationRequest(request), at: now, into: &effects)
            case .clientCount(let report): decide(.peerClientCount(report), at: now, into: &effects)
            }
        case .clients(let joined, let left, let lost, let loggedIn):
            for _ in 0..<max(0, joined) { census.clientJoined(at: now) }
            for _ in 0..<max(0, left) { census.clientLeft(at: now) }
            for _ in 0..<max(0, lost) {
                for report in census.clientLost(at: now) {
                    effects.directives.append(.warning("client census: \(report)"))
                    decide(.census(report), at: now, into: &effects)
                }
            }
            loggedInClients = loggedIn
            decide(.loggedInClients(loggedIn), at: now, into: &effects)
        case .licence(let refusal):
            licenceRefusal = refusal
            decide(.activationPermission(refusal: activationRefusal), at: now, into: &effects)
        case .synced:
            guard !synced else { break }
            synced = true
            decide(.activationPermission(refusal: activationRefusal), at: now, into: &effects)
        case .peerReplicationLag(let lag):
            decide(.peerReplicationLag(lag), at: now, into: &effects)
        case .peerAskedForConfiguration:
            // A follower may ask before this side knows the peer's state; a serving server
            // leads, and keeps leading (its request is not sent twice).
            peerFollows = true
        case .admin(let command):
            decide(.admin(command), at: now, into: &effects)
        case .maintenance(let on, let until):
            // A window that has already ended is none.
            let ended = until.map { now >= $0 } ?? false
            setMaintenance(on && !ended, until: until, at: now, into: &effects)
        case .witnessReply(let reply, let sentAt):
            witnessAnswered(reply, sentAt: sentAt, at: now, into: &effects)
        case .peerPortChecked(let refused):
            guard witness != nil else { break }
            witness!.portCheckInFlight = false
            if refused {
                witness!.portChecksUntil = nil
                witness!.nextPortCheckAt = nil
                decide(.witness(.peerGone), at: now, into: &effects)
            }
        }
        // On every input, not only ticks: a process resumed after a freeze hears its own lease
        // run out before it acts on anything that waited for it.
        witnessDeadlines(at: now, into: &effects)
        settle(at: now, into: &effects)
        return effects
    }

    private mutating func setMaintenance(_ on: Bool, until: MonotonicTime?, at now: MonotonicTime, into effects: inout PairEffects) {
        maintenanceUntil = on ? until : nil
        guard on != inMaintenance else { return }
        inMaintenance = on
        decide(.maintenance(on), at: now, into: &effects)
    }

    /// The policy's decision on one event, into the effects.
    mutating func decide(_ event: PolicyEvent, at now: MonotonicTime, into effects: inout PairEffects) {
        for action in policy.handle(event, at: now) {
            switch action {
            case .persist(let state): effects.persist = state
            case .activate(let epoch):
                effects.directives.append(.activate(epoch: epoch))
                // With the link down and no key, only a rule that knew it could activate this
                // server (the peer gone, the witness down, a forced activation, a lone start).
                if witness != nil, !policy.isLinkUp, !witness!.holding { witness!.keylessServingAllowed = true }
            case .deactivate(let state): effects.directives.append(.deactivate(state))
            case .announce(let status): effects.directives.append(.send(.status(status)))
            case .requestPeerActivation(let request): effects.directives.append(.send(.activationRequest(request)))
            case .reportClientCount(let report): effects.directives.append(.send(.clientCount(report)))
            case .redirectClients(let reason):
                effects.directives.append(.redirectClients(reason))
                // They leave on purpose: not a loss for the census.
                census.allLeft(at: now)
            case .recordIncident(let incident): effects.incidents.append(incident)
            case .acknowledgeIncident(let id): effects.acknowledged.append(id)
            case .adminAccepted(let text): effects.directives.append(.adminReply(accepted: true, text))
            case .adminRefused(let text): effects.directives.append(.adminReply(accepted: false, text))
            case .warning(let text): effects.directives.append(.warning(text))
            }
        }
    }

    /// What the link monitor decided: its frames and closes go out, its reports to the policy.
    private mutating func follow(_ actions: [PeerLinkMonitor.Action], at now: MonotonicTime, into effects: inout PairEffects) {
        for action in actions {
            switch action {
            case .sendHeartbeat: effects.directives.append(.send(.heartbeat))
            case .closeConnection: effects.directives.append(.closePeerConnection)
            case .slowLink(let roundTrip, let suggested): effects.directives.append(.slowLink(roundTrip: roundTrip, suggestedLossTimeout: suggested))
            case .report(let report):
                effects.directives.append(.linkReport(report))
                if report == .suspect { warnWatchers(at: now, into: &effects) }
                witnessNoteLink(report, at: now)
                if case .lost(let cause) = report {
                    // A closed link: the peer's process ended (or its host reset the connection),
                    // and its clients' connections closed as well: they come by themselves, and an
                    // announcement would add a message and a probe per client to the storm. It
                    // waits, for the clients that heard no close. A silent link gives its clients
                    // nothing to notice: they hear at once.
                    announcementHeldUntil = cause == .closed ? now + configuration.announcementDelayAfterClose : nil
                }
                decide(.link(report), at: now, into: &effects)
            }
        }
    }

    /// The serving peer's heartbeats are late and a loss would make this server serve: its
    /// watchers (the peer's clients) probe their server now, so that the activation, if it
    /// comes, finds the answer known instead of starting a probe of its own.
    private mutating func warnWatchers(at now: MonotonicTime, into effects: inout PairEffects) {
        guard policy.activatesOnLinkLoss, let peer = policy.peerStatus, peer.state == .active else { return }
        if let last = watchersWarnedAt, now - last < configuration.watcherWarningInterval { return }
        watchersWarnedAt = now
        effects.directives.append(.warnWatchers(peerEpoch: peer.epoch))
    }

    /// What follows every input: replication follows who serves, the watchers hear of a change
    /// of service, and the next deadline.
    private mutating func settle(at now: MonotonicTime, into effects: inout PairEffects) {
        let desired: ReplicationRole
        switch (isPeerConnected ? policy.peerStatus?.state : nil, policy.state) {
        case (.standby?, .active), (.awaitingAuthorization?, .active): desired = .leader
        case (.active?, .standby), (.active?, .awaitingAuthorization): desired = .follower
        case (nil, .active) where isPeerConnected && peerFollows: desired = .leader
        default: desired = .none
        }
        if desired != replicationRole { setReplicationRole(desired, at: now, into: &effects) }

        if let held = announcementHeldUntil, now >= held { announcementHeldUntil = nil }
        let serving = policy.state == .active ? policy.epoch : nil
        if serving != announcedEpoch, serving == nil || announcementHeldUntil == nil {
            announcedEpoch = serving
            effects.directives.append(.announceToWatchers(epoch: serving))
        }
        witnessRequests(at: now, into: &effects)
        effects.nextDeadline = nextDeadline
    }

    private mutating func setReplicationRole(_ role: ReplicationRole, at now: MonotonicTime, into effects: inout PairEffects) {
        replicationRole = role
        effects.directives.append(.replicationRole(role))
        // What the peer holds is unknown until it says so in the new roles.
        decide(.peerReplicationLag(nil), at: now, into: &effects)
    }
}
