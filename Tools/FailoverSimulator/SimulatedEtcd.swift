import ActivationPolicy
import PairModel
import PairNode

/// A one-key etcd on a simulated clock, as `EtcdWitness` uses it: the key's holder, its lease's
/// end, the epoch floor written beside it, and how each server reaches it. The simulator and
/// the node tests (`NodePair`) both use this one, so a rule of etcd learnt once (the floor, a
/// holder's re-acquisition) holds in both.
public struct SimulatedEtcd: Sendable {
    public enum Reach: Sendable { case up, refused, silent }
    public var holder: ServerRole?
    public var holderEpoch: UInt64 = 0
    /// The highest epoch that ever held the key (EtcdWitness's epoch key): a lower one
    /// cannot acquire it.
    public var epochFloor: UInt64 = 0
    public var expiresAt = MonotonicTime.zero
    public var ttl: Duration
    public var reach: [ServerRole: Reach] = [.primary: .up, .secondary: .up]
    /// One way, per request and per answer.
    public var delay: Duration
    /// How long a server waits for an answer that does not come (a silent witness).
    public var requestTimeout = Duration.milliseconds(500)
    /// How much sooner than the servers' clocks etcd ends a lease (a clock running fast):
    /// what the drift margin is for.
    public var early = Duration.zero
    /// The holder whose key was deleted behind its back, until it hears of it: the answer
    /// to its next request (until then it may serve beside a server that took the key).
    public var revokedHolder: ServerRole?
    public var revokedHolderLearnsAt: MonotonicTime?
    /// Who held the key when, for a failing test's message.
    public private(set) var log: [String] = []

    public init(ttl: Duration = .seconds(3), delay: Duration = .milliseconds(1)) {
        self.ttl = ttl
        self.delay = delay
    }

    /// The request arrives at `now`; what etcd does and answers.
    public mutating func serve(_ request: WitnessRequest, from role: ServerRole, at now: MonotonicTime) -> WitnessReply {
        if let holder, now >= expiresAt {
            log.append("\(now) lease of \(holder) expired")
            self.holder = nil
        }
        if revokedHolder == role {
            revokedHolder = nil
            revokedHolderLearnsAt = now + delay
        }
        switch request {
        case .acquire(let epoch):
            if holder == role {
                // Its own key from before a restart: EtcdWitness adopts the lease and keeps
                // it alive, which restarts its time.
                expiresAt = now + ttl - early
                return .holding
            }
            guard holder == nil else { return .heldByPeer(epoch: holderEpoch) }
            guard epoch >= epochFloor else { return .heldByPeer(epoch: epochFloor) }
            holder = role
            holderEpoch = epoch
            epochFloor = epoch
            expiresAt = now + ttl - early
            log.append("\(now) \(role) acquired")
            return .holding
        case .keepAlive:
            guard holder == role else { return holder == nil ? .free : .heldByPeer(epoch: holderEpoch) }
            expiresAt = now + ttl - early
            return .holding
        case .release:
            if holder == role {
                holder = nil
                log.append("\(now) \(role) released")
            }
            return .free
        }
    }

    /// The key deleted behind its holder's back (an operator, a compaction gone wrong). A
    /// second deletion of a key already gone leaves the first one's holder excused (seed
    /// 54099: it cleared the excuse, and the documented window was a violation).
    public mutating func deleteKey(at now: MonotonicTime) {
        revokedHolder = holder ?? revokedHolder
        if let holder { log.append("\(now) key of \(holder) deleted") }
        holder = nil
    }
}
