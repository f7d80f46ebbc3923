import ActivationPolicy
import HealthMonitor
import PairModel

/// What one server hears and is told, as the node takes it: every input comes with the time.
public enum PairInput: Equatable, Sendable {
    /// The process started (after its persisted state was read).
    case start
    /// Nothing happened but time passed: call at `PairEffects.nextDeadline`.
    case tick
    /// The peer link is established (connected and authenticated); `handshake`: how long its
    /// opening took, which bounds the link's round trip.
    case peerConnected(handshake: Duration)
    /// The peer connection closed or failed.
    case peerDisconnected
    /// A frame arrived from the peer (any frame is a sign of life).
    case peerSignal(PeerSignal)
    /// Sessions that began, ended on purpose, or were lost since the last input, and how many
    /// are logged in now.
    case clients(joined: Int, left: Int, lost: Int, loggedIn: Int)
    /// Whether the licence lets this server serve (nil: it does; otherwise why not).
    case licence(refusal: String?)
    /// A secondary completed its first configuration sync (one that never did must not serve
    /// an empty configuration); a primary is synced by definition.
    case synced
    /// How many configuration revisions the peer is behind this server; nil when unknown.
    case peerReplicationLag(UInt64?)
    /// The peer asked for configuration (a catch-up, a divergence probe): a server that serves
    /// leads replication even if it had not noticed its new role yet.
    case peerAskedForConfiguration
    case admin(AdminCommand)
    /// Maintenance mode on (until `until`, or until turned off when nil) or off: every
    /// automatic decision pauses meanwhile (docs/failover-policy.md, "Maintenance mode").
    case maintenance(on: Bool, until: MonotonicTime?)
    /// The witness's answer to the request the node asked for, which left at `sentAt`.
    case witnessReply(WitnessReply, sentAt: MonotonicTime)
    /// The peer's client port, checked after a closed link: `refused` means its process is gone.
    case peerPortChecked(refused: Bool)
}

/// What the peer link carries that the node decides on (the configuration, the licence and
/// the handshake are the shell's business).
public enum PeerSignal: Equatable, Sendable, CustomStringConvertible {
    case heartbeat
    /// Any other frame: a sign of life, nothing to decide.
    case other
    case status(PeerStatus)
    case activationRequest(ActivationRequest)
    case clientCount(ClientCountReport)

    /// The epoch the frame carries (0 for a heartbeat or another frame).
    public var epoch: UInt64 {
        switch self {
        case .heartbeat, .other: 0
        case .status(let status): status.epoch
        case .activationRequest(let request): request.epoch
        case .clientCount(let report): report.epoch
        }
    }

    /// A frame the policy acts on.
    public var isDecision: Bool {
        switch self {
        case .heartbeat, .other: false
        default: true
        }
    }

    public var description: String {
        switch self {
        case .heartbeat: "heartbeat"
        case .other: "frame"
        case .status(let status): "status \(status)"
        case .activationRequest(let request): "activation request \(request.requestId) (\(request.reason)) epoch \(request.epoch)"
        case .clientCount(let report): "client count \(report.loggedInClients) for request \(report.requestId) epoch \(report.epoch)"
        }
    }
}
