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
    /// The link's loss.
    var linkLostAt: MonotonicTime?
    /// Since when (an answer's arrival) every answer has been a refusal: the witness went down
    /// before then, so any lease on it was last renewed before then too.
    var refusingSince: MonotonicTime?
    /// The seed's rules were applied for this run of refusals (said once).
    var witnessDownSaid = false
    var wasAwaiting = false
    /// The link's timings: how much later than this side the peer may see a loss.
    var lossSkew: Duration = .zero
    /// The peer's client port: checks in flight, and until when to keep checking.
    var portCheckInFlight = false
    var portChecksUntil: MonotonicTime?
    var nextPortCheckAt: MonotonicTime?
    /// This server serves without the key by a rule that allowed it (the peer found gone,
    /// the witness down, an administrator's forced activation, a start-up alone): it keeps
    /// serving through a lost link until it holds the key. Any other server that serves with
    /// the link down holds a lease, or stops.
    var keylessServingAllowed = false
    /// Since the link was lost, an answer said the peer held the key: a key acquired after
    /// that was freed by the peer's lease running out (the peer stopped by its own clock).
    var peerHeldSinceLoss = false
    /// A key found free at once after the loss: the peer served without one (the witness was
    /// slow or down for it) and stops only when it sees the link lost itself, which may be a
    /// little after this side did. The takeover waits until then.
    var takeOverAt: MonotonicTime?
    /// What the last answer said, for the status report.
    var lastReply: WitnessReply?

    init(timing: WitnessTiming) { self.timing = timing }

    var keepAliveInterval: Duration { timing.leaseTTL / 3 }

    var nextDeadline: MonotonicTime? {
        let request = inFlight ? nil : nextRequestAt
        let port = portCheckInFlight ? nil : nextPortCheckAt
        return request.earliest(port).earliest(holding ? leaseValidUntil : nil).earliest(witnessDownAt).earliest(takeOverAt)
    }

    /// When the refusals let the seed's rules apply: every lease on the witness has ended by
    /// its holder's own clock (renewed at the latest when the refusals began: the time to live
    /// and the margin after that, the holder stopped at the time to live less the margin), and
    /// a holder that had none has seen the link go (it stops then).
    var witnessDownAt: MonotonicTime? {
        guard !witnessDownSaid, let since = refusingSince, let lost = linkLostAt else { return nil }
        return max(since + timing.leaseTTL + timing.driftMargin, lost + lossSkew)
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
