import HealthMonitor
import PairModel

/// What one server says of itself on the peer link (the policy's part of Wire's
/// `StateAnnouncement`; the shell adds the configuration revision).
public struct PeerStatus: Equatable, Sendable, CustomStringConvertible {
    public var role: ServerRole
    public var state: ServerState
    public var epoch: UInt64
    public var loggedInClients: Int
    /// Whether the sender could serve if it had to (a licence, a first configuration sync):
    /// a primary never yields to a peer that cannot take its clients.
    public var canActivate: Bool
    /// Non-zero: this is the sender's entry in that settle round (row 6).
    public var settleRound: UInt32

    public init(
        role: ServerRole, state: ServerState, epoch: UInt64, loggedInClients: Int, canActivate: Bool = true, settleRound: UInt32 = 0
    ) {
        self.role = role
        self.state = state
        self.epoch = epoch
        self.loggedInClients = loggedInClients
        self.canActivate = canActivate
        self.settleRound = settleRound
    }

    public var description: String {
        "\(role) \(state) epoch \(epoch) with \(loggedInClients) clients" + (canActivate ? "" : ", cannot activate")
            + (settleRound > 0 ? ", settle round \(settleRound)" : "")
    }
}

/// What the policy needs to survive a restart. The shell stores it durably *before*
/// carrying out the actions that follow a `.persist` in the same list.
public struct PersistentState: Equatable, Sendable, Codable {
    public var epoch: UInt64
    public var state: ServerState
    /// The incident behind the current activation; a switchover away from this server must
    /// name it (the authorization of the switch back).
    public var activationIncident: String?
    public var incidentSequence: UInt64
    /// A secondary serving on trial for a row-4 handover, not yet confirmed: after a restart
    /// the trial is abandoned, never taken for a failover.
    public var onTrial: Bool
    /// A primary that has heard from its secondary at least once: restarted without
    /// reaching it, it cannot know whether the secondary serves, so it does not serve alone.
    public var paired: Bool

    public init(
        epoch: UInt64 = 0, state: ServerState = .standby, activationIncident: String? = nil, incidentSequence: UInt64 = 0,
        onTrial: Bool = false, paired: Bool = false
    ) {
        self.epoch = epoch
        self.state = state
        self.activationIncident = activationIncident
        self.incidentSequence = incidentSequence
        self.onTrial = onTrial
        self.paired = paired
    }

    enum CodingKeys: String, CodingKey { case epoch, state, activationIncident, incidentSequence, onTrial, paired }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        epoch = try container.decode(UInt64.self, forKey: .epoch)
        state = try container.decode(ServerState.self, forKey: .state)
        activationIncident = try container.decodeIfPresent(String.self, forKey: .activationIncident)
        incidentSequence = try container.decode(UInt64.self, forKey: .incidentSequence)
        onTrial = try container.decodeIfPresent(Bool.self, forKey: .onTrial) ?? false
        paired = try container.decodeIfPresent(Bool.self, forKey: .paired) ?? false
    }
}


public enum AdminCommand: Equatable, Sendable {
    /// Given to the active server: move service to the peer. Names the incident behind the
    /// current activation when there is one (that is the authorization of a switch back).
    case switchover(acknowledging: String?)
    /// Given to a server that is not active: serve now, whatever the peer link says.
    case forceActivation(reason: String)
}

public enum PolicyEvent: Equatable, Sendable {
    case start
    /// Nothing happened but time passed: call at `nextDeadline`.
    case tick
    case link(PeerLinkMonitor.Report)
    case census(ClientCensus.Report)
    case loggedInClients(Int)
    case peerState(PeerStatus)
    case peerActivationRequest(ActivationRequest)
    case peerClientCount(ClientCountReport)
    /// How many configuration revisions the peer is behind this server; nil when unknown.
    case peerReplicationLag(UInt64?)
    /// Whether this server may serve at all (a secondary needs the primary's licence).
    case activationPermission(refusal: String?)
    case admin(AdminCommand)
    /// Maintenance mode began (true) or ended (false): automatic decisions pause meanwhile.
    case maintenance(Bool)
    /// What the witness (etcd, optional) says; only with `Configuration.witness` set.
    case witness(WitnessVerdict)
}

/// The optional witness (issue 29): a lease-backed key in etcd that the serving server holds.
/// Two servers alone cannot tell a dead peer from a cut link; the key is the third vote.
public struct WitnessTiming: Sendable, Equatable {
    /// The lease's time to live in etcd (whole seconds there; etcd's own floor is about 2 s).
    public var leaseTTL: Duration
    /// What a holder takes off its lease's end when it counts on its own clock: clock-rate
    /// drift, a late tick, the etcd server's own lag in expiring leases.
    public var driftMargin: Duration

    public init(leaseTTL: Duration = .seconds(3), driftMargin: Duration = .milliseconds(500)) {
        self.leaseTTL = leaseTTL
        self.driftMargin = driftMargin
    }
}

/// What the node concluded from the witness's answers (PairNode keeps the lease's books).
public enum WitnessVerdict: Equatable, Sendable {
    /// This server holds the key: after a lost link, its permission to take over.
    case keyHeld
    /// The peer's process is gone: its link closed and its client port refuses connections.
    /// A crash costs no lease wait.
    case peerGone
    /// The witness has refused every request since the link was lost (its process is down,
    /// its host answers), for the lease's time to live and the margin: nobody can hold a lease
    /// now, and a peer that held one has given up serving by its own clock. The seed's rules.
    case witnessDown
    /// This server's lease is over by its own clock (no keepalive acknowledged for the time to
    /// live less the margin) or the key names the peer, while the link is down: another
    /// server may hold the key now, so this one stops serving.
    case leaseLost
    /// The witness names an epoch above this server's: the key's holder's, or the floor a
    /// later holder left on a free key. A server not serving adopts it, so that it can take
    /// the key and serves above every epoch that held it (`failover-sim --witness` seed 65370:
    /// a primary served at epoch 8 behind a cut link and crashed; the secondary, still at 7,
    /// was refused the free key for ever).
    case epochSeen(UInt64)
}

public enum PolicyAction: Equatable, Sendable {
    case persist(PersistentState)
    /// Serve: accept logins, stamped with this epoch.
    case activate(epoch: UInt64)
    /// Stop serving: refuse new logins with "not the active server".
    case deactivate(ServerState)
    case announce(PeerStatus)
    case requestPeerActivation(ActivationRequest)
    case reportClientCount(ClientCountReport)
    /// Tell every logged-in client to move to the other server (a move, not a drop).
    case redirectClients(RedirectReason)
    case recordIncident(Incident)
    case acknowledgeIncident(String)
    case adminAccepted(String)
    case adminRefused(String)
    case warning(String)
}

public enum IncidentCause: Equatable, Sendable, CustomStringConvertible {
    /// Row 2: the peer link was lost and this standby server activated.
    case peerLinkLost
    /// Row 3: the link and most clients were lost together; the primary deactivated itself.
    case linkAndMajorityLost
    /// Row 4: most of the primary's clients vanished with the link up; service moved.
    case clientLossHandover
    /// Row 6: both servers were active when the link healed.
    case splitResolved(yielded: Bool)
    case forcedActivation(reason: String)
    /// A deactivated primary found the secondary standby (it never took over) and served again.
    case resumedService
    /// A primary that was paired restarted without reaching its secondary: it waits for
    /// authorization rather than serve beside a secondary that may have taken over.
    case restartedWithoutPeer
    /// Row 2 with a witness that is down: the link was lost and no lease could be asked for.
    case peerLinkLostWitnessDown
    /// The link was down and this server's witness lease ended: it stopped serving.
    case witnessLeaseLost
    /// In maintenance, a secondary that had stopped when its lease ended holds the key again
    /// (nobody took it: the peer does not take over in maintenance) and serves again.
    case witnessKeyRetaken

    public var description: String {
        switch self {
        case .peerLinkLost: "peer link lost; activated"
        case .linkAndMajorityLost: "peer link and most clients lost; deactivated"
        case .clientLossHandover: "large share of clients lost with the link up; service handed over"
        case .splitResolved(let yielded): yielded ? "both active after a split; yielded" : "both active after a split; kept serving"
        case .forcedActivation(let reason): "forced activation: \(reason)"
        case .resumedService: "secondary never took over; resumed service"
        case .peerLinkLostWitnessDown: "peer link lost; witness unreachable; activated by the seed's rules"
        case .witnessLeaseLost: "peer link down and the witness lease lost; deactivated"
        case .witnessKeyRetaken: "maintenance mode: the witness's key held again after the lease was lost; serving again"
        case .restartedWithoutPeer:
            "restarted without reaching the secondary; awaiting authorization: check whether the secondary serves (and the peer link) before authorizing"
        }
    }
}

/// A record of one failover decision: what happened, when, to how many clients, in which epoch.
public struct Incident: Equatable, Sendable {
    public var id: String
    public var cause: IncidentCause
    public var role: ServerRole
    /// The epoch in force after the decision.
    public var epoch: UInt64
    public var decidedAt: MonotonicTime
    public var linkLostAt: MonotonicTime?
    public var clientLossAt: MonotonicTime?
    public var loggedInClients: Int
    public var clientsLost: Int?
    public var clientPopulation: Int?
    public var peer: PeerStatus?
}
