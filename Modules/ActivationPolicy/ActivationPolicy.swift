import HealthMonitor
import Wire

/// Decides whether this server serves. One instance per server; pure: events and the
/// current time in, actions out (docs/failover-policy.md has the rules and their reasons).
public struct ActivationPolicy: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Row 3: link loss and majority client loss count as one event when this close.
        public var lossCorrelationWindow: Duration
        /// Row 3: the primary deactivates no sooner than this after its link loss, so the
        /// secondary (which detects the same loss within one heartbeat interval) is already
        /// active when the redirected clients arrive.
        public var deactivationSettle: Duration
        /// Row 4: how long the secondary waits for clients after a handover request.
        public var handoverTimeout: Duration
        /// Row 4: after a handover that brought no clients, the census must not retry at once.
        public var handoverRetryBackoff: Duration
        /// Row 4: clients that must reach the secondary for the handover to complete.
        public var handoverMinimumClients: Int
        /// Start-up: how long a primary waits for its secondary before serving alone.
        public var startupPeerWait: Duration
        /// A switchover the peer did not complete in this time is abandoned.
        public var switchoverTimeout: Duration

        public init(
            lossCorrelationWindow: Duration = .seconds(5), deactivationSettle: Duration = .milliseconds(200),
            handoverTimeout: Duration = .seconds(5), handoverRetryBackoff: Duration = .seconds(30),
            handoverMinimumClients: Int = 1, startupPeerWait: Duration = .seconds(1), switchoverTimeout: Duration = .seconds(5)
        ) {
            self.lossCorrelationWindow = lossCorrelationWindow
            self.deactivationSettle = deactivationSettle
            self.handoverTimeout = handoverTimeout
            self.handoverRetryBackoff = handoverRetryBackoff
            self.handoverMinimumClients = handoverMinimumClients
            self.startupPeerWait = startupPeerWait
            self.switchoverTimeout = switchoverTimeout
        }
    }

    enum Link: Equatable {
        case down
        case up(stable: Bool)
    }

    /// Who yields when both servers were active as the link came up (row 6).
    enum HealDecision: Equatable {
        case yield(winner: PeerStatus)
        case keep(loser: PeerStatus)
    }

    struct PendingRequest: Equatable {
        var id: UInt32
        var deadline: MonotonicTime
        /// For a switchover: the incident it acknowledges.
        var acknowledging: String? = nil
    }

    struct ClientLoss: Equatable {
        var at: MonotonicTime
        var lost: Int
        var population: Int
        var majority: Bool
    }

    struct Trial: Equatable {
        var requestId: UInt32
        var deadline: MonotonicTime
        var reported: Bool
    }

    public let role: ServerRole
    public let configuration: Configuration
    var persistent: PersistentState

    // Everything below lives for one run of the process.
    var started = false
    var startupDeadline: MonotonicTime?
    var link: Link = .down
    /// A server that has never heard from its peer in this run does not activate when a
    /// link it never had is "lost": a secondary starting alone stays standby.
    public internal(set) var hasHeardFromPeer = false
    var linkLostAt: MonotonicTime?
    /// The last client loss the census reported while this primary served.
    var clientLoss: ClientLoss?
    var selfDeactivationAt: MonotonicTime?
    var loggedInClients = 0
    var activationRefusal: String?
    var peer: PeerStatus?
    var ownLinkUpStatus: PeerStatus?
    var peerLinkUpStatus: PeerStatus?
    var healDecision: HealDecision?
    var handover: PendingRequest?
    var handoverCooldownUntil: MonotonicTime?
    var trial: Trial?
    var switchover: PendingRequest?
    var peerReplicationLag: UInt64?
    /// The highest epoch the peer was seen with in this run. An active server keeps its own
    /// epoch while the peer trials a higher one (row 4), but must mint above it later.
    var highestPeerEpoch: UInt64 = 0
    var nextRequestId: UInt32 = 1

    public init(role: ServerRole, configuration: Configuration = Configuration(), persisted: PersistentState = PersistentState()) {
        self.role = role
        self.configuration = configuration
        self.persistent = persisted
    }

    public var state: ServerState { persistent.state }
    public var epoch: UInt64 { persistent.epoch }
    public var persistentState: PersistentState { persistent }
    public var activationIncident: String? { persistent.activationIncident }
    public var isLinkUp: Bool { link != .down }
    /// A handover or switchover is under way: both servers may be active on purpose.
    public var isHandingOver: Bool { handover != nil || trial != nil || switchover != nil }

    public var status: PeerStatus {
        PeerStatus(role: role, state: persistent.state, epoch: persistent.epoch, loggedInClients: loggedInClients)
    }

    /// When `.tick` must next be delivered; nil while nothing is timed.
    public var nextDeadline: MonotonicTime? {
        startupDeadline.earliest(selfDeactivationAt).earliest(trial?.deadline).earliest(handover?.deadline)
            .earliest(switchover?.deadline)
    }

    public mutating func handle(_ event: PolicyEvent, at now: MonotonicTime) -> [PolicyAction] {
        var actions: [PolicyAction]
        switch event {
        case .start: actions = start(at: now)
        case .tick: actions = []
        case .link(let report): actions = linkChanged(report, at: now)
        case .census(let report): actions = censusReported(report, at: now)
        case .loggedInClients(let count):
            loggedInClients = count
            actions = trialProgress()
        case .peerState(let status): actions = peerAnnounced(status, at: now)
        case .peerActivationRequest(let request): actions = activationRequested(request, at: now)
        case .peerClientCount(let report): actions = clientCountReported(report, at: now)
        case .peerReplicationLag(let lag):
            peerReplicationLag = lag
            actions = []
        case .activationPermission(let refusal):
            activationRefusal = refusal
            actions = []
        case .admin(let command): actions = adminCommand(command, at: now)
        }
        return actions + deadlinesPassed(at: now)
    }

    // MARK: Transitions shared by the rules

    /// The next epoch this server may mint: above every epoch it knows, with its role's
    /// parity (primary even, secondary odd) so the two servers never mint the same one.
    var nextEpoch: UInt64 {
        let parity: UInt64 = role == .primary ? 0 : 1
        var next = max(persistent.epoch, highestPeerEpoch) + 1
        if next % 2 != parity { next += 1 }
        return next
    }

    mutating func activate(at now: MonotonicTime, incident cause: IncidentCause?, details: (inout Incident) -> Void = { _ in })
        -> [PolicyAction]
    {
        persistent.epoch = nextEpoch
        persistent.state = .active
        var actions: [PolicyAction] = []
        if let cause {
            let incident = makeIncident(cause, at: now, details: details)
            persistent.activationIncident = incident.id
            actions.append(.recordIncident(incident))
        } else {
            persistent.activationIncident = nil
        }
        startupDeadline = nil
        return [.persist(persistent)] + actions + [.activate(epoch: persistent.epoch)] + announceIfLinked()
    }

    /// Stays active under a new epoch above every one known, keeping the incident behind
    /// the activation: the active server always holds the highest epoch.
    mutating func reassert() -> [PolicyAction] {
        persistent.epoch = nextEpoch
        return [.persist(persistent), .activate(epoch: persistent.epoch)] + announceIfLinked()
    }

    /// Stops serving. A primary that stops because the secondary now serves goes to
    /// "awaiting authorization"; anything else goes to standby.
    mutating func deactivate(to newState: ServerState, redirect reason: RedirectReason?) -> [PolicyAction] {
        persistent.state = newState
        persistent.epoch = max(persistent.epoch, highestPeerEpoch)
        persistent.activationIncident = nil
        trial = nil
        handover = nil
        switchover = nil
        selfDeactivationAt = nil
        var actions: [PolicyAction] = [.persist(persistent), .deactivate(newState)]
        if let reason { actions.append(.redirectClients(reason)) }
        return actions + announceIfLinked()
    }

    /// The state a server yields to when the peer takes over service from it.
    var yieldedState: ServerState { role == .primary ? .awaitingAuthorization : .standby }

    mutating func adoptEpoch(_ epoch: UInt64) -> [PolicyAction] {
        highestPeerEpoch = max(highestPeerEpoch, epoch)
        guard epoch > persistent.epoch else { return [] }
        persistent.epoch = epoch
        return [.persist(persistent)]
    }

    func announceIfLinked() -> [PolicyAction] { link == .down ? [] : [.announce(status)] }

    mutating func makeIncident(_ cause: IncidentCause, at now: MonotonicTime, details: (inout Incident) -> Void = { _ in }) -> Incident {
        persistent.incidentSequence += 1
        var incident = Incident(
            id: "\(role == .primary ? "P" : "S")\(persistent.epoch)-\(persistent.incidentSequence)", cause: cause, role: role,
            epoch: persistent.epoch, decidedAt: now, linkLostAt: linkLostAt, clientLossAt: clientLoss?.at,
            loggedInClients: loggedInClients, clientsLost: clientLoss?.lost, clientPopulation: clientLoss?.population, peer: peer)
        details(&incident)
        return incident
    }

    mutating func deadlinesPassed(at now: MonotonicTime) -> [PolicyAction] {
        var actions: [PolicyAction] = []
        if let deadline = startupDeadline, now >= deadline {
            startupDeadline = nil
            actions += startupWaitExpired(at: now)
        }
        if let deadline = selfDeactivationAt, now >= deadline {
            selfDeactivationAt = nil
            actions += selfDeactivationDue(at: now)
        }
        if let deadline = trial?.deadline, now >= deadline { actions += trialExpired(at: now) }
        if let deadline = handover?.deadline, now >= deadline { actions += handoverExpired(at: now) }
        if let deadline = switchover?.deadline, now >= deadline {
            switchover = nil
            actions.append(.warning("switchover abandoned: the peer did not take over within \(configuration.switchoverTimeout)"))
        }
        return actions
    }
}
