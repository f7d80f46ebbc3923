import ActivationPolicy
import HealthMonitor
import PairModel

/// Everything one server decides, as one value: the activation policy (who serves, rows 1 to
/// 6), the peer link's monitor, the client census, and the glue between them that used to live
/// in the server's shell: the link monitor's reports feeding the policy, the census's, the hold
/// on announcing an activation after a closed link, whether the licence and the first sync let
/// this server serve, and which way configuration replication runs.
///
/// Pure: `handle(_:at:)` takes every input with the time and returns what to do, in order
/// (`PairEffects`). The server runtime carries the effects out and decides nothing; the
/// failover simulator drives this same value, so its schedules test the code that ships.
public struct PairNode: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var policy: ActivationPolicy.Configuration
        public var link: PeerLinkMonitor.Configuration
        public var census: ClientCensus.Configuration
        /// After the peer link *closed*, how long the clients watching this server wait to hear
        /// that it serves (their own connections to the dead peer closed too).
        public var announcementDelayAfterClose: Duration
        /// The least time between two takeover warnings to the watchers: a flapping link
        /// would otherwise make every client of the peer probe its server at every flap.
        public var watcherWarningInterval: Duration

        public init(
            policy: ActivationPolicy.Configuration = .init(), link: PeerLinkMonitor.Configuration = .init(),
            census: ClientCensus.Configuration = .init(), announcementDelayAfterClose: Duration = .seconds(1),
            watcherWarningInterval: Duration = .seconds(5)
        ) {
            self.policy = policy
            self.link = link
            self.census = census
            self.announcementDelayAfterClose = announcementDelayAfterClose
            self.watcherWarningInterval = watcherWarningInterval
        }
    }

    public let role: ServerRole
    public let configuration: Configuration
    /// The parts, readable (a simulator's checker and the status reports look inside); only
    /// `handle` changes them.
    public internal(set) var policy: ActivationPolicy
    public internal(set) var monitor: PeerLinkMonitor
    public internal(set) var census: ClientCensus
    /// An authenticated peer connection exists (until the shell reports it closed).
    public internal(set) var isPeerConnected = false
    public internal(set) var replicationRole = ReplicationRole.none
    /// The peer asked for the configuration on this connection: it follows this server, even
    /// while its state is not known here (its announcement was ignored as stale).
    var peerFollows = false
    /// Clients logged in here, as last reported.
    public internal(set) var loggedInClients = 0
    var licenceRefusal: String? = "no licence has been checked yet"
    var synced: Bool
    /// Watching clients hear of an activation no earlier than this (set when the link closed).
    var announcementHeldUntil: MonotonicTime?
    /// What the watchers were last told (nil: that this server does not serve).
    var announcedEpoch: UInt64?
    /// When the watchers were last warned of a takeover.
    var watchersWarnedAt: MonotonicTime?
    /// The witness's books (nil: no witness configured).
    var witness: WitnessBooks?
    /// Maintenance mode, and when it ends by itself (nil: when turned off).
    public internal(set) var inMaintenance = false
    public internal(set) var maintenanceUntil: MonotonicTime?

    /// `persisted`: the policy's state as the disk holds it; `synced`: a secondary that
    /// completed a first configuration sync in an earlier run (a primary always is).
    public init(role: ServerRole, configuration: Configuration = Configuration(), persisted: PersistentState = PersistentState(), synced: Bool = false) {
        self.role = role
        self.configuration = configuration
        policy = ActivationPolicy(role: role, configuration: configuration.policy, persisted: persisted)
        monitor = PeerLinkMonitor(configuration: configuration.link)
        census = ClientCensus(configuration: configuration.census)
        self.synced = synced || role == .primary
        witness = configuration.policy.witness.map(WitnessBooks.init(timing:))
        witness?.lossSkew = configuration.link.lossTimeout + configuration.link.heartbeatInterval
    }

    // MARK: What the shell reads

    public var state: ServerState { policy.state }
    public var epoch: UInt64 { policy.epoch }
    public var activationIncident: String? { policy.activationIncident }
    public var peerStatus: PeerStatus? { policy.peerStatus }
    public var isLinkUp: Bool { policy.isLinkUp }
    public var canActivate: Bool { policy.canActivate }
    public var isSynced: Bool { synced }
    /// This server's announcement of itself.
    public var status: PeerStatus { policy.status }

    /// A standby that may activate holds a login briefly, link up or not: the clients of a
    /// killed primary arrive before the peer link's close is read, and refused they would each
    /// pay a backoff. A client that came here by mistake waits the hold, then goes.
    public var holdsLogins: Bool { policy.state == .standby && policy.canActivate }

    /// Seats the peer holds while it serves (the licence's seats are the pair's).
    public var peerSeats: Int {
        guard isPeerConnected, let peer = policy.peerStatus, peer.state == .active else { return 0 }
        return peer.loggedInClients
    }

    /// Why an administrator's switchover would be refused now (nil: it would start).
    public func switchoverRefusal(acknowledging incident: String?) -> String? {
        policy.switchoverRefusal(acknowledging: incident)
    }

    public var nextDeadline: MonotonicTime? {
        policy.nextDeadline.earliest(monitor.nextDeadline).earliest(census.nextDeadline).earliest(announcementHeldUntil)
            .earliest(inMaintenance ? maintenanceUntil : nil).earliest(witness?.nextDeadline)
    }

    /// With a witness and the link down, this server serves no later than this (its lease's
    /// end by its own clock): the shell refuses logins from then on even before the node's
    /// next input, as a process resumed after a freeze would otherwise admit one first.
    public var servingUntil: MonotonicTime? {
        guard let witness, policy.state == .active, !policy.isLinkUp, witness.holding else { return nil }
        return witness.leaseValidUntil
    }

    /// How long a login held for a takeover may wait (nil: the shell's own hold). With a
    /// witness and the link lost the takeover waits for the peer's lease to run out: a client
    /// that found its server silent is held that long rather than refused into a backoff.
    public var takeoverHold: Duration? {
        guard let witness, policy.awaitingWitness else { return nil }
        return witness.timing.leaseTTL + witness.timing.driftMargin
    }

    /// The witness as this server sees it (nil: none configured).
    public func witnessStatus(at now: MonotonicTime) -> WitnessStatus? {
        guard let witness else { return nil }
        var peerEpoch: UInt64?
        if case .heldByPeer(let epoch)? = witness.lastReply { peerEpoch = epoch }
        let left = witness.holding ? witness.leaseValidUntil.map { max(.zero, $0 - now) } : nil
        return WitnessStatus(holding: witness.holding, leaseLeft: left, lastReply: witness.lastReply, peerEpoch: peerEpoch)
    }

    /// Why this server may not serve (nil: it may).
    public var activationRefusal: String? {
        licenceRefusal ?? (synced ? nil : "it has not completed a first configuration sync with the primary, and would serve an empty configuration")
    }
}
