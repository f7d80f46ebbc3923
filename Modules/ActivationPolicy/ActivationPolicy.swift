import HealthMonitor
import PairModel

/// Decides whether this server serves. One instance per server; pure: events and the
/// current time in, actions out (docs/failover-policy.md has the rules and their reasons).
public struct ActivationPolicy: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Row 3: link loss and majority client loss count as one event when this close.
        public var lossCorrelationWindow: Duration
        /// Row 3: a majority loss the census saw at most this long *before* the link loss may
        /// still be the same failure (the link is detected within its heartbeat timeout,
        /// clients only after theirs); one seen earlier was a loss with the link up (row 4).
        public var clientLossLead: Duration
        /// Row 3: the primary deactivates no sooner than this after its link loss, so the
        /// secondary (which detects the same loss within one heartbeat interval) is already
        /// active when the redirected clients arrive.
        public var deactivationSettle: Duration
        /// Row 4: how long the secondary waits for clients after a handover request.
        public var handoverTimeout: Duration
        /// Row 4: how long the primary waits for the secondary's report beyond its trial
        /// before giving the handover up (a report that comes later still decides it).
        public var handoverReportGrace: Duration
        /// Row 4: after a handover that brought no clients, the census must not retry at once.
        public var handoverRetryBackoff: Duration
        /// Row 4: clients that must reach the secondary for the handover to complete.
        public var handoverMinimumClients: Int
        /// Start-up: how long a primary waits for its secondary before serving alone (or,
        /// once paired, before waiting for authorization).
        public var startupPeerWait: Duration
        /// A switchover the peer did not complete in this time is abandoned.
        public var switchoverTimeout: Duration
        /// The witness, when one is configured (nil: the seed's rules exactly).
        public var witness: WitnessTiming?
        /// A primary awaiting authorization resumes on the secondary's "standby" only once the
        /// link has stayed up this long after it: a process that wakes from a freeze reads from
        /// its socket what the secondary said before it took over, and the takeover that
        /// followed (its "active", or the closed link) arrives right behind
        /// (`failover-sim --witness` seed 1324).
        public var resumeConfirmation: Duration

        public init(
            lossCorrelationWindow: Duration = .seconds(5), clientLossLead: Duration = .milliseconds(300),
            deactivationSettle: Duration = .milliseconds(200), handoverTimeout: Duration = .seconds(5),
            handoverReportGrace: Duration = .seconds(10), handoverRetryBackoff: Duration = .seconds(30), handoverMinimumClients: Int = 1,
            startupPeerWait: Duration = .seconds(1), switchoverTimeout: Duration = .seconds(5), witness: WitnessTiming? = nil,
            resumeConfirmation: Duration = .milliseconds(300)
        ) {
            self.witness = witness
            self.resumeConfirmation = resumeConfirmation
            self.lossCorrelationWindow = lossCorrelationWindow
            self.clientLossLead = clientLossLead
            self.deactivationSettle = deactivationSettle
            self.handoverTimeout = handoverTimeout
            self.handoverReportGrace = handoverReportGrace
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

    /// A row-4 trial on the secondary's side.
    struct Trial: Equatable {
        var requestId: UInt32
        /// When the trial ends; nil once it ended with clients and waits for the primary's
        /// decision (its deactivation, or a re-assertion that cancels the handover).
        var deadline: MonotonicTime?
        var reported: Bool
    }

    /// Row 6: both servers were active when the link came up. Each side sends one entry per
    /// round once its link is stable, and both decide on the same two entries.
    struct Settle: Equatable {
        var round: UInt32
        var own: PeerStatus?
        var peer: PeerStatus?
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
    var linkLostCause: PeerLinkMonitor.LossCause?
    /// The peer as it last announced itself before the link was lost.
    var peerBeforeLoss: PeerStatus?
    /// The last client loss the census reported while this primary served.
    var clientLoss: ClientLoss?
    var selfDeactivationAt: MonotonicTime?
    /// When an awaiting primary resumes, the secondary's "standby" still standing.
    var resumeAt: MonotonicTime?
    var loggedInClients = 0
    var activationRefusal: String?
    var peer: PeerStatus?
    /// This side was active when the link came up: if the peer's first announcement says it
    /// is active too, the split is settled by rounds (row 6).
    var activeAtLinkUp = false
    var firstPeerAnnouncementSeen = false
    /// The peer went from not serving to serving while this link was up (a trial, a forced
    /// activation): if it holds the higher epoch, it is the later decision, and this side
    /// yields to it. A peer that was already serving when the link came up is a split.
    var peerActivatedWhileLinked = false
    /// This primary stands by because an administrator moved service to the secondary: it
    /// takes over again if the link is lost. A primary that stands by after a start-up has
    /// not been told anything, and goes to awaiting authorization when it finds the
    /// secondary serving (row 5).
    public internal(set) var standbyByPlan = false
    var splitToSettle = false
    var settle: Settle?
    var lastSettleRound: UInt32 = 0
    var handover: PendingRequest?
    /// The last handover request, so that a report arriving after its deadline still decides.
    var lastHandoverId: UInt32?
    var handoverCooldownUntil: MonotonicTime?
    var trial: Trial?
    var switchover: PendingRequest?
    var peerReplicationLag: UInt64?
    /// The highest epoch the peer was seen with in this run. An active server keeps its own
    /// epoch while the peer trials a higher one (row 4), but must mint above it later; and a
    /// peer frame below it is stale.
    var highestPeerEpoch: UInt64 = 0
    var nextRequestId: UInt32 = 1
    /// The link was lost and this standby takes over only on the witness's word (a key
    /// held, the peer's process gone, or the witness down), not at once.
    public internal(set) var awaitingWitness = false
    /// Maintenance mode (`patronictl pause`): no automatic decision (no failover, no
    /// self-deactivation, no handover, no row-4 trial); the link's and the census's reports
    /// are still taken, so the state is right when it ends. Manual commands still work.
    public internal(set) var paused = false
    /// A secondary that stopped in maintenance when its lease ended: it may take the key back
    /// before maintenance ends (`witnessSaid`).
    var leaseLostInMaintenance = false

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
    public var isLinkStable: Bool { link == .up(stable: true) }
    /// A handover, switchover or split settlement is under way: both servers may be active
    /// on purpose for a moment.
    public var isHandingOver: Bool { handover != nil || trial != nil || switchover != nil || splitToSettle }
    /// Whether this server may serve (a secondary needs the primary's licence and a first
    /// configuration sync); announced to the peer.
    public var canActivate: Bool { activationRefusal == nil }
    /// A loss of the peer link would make this server active at once (row 2), as
    /// `actOnLostLink` decides it: for the watchers' early warning, which must not promise a
    /// takeover that will not come. With a witness a silent link is taken over only once the
    /// peer's lease ran out, seconds later or never: warned clients that found their server
    /// slow would leave it for a server that does not serve yet (measured: 10,000 clients
    /// refused and retrying, a storm that took 86 s to clear).
    public var activatesOnLinkLoss: Bool {
        persistent.state == .standby && hasHeardFromPeer && (role == .secondary || standbyByPlan) && activationRefusal == nil && !paused
            && configuration.witness == nil
    }
    /// The peer as last announced (nil while the link is down).
    public var peerStatus: PeerStatus? { peer }

    public var status: PeerStatus {
        PeerStatus(role: role, state: persistent.state, epoch: persistent.epoch, loggedInClients: loggedInClients, canActivate: canActivate)
    }

    /// When `.tick` must next be delivered; nil while nothing is timed.
    public var nextDeadline: MonotonicTime? {
        startupDeadline.earliest(selfDeactivationAt).earliest(trial?.deadline).earliest(handover?.deadline)
            .earliest(switchover?.deadline).earliest(resumeAt)
    }

    public mutating func handle(_ event: PolicyEvent, at now: MonotonicTime) -> [PolicyAction] {
        // The start-up wait ran out before this input was read (the process was frozen past
        // it): it ends first, as it would have with its timer on time. Otherwise a paired
        // primary reading, at once on waking, a "standby" its secondary sent before taking
        // over would serve beside it (`failover-sim --witness` seed 42885); ended, it awaits
        // authorization and the announcement must stand (`resumeConfirmation`). Only this
        // deadline goes first: its outcome is the cautious one, where a resumption's, run
        // before the closed link read behind it, would serve on the stale word (seed 1324).
        var actions = startupWaitEndedIfDue(at: now)
        switch event {
        case .start: actions += start(at: now)
        case .tick: break
        case .link(let report): actions += linkChanged(report, at: now)
        case .census(let report): actions += censusReported(report, at: now)
        case .loggedInClients(let count):
            loggedInClients = count
            actions += trialProgress()
        case .peerState(let status): actions += peerAnnounced(status, at: now)
        case .peerActivationRequest(let request): actions += activationRequested(request, at: now)
        case .peerClientCount(let report): actions += clientCountReported(report, at: now)
        case .peerReplicationLag(let lag):
            peerReplicationLag = lag
        case .activationPermission(let refusal):
            let changed = refusal != activationRefusal
            activationRefusal = refusal
            // The peer must know: a primary never yields to a server that cannot serve.
            actions += changed ? announceIfLinked() : []
            if changed && refusal == nil { actions += permissionGranted(at: now) }
        case .admin(let command): actions += adminCommand(command, at: now)
        case .maintenance(let on): actions += maintenanceChanged(on, at: now)
        case .witness(let verdict): actions += witnessSaid(verdict, at: now)
        }
        actions += deadlinesPassed(at: now)
        // Whatever ended just now (a handover, a trial, a switchover, a hold), a server that
        // finds its peer active beside it on an up link decides again (docs: "exactly one").
        return actions + resolveBothActive(at: now)
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

    mutating func activate(
        at now: MonotonicTime, incident cause: IncidentCause?, onTrial: Bool = false, details: (inout Incident) -> Void = { _ in }
    ) -> [PolicyAction] {
        persistent.epoch = nextEpoch
        persistent.state = .active
        persistent.onTrial = onTrial
        standbyByPlan = false
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
        persistent.onTrial = false
        trial = nil
        handover = nil
        switchover = nil
        selfDeactivationAt = nil
        splitToSettle = false
        settle = nil
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

    /// The peer's frame carries an epoch below the highest this server saw it with: it was
    /// sent before something this server already knows (TCP keeps order, but epochs are the
    /// protocol's own guard). Ignored and reported.
    func isStale(_ epoch: UInt64, _ what: String) -> PolicyAction? {
        epoch < highestPeerEpoch ? .warning("ignored a stale \(what) from the peer: epoch \(epoch), below its epoch \(highestPeerEpoch)") : nil
    }

    mutating func makeIncident(_ cause: IncidentCause, at now: MonotonicTime, details: (inout Incident) -> Void = { _ in }) -> Incident {
        persistent.incidentSequence += 1
        var incident = Incident(
            id: "\(role == .primary ? "P" : "S")\(persistent.epoch)-\(persistent.incidentSequence)", cause: cause, role: role,
            epoch: persistent.epoch, decidedAt: now, linkLostAt: linkLostAt, clientLossAt: clientLoss?.at,
            loggedInClients: loggedInClients, clientsLost: clientLoss?.lost, clientPopulation: clientLoss?.population, peer: peer)
        details(&incident)
        return incident
    }

    mutating func startupWaitEndedIfDue(at now: MonotonicTime) -> [PolicyAction] {
        guard let deadline = startupDeadline, now >= deadline else { return [] }
        startupDeadline = nil
        return startupWaitExpired(at: now)
    }

    mutating func deadlinesPassed(at now: MonotonicTime) -> [PolicyAction] {
        var actions = startupWaitEndedIfDue(at: now)
        if let deadline = selfDeactivationAt, now >= deadline {
            selfDeactivationAt = nil
            actions += selfDeactivationDue(at: now)
        }
        if let deadline = trial?.deadline, now >= deadline { actions += trialExpired(at: now) }
        if let deadline = handover?.deadline, now >= deadline { actions += handoverExpired(at: now) }
        if let deadline = resumeAt, now >= deadline {
            resumeAt = nil
            actions += resumeIfStillUnserved(at: now)
        }
        if let deadline = switchover?.deadline, now >= deadline {
            switchover = nil
            actions.append(.warning("switchover abandoned: the peer did not take over within \(configuration.switchoverTimeout)"))
        }
        return actions
    }
}
