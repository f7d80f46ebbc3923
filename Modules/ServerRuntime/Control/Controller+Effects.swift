import ActivationPolicy
import ConfigModel
import ConfigStore
import Foundation
import HealthMonitor
import Licensing
import Logging
import NIOCore
import PairNode
import PairModel
import Wire

/// Carrying out what the node decided, in its order: the state persisted first (nothing after
/// it happens if the disk refuses it), then the incidents, then the directives.
extension Controller {
    func carryOut(_ effects: PairEffects) {
        if let state = effects.persist {
            do {
                try stateStore.savePolicyState(state)
            } catch {
                // Nothing that depends on this state may happen: the disk refused it.
                logger.critical("cannot persist the failover state (\(error)); the actions that depend on it are not carried out")
                return
            }
        }
        // The incident explains the state change that follows it.
        var why: String?
        for incident in effects.incidents {
            why = "incident \(incident.id): \(incident.cause)"
            logger.notice(
                "incident \(incident.id): \(incident.cause)",
                metadata: ["incident": "\(incident.id)", "epoch": "\(incident.epoch)", "clients": "\(incident.loggedInClients)"])
            do {
                try incidents.record(incident, at: clock.wallNow)
            } catch {
                logger.error("cannot store incident \(incident.id): \(error)", metadata: ["incident": "\(incident.id)"])
            }
            switch incident.cause {
            case .peerLinkLost, .clientLossHandover, .linkAndMajorityLost: metrics.failover(at: clock.wallNow)
            default: break
            }
        }
        for id in effects.acknowledged {
            logger.notice("incident \(id) acknowledged by the switchover", metadata: ["incident": "\(id)"])
            try? incidents.acknowledge(id, at: clock.wallNow)
        }
        if !effects.incidents.isEmpty || !effects.acknowledged.isEmpty { refreshIncidentFigure() }
        for directive in effects.directives {
            switch directive {
            case .send(let signal):
                send(signal)
            case .closePeerConnection:
                logger.warning("peer link silent for \(settings.timings.peerHeartbeat * settings.timings.peerMisses): closing it")
                peer?.close(Goodbye(reason: .idleTimeout, detail: "nothing heard from the peer in time"))
            case .activate(let epoch):
                do {
                    try store.setWriteEpoch(epoch)
                } catch {
                    logger.error("configuration writes stay closed: \(error)")
                }
                let reason = why ?? node.activationIncident.map { "incident \($0)" } ?? "the rules (start-up or peer state)"
                logger.notice("ACTIVE: serving clients under epoch \(epoch)", metadata: ["epoch": "\(epoch)", "why": "\(reason)"])
                metrics.state(.active, epoch: epoch)
                stateChanged(to: .active, epoch: epoch, incident: effects.incidents.last?.id ?? node.activationIncident, reason: reason)
            case .deactivate(let state):
                try? store.setWriteEpoch(nil)
                let reason = why ?? "the rules (start-up or peer state)"
                logger.notice("\(state): not serving", metadata: ["epoch": "\(node.epoch)", "why": "\(reason)"])
                metrics.state(state, epoch: node.epoch)
                stateChanged(to: state, epoch: node.epoch, incident: effects.incidents.last?.id, reason: reason)
            case .redirectClients(let reason):
                redirectAllClients(reason)
            case .announceToWatchers(let epoch):
                clients.announce(activeEpoch: epoch, from: loop)
            case .warnWatchers(let peerEpoch):
                clients.warnWatchers(peerEpoch: peerEpoch, from: loop)
            case .witness(let request):
                askWitness(request)
            case .checkPeerPort:
                checkPeerPort()
            case .replicationRole(let role):
                setReplicationRole(role)
            case .linkReport(let report):
                logLinkReport(report)
                notePeerLink(report)
            case .slowLink(let roundTrip, let suggested):
                let timeout = settings.timings.peerHeartbeat * settings.timings.peerMisses
                let warning =
                    "the peer link's round trip is \(roundTrip.milliseconds) ms, close to the loss timeout of \(timeout.milliseconds) ms (timings.peer-heartbeat-ms × timings.peer-misses): raise it to at least \(suggested.milliseconds) ms, or a slow moment of this link will look like a failure"
                slowLinkWarning = warning
                metrics.peerRoundTrip(roundTrip)
                logger.warning("\(warning)")
            case .adminReply:
                break  // read by the caller of `admin`
            case .maintenanceEnded:
                logger.notice("maintenance mode ended (its time is up): automatic failover decisions resume")
                metrics.maintenance(nil)
            case .warning(let text):
                logger.warning("\(text)")
            }
        }
    }

    /// The hook hears of every change of serving state (not of a repeated one: a standby told
    /// again that it stands by is no change).
    private func stateChanged(to state: ServerState, epoch: UInt64, incident: String?, reason: String) {
        servingStateChanged?(state, epoch)
        if state != lastHookedState { stateSince = clock.wallNow }
        defer { lastHookedState = state }
        guard let hooks, state != lastHookedState else { return }
        hooks.notify(
            StateChange(
                state: state.hookName, role: settings.role.description, epoch: epoch, incident: incident, reason: reason, serverId: settings.serverId))
    }

    /// A frame to the peer, in Wire's terms.
    private func send(_ signal: PeerSignal) {
        switch signal {
        case .heartbeat:
            heartbeatSequence &+= 1
            sendPeer(.heartbeat(PeerHeartbeat(sequence: heartbeatSequence)))
        case .status(let status):
            sendPeer(.stateAnnouncement(status.announcement(configRevision: store.head.revision)))
        case .activationRequest(let request):
            logger.notice("asking the peer to activate (\(request.reason), request \(request.requestId))")
            sendPeer(.activationRequest(request))
        case .clientCount(let report):
            sendPeer(.clientCountReport(report))
        case .other:
            break
        }
    }

    private func logLinkReport(_ report: PeerLinkMonitor.Report) {
        switch report {
        case .up, .restored:
            logger.notice("peer link \(report == .up ? "up" : "restored") with \(peerInfo?.nodeId ?? "the peer")", metadata: ["peer": "\(peerInfo?.nodeId ?? "?")"])
        case .lost(let cause):
            logger.warning("peer link lost (\(cause == .closed ? "connection closed" : "silent"))", metadata: ["peer": "\(peerInfo?.nodeId ?? "?")"])
        case .stable: logger.info("peer link stable")
        case .suspect, .recovered: logger.debug("peer link \(report)")
        }
        if case .lost = report { metrics.peerLink(up: false) } else { metrics.peerLink(up: true) }
    }

    func sendPeer(_ message: PeerMessage) {
        peer?.send(message)
    }

    /// Tells every logged-in client to move to the other server (or, when its address is not
    /// known, ends their sessions so they try it on their own).
    func redirectAllClients(_ reason: RedirectReason) {
        let sessions = clients.registry.all
        logger.notice("redirecting \(sessions.count) clients to \(peerClientEndpoint?.description ?? "the other server") (\(reason))")
        for session in sessions {
            session.redirect(to: peerClientEndpoint, reason: reason, epoch: node.epoch)
        }
    }

    /// The gate that logins read: what the node says of this server (serving or not, under
    /// which epoch, whether it holds logins for a takeover, the seats the peer holds), where the
    /// other server is, and the licence.
    func publishServingState() {
        let state = node.state
        let epoch = node.epoch
        let alternate = peerClientEndpoint
        let enforcement = licence.enforcement
        let floor = licenceClock.highWater
        let peerSeats = node.peerSeats
        let holdsLogins = node.holdsLogins
        let servingUntil = node.servingUntil
        let takeoverHold = node.takeoverHold
        clients.gate.update {
            $0.active = state == .active
            $0.epoch = epoch
            $0.alternate = alternate
            $0.peerLoggedIn = peerSeats
            $0.licence = enforcement
            $0.clockFloor = floor
            $0.takingOver = holdsLogins
            $0.servingUntil = servingUntil
            $0.takeoverHold = takeoverHold
        }
        clients.servingChanged()
        metrics.state(state, epoch: epoch)
        metrics.revision(store.head.revision)
        metrics.licenceExpires(enforcement.licence?.licence.expires)
        let caughtUp = replicationRole != .follower || store.head.revision >= peerRevision
        let ready = started && (settings.role == .primary || state == .active || (node.isSynced && caughtUp))
        let incident = node.activationIncident
        let maintenance = node.inMaintenance
        health.publish {
            $0.state = state
            $0.epoch = epoch
            $0.incident = incident
            $0.ready = ready
            $0.maintenance = maintenance
        }
    }

    /// The licence may have changed what this server may do (a secondary needs the primary's).
    func updateActivationPermission() {
        feed(.licence(refusal: licence.activationRefusal))
    }

    func readLicenceClock() {
        let reading = licenceClock.read(clock.wallNow)
        if let warning = reading.warning { logger.warning("\(warning)") }
        if let mark = reading.persist {
            do { try clockFile.save(mark) } catch { logger.error("cannot save the licence clock's mark: \(error)") }
        }
    }

    func refreshIncidentFigure() {
        let open = (try? incidents.incidents().filter { $0.acknowledgedAt == nil }.count) ?? 0
        metrics.incidents(open: open)
    }
}
