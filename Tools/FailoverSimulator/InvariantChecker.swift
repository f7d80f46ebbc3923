import ActivationPolicy
import HealthMonitor
import Wire

/// The properties every schedule must keep, checked after every simulated event.
final class InvariantChecker {
    let settings: SimulationSettings
    private(set) var violations: [String] = []
    private var lastEpoch = [UInt64](repeating: 0, count: 2)
    private var unservedSince: MonotonicTime?
    private var reportedUnserved = false
    private var reportedSplit = false
    private var wrongCountSince: MonotonicTime?
    /// The primary stopped serving while the secondary served: it may serve again only
    /// with an authorization (a switchover accepted on the secondary) or a forced activation.
    private var primaryFailedOver = false
    private var primaryAuthorized = false
    /// The administrator command whose actions are being carried out, if any.
    var commandInProgress: (command: AdminCommand, role: ServerRole)?
    /// Longest stretch without a serving server, for the summary.
    private(set) var longestUnserved: Duration = .zero

    init(settings: SimulationSettings) {
        self.settings = settings
    }

    func fail(_ message: String, _ pair: SimulatedPair) {
        pair.log("VIOLATION: \(message)")
        violations.append("\(pair.now): \(message)")
    }

    func check(_ pair: SimulatedPair) {
        checkEpochs(pair)
        checkSingleActiveOnStableLink(pair)
        checkServiceGap(pair)
        let primary = pair.servers[0]
        let secondary = pair.servers[1]
        if primary.running && primary.policy.state == .awaitingAuthorization && secondary.running
            && secondary.policy.state == .active
        {
            primaryFailedOver = true
        }
    }

    /// Epochs never go backwards, in memory or on disk, across restarts included.
    private func checkEpochs(_ pair: SimulatedPair) {
        for (i, server) in pair.servers.enumerated() {
            let epoch = max(server.policy.epoch, server.disk.epoch)
            if server.running && server.policy.epoch < lastEpoch[i] {
                fail("\(server.role) epoch went back from \(lastEpoch[i]) to \(server.policy.epoch)", pair)
            }
            lastEpoch[i] = max(lastEpoch[i], epoch)
        }
    }

    /// With the link up and stable on both sides, exactly one server serves within one
    /// detection period (a row-4 handover is the one sanctioned overlap).
    private func checkSingleActiveOnStableLink(_ pair: SimulatedPair) {
        let (p, s) = (pair.servers[0], pair.servers[1])
        guard p.running, s.running, !p.isPaused, !s.isPaused, pair.peerNetworkUp,
            let ps = p.stableOn, let ss = s.stableOn, ps.connection == ss.connection,
            p.connectionId == ps.connection, s.connectionId == ss.connection,
            pair.now - max(ps.at, ss.at) >= settings.detectionPeriod,
            !p.policy.isHandingOver, !s.policy.isHandingOver
        else {
            reportedSplit = false
            wrongCountSince = nil
            return
        }
        let active = pair.servers.filter { $0.policy.state == .active }.count
        guard active != 1 else {
            wrongCountSince = nil
            return
        }
        // An administrator may force the standby active on a healthy link; the other side
        // must then yield within a detection period too.
        let since = wrongCountSince ?? pair.now
        wrongCountSince = since
        if pair.now - since >= settings.detectionPeriod && !reportedSplit {
            reportedSplit = true
            fail("link stable since \(max(ps.at, ss.at)) but \(active) servers are active since \(since)", pair)
        }
    }

    /// While some server could serve, the time with none serving stays within the bound.
    /// By design nobody serves while the only running servers are a primary awaiting
    /// authorization with the link down, or a secondary that never heard from a primary.
    private func checkServiceGap(_ pair: SimulatedPair) {
        let candidates = pair.servers.filter { $0.running && !$0.isPaused }
        let served = candidates.contains { $0.policy.state == .active }
        let excused = candidates.allSatisfy { server in
            switch (server.role, server.policy.state) {
            case (.primary, .awaitingAuthorization): !server.policy.isLinkUp
            case (.secondary, .standby): !server.policy.hasHeardFromPeer
            default: false
            }
        }
        guard !served, !excused else {
            if let since = unservedSince { longestUnserved = max(longestUnserved, pair.now - since) }
            unservedSince = nil
            reportedUnserved = false
            return
        }
        let since = unservedSince ?? pair.now
        unservedSince = since
        if pair.now - since > settings.unservedBound && !reportedUnserved {
            reportedUnserved = true
            fail("no server has served since \(since) although one could", pair)
        }
    }

    /// An accepted switchover on the secondary, or a forced activation of the primary, is
    /// the administrator's authorization for the primary to serve again.
    func noteAdmin(_ command: AdminCommand, on role: ServerRole, accepted: Bool) {
        guard accepted else { return }
        switch (command, role) {
        case (.switchover, .secondary), (.forceActivation, .primary): primaryAuthorized = true
        default: break
        }
    }

    /// Row 6: the side that yields had fewer clients in the announcements both compared
    /// (or as many, and the lower epoch); the side that keeps serving had more.
    func noteIncident(_ incident: Incident, pair: SimulatedPair) {
        guard case .splitResolved(let yielded) = incident.cause, let other = incident.peer else { return }
        let own = incident.loggedInClients
        let ownShouldYield = own != other.loggedInClients ? own < other.loggedInClients : incident.epoch < other.epoch
        if yielded != ownShouldYield && own != other.loggedInClients {
            fail("\(incident.role) \(yielded ? "yielded" : "kept serving") with \(own) clients against \(other.loggedInClients)", pair)
        }
    }

    func noteActivation(of role: ServerRole, epoch: UInt64, pair: SimulatedPair) {
        let i = role == .primary ? 0 : 1
        let server = pair.servers[i]
        if server.disk.epoch < epoch {
            fail("\(role) activated at epoch \(epoch) before persisting it (disk has \(server.disk.epoch))", pair)
        }
        guard role == .primary else { return }
        if case (.forceActivation, .primary)? = commandInProgress.map({ ($0.command, $0.role) }) { primaryAuthorized = true }
        if primaryFailedOver && !primaryAuthorized {
            fail("the primary serves again after a failover without authorization", pair)
        }
        primaryFailedOver = false
        primaryAuthorized = false
    }
}
