import ActivationPolicy
import PairModel

/// What the witness (etcd) answered one request. The shell speaks etcd's API and classifies
/// its answer; `sentAt` is when the request left, which bounds when etcd restarted the lease.
public enum WitnessReply: Equatable, Sendable {
    /// This server holds the key: the acquisition succeeded or the keepalive was acknowledged.
    case holding
    /// The key names the peer (with the epoch it wrote).
    case heldByPeer(epoch: UInt64)
    /// Nobody holds the key (this server's lease is gone, or it released it).
    case free
    /// The witness refuses connections: its process is down and its host answers. Told apart
    /// from `unreachable` because a witness that is down lets nobody hold a lease.
    case refused
    /// No answer in time, an error, a TLS failure: nothing can be concluded.
    case unreachable
}

/// One request for the shell to put to the witness (at most one is in flight).
public enum WitnessRequest: Equatable, Sendable {
    /// Create the key with a new lease, only if no key exists; the value names this server
    /// and `epoch`.
    case acquire(epoch: UInt64)
    case keepAlive
    /// Revoke this server's lease (and with it the key).
    case release
}

/// The node's books on the witness: whether this server holds the key and until when its
/// lease lasts by its own clock, what the witness said since the link was lost, and when the
/// next request is due. Pure; `PairNode` turns them into verdicts for the policy.
struct WitnessBooks: Sendable {
    let timing: WitnessTiming
    /// Between acquisition attempts while a standby waits to take over.
    static let acquireInterval = Duration.milliseconds(250)
    /// Between checks of the peer's client port after a closed link, and for how long.
    static let portCheckInterval = Duration.milliseconds(50)
    static let portCheckWindow = Duration.seconds(1)

    var holding = false
    /// The lease's end by this server's clock: the last acknowledged request's departure plus
    /// the time to live, less the margin (etcd restarted the lease no earlier than that).
    var leaseValidUntil: MonotonicTime?
    var inFlight = false
    var nextRequestAt: MonotonicTime?
    /// The link's loss, and whether every answer since has been a refusal (nil: no answer yet).
    var linkLostAt: MonotonicTime?
    var refusedSinceLoss: Bool?
    /// The peer's client port: checks in flight, and until when to keep checking.
    var portCheckInFlight = false
    var portChecksUntil: MonotonicTime?
    var nextPortCheckAt: MonotonicTime?
    /// What the last answer said, for the status report.
    var lastReply: WitnessReply?
    var lastReplyAt: MonotonicTime?

    init(timing: WitnessTiming) { self.timing = timing }

    var keepAliveInterval: Duration { timing.leaseTTL / 3 }

    var nextDeadline: MonotonicTime? {
        let request = inFlight ? nil : nextRequestAt
        let port = portCheckInFlight ? nil : nextPortCheckAt
        return request.earliest(port).earliest(holding ? leaseValidUntil : nil).earliest(witnessDownAt)
    }

    /// When refusals since the link loss would let the seed's rules apply.
    var witnessDownAt: MonotonicTime? {
        guard refusedSinceLoss == true, let lost = linkLostAt else { return nil }
        return lost + timing.leaseTTL + timing.driftMargin
    }
}

/// What the witness means to the node, in the node's own terms (read by the status report).
public struct WitnessStatus: Equatable, Sendable {
    public var holding: Bool
    /// Time left on this server's lease by its own clock (nil: it holds none).
    public var leaseLeft: Duration?
    public var lastReply: WitnessReply?
    /// The peer holds the key, with this epoch (from the last answer that said so).
    public var peerEpoch: UInt64?
}
