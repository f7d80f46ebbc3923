import ActivationPolicy
import HealthMonitor
import PairModel

/// What the node decided in answer to one input, in the order it must be carried out, as
/// etcd/raft's `Ready` does: the state to persist first (nothing after it may happen if the
/// disk refuses it), then the incidents to record, then the directives, in order; then when to
/// call again.
public struct PairEffects: Equatable, Sendable {
    /// The policy state to make durable before anything else (the latest, when several).
    public var persist: PersistentState?
    /// Incidents to record, in order (after `persist`, before the directives they explain).
    public var incidents: [Incident] = []
    /// Incidents an authorized switchover acknowledged.
    public var acknowledged: [String] = []
    public var directives: [PairDirective] = []
    /// When to feed `.tick` at the latest (nil: nothing to time).
    public var nextDeadline: MonotonicTime?

    public init() {}

    public var isEmpty: Bool { persist == nil && incidents.isEmpty && acknowledged.isEmpty && directives.isEmpty }

    /// The answer to an administrator command, when the input was one.
    public var adminReply: (accepted: Bool, text: String)? {
        for directive in directives {
            if case .adminReply(let accepted, let text) = directive { return (accepted, text) }
        }
        return nil
    }
}

/// One thing the shell does for the node.
public enum PairDirective: Equatable, Sendable {
    /// A frame to the peer (heartbeat, announcement, activation request, client count).
    case send(PeerSignal)
    /// The link was declared lost while its connection is open: close it, so the peer sees
    /// the loss too and both sides start over.
    case closePeerConnection
    /// Serve: accept logins, stamped with this epoch (configuration writes open).
    case activate(epoch: UInt64)
    /// Stop serving: refuse logins with "not the active server".
    case deactivate(ServerState)
    /// Tell every logged-in client to move to the other server (the census counts them gone).
    case redirectClients(RedirectReason)
    /// Tell the clients watching this server that it serves under `epoch` (nil: it stopped).
    /// After a *closed* link this waits `announcementDelayAfterClose`: the dead peer's clients
    /// saw their own connections close and come by themselves.
    case announceToWatchers(epoch: UInt64?)
    /// Tell the watchers that asked for it that the serving peer has gone quiet and this
    /// server would take over if it stays so: they probe their own server now (nobody moves
    /// on this alone). `peerEpoch`: the epoch the peer serves under.
    case warnWatchers(peerEpoch: UInt64)
    /// Lead or follow configuration replication (or neither), from now on.
    case replicationRole(ReplicationRole)
    /// What the link monitor reported: for logs and figures (the node acted on it already).
    case linkReport(PeerLinkMonitor.Report)
    /// The link's first frame took `roundTrip`: raise the loss timeout to `suggestedLossTimeout`.
    case slowLink(roundTrip: Duration, suggestedLossTimeout: Duration)
    /// The answer to an administrator command.
    case adminReply(accepted: Bool, String)
    /// Maintenance mode reached its end time (the shell logs it; automatic decisions resume).
    case maintenanceEnded
    /// Put this request to the witness and feed back its answer (`.witnessReply`), always:
    /// a timeout is `.unreachable`. One at a time.
    case witness(WitnessRequest)
    /// Try a connection to the peer's client port and feed back whether it was refused
    /// (`.peerPortChecked`).
    case checkPeerPort
    case warning(String)
}

/// Which way configuration replication runs on this server.
public enum ReplicationRole: Equatable, Sendable, CustomStringConvertible {
    case none, leader, follower

    public var description: String {
        switch self {
        case .none: "idle"
        case .leader: "leading"
        case .follower: "following"
        }
    }
}
