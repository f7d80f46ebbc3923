import ActivationPolicy
import ConfigModel
import ConfigStore
import Foundation
import HealthMonitor
import Licensing
import Logging
import NIOCore
import PairModel
import Wire

/// Carrying out what the policy and the link monitor decide, in the order they decided it.
extension Controller {
    func perform(_ actions: [PolicyAction]) {
        // The incident in the same list explains the state change that follows it.
        var why: String?
        for action in actions {
            switch action {
            case .persist(let state):
                do {
                    try stateStore.savePolicyState(state)
                } catch {
                    // Nothing that depends on this state may happen: the disk refused it.
                    logger.critical("cannot persist the failover state (\(error)); the actions that depend on it are not carried out")
                    return
                }
            case .activate(let epoch):
                do {
                    try store.setWriteEpoch(epoch)
                } catch {
                    logger.error("configuration writes stay closed: \(error)")
                }
                logger.notice(
                    "ACTIVE: serving clients under epoch \(epoch)", metadata: ["why": "\(why ?? policy.activationIncident.map { "incident \($0)" } ?? "the rules (start-up or peer state)")"])
                metrics.state(.active, epoch: epoch)
            case .deactivate(let state):
                try? store.setWriteEpoch(nil)
                logger.notice("\(state): not serving", metadata: ["why": "\(why ?? "the rules (start-up or peer state)")"])
                metrics.state(state, epoch: policy.epoch)
            case .announce(let status):
                sendPeer(.stateAnnouncement(status.announcement(configRevision: store.head.revision)))
            case .requestPeerActivation(let request):
                logger.notice("asking the peer to activate (\(request.reason), request \(request.requestId))")
                sendPeer(.activationRequest(request))
            case .reportClientCount(let report):
                sendPeer(.clientCountReport(report))
            case .redirectClients(let reason):
                redirectAllClients(reason)
            case .recordIncident(let incident):
                why = "incident \(incident.id): \(incident.cause)"
                logger.notice("incident \(incident.id): \(incident.cause)", metadata: ["epoch": "\(incident.epoch)", "clients": "\(incident.loggedInClients)"])
                do {
                    try incidents.record(incident, at: clock.wallNow)
                } catch {
                    logger.error("cannot store incident \(incident.id): \(error)")
                }
                switch incident.cause {
                case .peerLinkLost, .clientLossHandover, .linkAndMajorityLost: metrics.failover()
                default: break
                }
                refreshIncidentFigure()
            case .acknowledgeIncident(let id):
                logger.notice("incident \(id) acknowledged by the switchover")
                try? incidents.acknowledge(id, at: clock.wallNow)
                refreshIncidentFigure()
            case .adminAccepted, .adminRefused:
                adminReplies.append(action)
            case .warning(let text):
                logger.warning("\(text)")
            }
        }
    }

    func performMonitor(_ actions: [PeerLinkMonitor.Action]) {
        for action in actions {
            switch action {
            case .sendHeartbeat:
                heartbeatSequence &+= 1
                sendPeer(.heartbeat(PeerHeartbeat(sequence: heartbeatSequence)))
            case .closeConnection:
                logger.warning("peer link silent for \(settings.timings.peerHeartbeat * settings.timings.peerMisses): closing it")
                peer?.close(Goodbye(reason: .idleTimeout, detail: "nothing heard from the peer in time"))
            case .slowLink(let roundTrip, let suggested):
                let timeout = settings.timings.peerHeartbeat * settings.timings.peerMisses
                let warning =
                    "the peer link's round trip is \(roundTrip.milliseconds) ms, close to the loss timeout of \(timeout.milliseconds) ms (timings.peer-heartbeat-ms × timings.peer-misses): raise it to at least \(suggested.milliseconds) ms, or a slow moment of this link will look like a failure"
                slowLinkWarning = warning
                metrics.peerRoundTrip(roundTrip)
                logger.warning("\(warning)")
            case .report(let report):
                switch report {
                case .up, .restored: logger.notice("peer link \(report == .up ? "up" : "restored") with \(peerInfo?.nodeId ?? "the peer")")
                case .lost(let cause):
                    logger.warning("peer link lost (\(cause == .closed ? "connection closed" : "silent"))")
                    // A closed link: the peer's process ended (or its host reset the connection), and
                    // the kernel closes its clients' connections as well: they come by themselves, and
                    // an activation's announcement would only add a message and a probe per client to
                    // the storm. It waits, for the clients that heard no close. A silent link gives its
                    // clients nothing to notice: they hear at once.
                    announcementHeldUntil = cause == .closed ? clock.now + settings.timings.announcementDelayAfterClose : nil
                case .stable: logger.info("peer link stable")
                case .suspect, .recovered: logger.debug("peer link \(report)")
                }
                metrics.peerLink(up: monitorSaysUp(report))
                decide(.link(report))
            }
        }
    }

    private func monitorSaysUp(_ report: PeerLinkMonitor.Report) -> Bool {
        if case .lost = report { return false }
        return true
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
            session.redirect(to: peerClientEndpoint, reason: reason, epoch: policy.epoch)
        }
        census.allLeft(at: clock.now)
    }

    /// The gate that logins read: this server's state, epoch, where the other server is, and
    /// the seats the peer holds while it serves.
    func publishServingState() {
        let state = policy.state
        let epoch = policy.epoch
        let peerActive = peerInfo != nil && policy.peerStatus?.state == .active
        let peerCount = peerActive ? policy.peerStatus?.loggedInClients ?? 0 : 0
        let alternate = peerClientEndpoint
        let enforcement = licence.enforcement
        let floor = licenceClock.highWater
        // Any standby that may activate holds a login briefly, link up or not: the clients of a
        // killed primary arrive before this loop has read the peer link's close, and refused they
        // would each pay a backoff. A client that came here by mistake waits the hold, then goes.
        let takingOver = state == .standby && policy.canActivate
        clients.gate.update {
            $0.active = state == .active
            $0.epoch = epoch
            $0.alternate = alternate
            $0.peerLoggedIn = peerCount
            $0.licence = enforcement
            $0.clockFloor = floor
            $0.takingOver = takingOver
        }
        clients.servingChanged()
        if let held = announcementHeldUntil, clock.now >= held { announcementHeldUntil = nil }
        if state != .active || announcementHeldUntil == nil {
            clients.announce(activeEpoch: state == .active ? epoch : nil, from: loop)
        }
        metrics.state(state, epoch: epoch)
        metrics.revision(store.head.revision)
    }

    /// A secondary may serve once it holds the primary's licence and has completed a first
    /// configuration sync; a primary, once it holds a valid licence.
    func updateActivationPermission() {
        let refusal = licence.activationRefusal
            ?? (synced ? nil : "it has not completed a first configuration sync with the primary, and would serve an empty configuration")
        handle(.activationPermission(refusal: refusal))
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
