import ActivationPolicy
import FailoverSimulator
import HealthMonitor
import PairModel
import PairNode

/// Two `PairNode`s (the machines the servers run) joined by a link with a fixed one-way delay,
/// for scenarios whose timing must be exact (a report that lands a few milliseconds after a
/// deadline). No simulated clients: the test says how many each server has and how many it
/// lost, and when the link connects or is lost. Every frame a node sends (heartbeats included)
/// is delivered in order, `latency` after it was sent, unless a test delays one on purpose.
struct NodePair {
    var primary: PairNode
    var secondary: PairNode
    var latency: Duration
    var now = MonotonicTime.zero
    var linkUp = false
    /// A side that died: it hears, sends and decides nothing more.
    var dead: Set<ServerRole> = []
    /// Frames in flight: (delivery time, to the primary?, frame).
    var inFlight: [(at: MonotonicTime, toPrimary: Bool, frame: PeerSignal)] = []
    var log: [String] = []
    var incidents: [ServerRole: [Incident]] = [:]
    var disks: [ServerRole: PersistentState] = [:]
    var replies: [(accepted: Bool, text: String)] = []
    var warnings: [ServerRole: [String]] = [:]
    /// Logged-in clients per side, as the test set them.
    var clients: [ServerRole: Int] = [.primary: 0, .secondary: 0]
    /// Extra delay given to the next client-count report a side sends (a retransmission).
    var delayNextReport: Duration = .zero
    /// The witness (etcd), when the configuration has one; its clock is the nodes' (drift is
    /// what the margin is for, tested with `early`).
    var witness = SimulatedEtcd(delay: .milliseconds(2))
    /// Inputs due later (the witness's answers, the port checks), in time order.
    var scheduled: [(at: MonotonicTime, role: ServerRole, input: PairInput)] = []
    /// Sides whose process is gone: their client port refuses (a frozen side's does not).
    var portRefused: Set<ServerRole> = []
    /// Every activation and deactivation, in order: (when, who, active after it).
    var activity: [(at: MonotonicTime, role: ServerRole, active: Bool)] = []

    init(latency: Duration, configuration: PairNode.Configuration = .init()) {
        primary = PairNode(role: .primary, configuration: configuration)
        secondary = PairNode(role: .secondary, configuration: configuration, synced: true)
        self.latency = latency
        witness.ttl = configuration.policy.witness?.leaseTTL ?? .seconds(3)
    }

    /// Both started, licensed, linked and stable, the primary serving `clients`.
    static func running(latency: Duration, clients: Int = 40, configuration: PairNode.Configuration = .init()) -> NodePair {
        var pair = NodePair(latency: latency, configuration: configuration)
        pair.send(.primary, .licence(refusal: nil))
        pair.send(.secondary, .licence(refusal: nil))
        pair.send(.primary, .start)
        pair.send(.secondary, .start)
        pair.connect()
        pair.advance(by: .seconds(2))
        pair.join(.primary, clients)
        return pair
    }

    func node(_ role: ServerRole) -> PairNode { role == .primary ? primary : secondary }

    mutating func send(_ role: ServerRole, _ input: PairInput) {
        guard !dead.contains(role) else { return }
        let effects: PairEffects
        if role == .primary {
            effects = primary.handle(input, at: now)
        } else {
            effects = secondary.handle(input, at: now)
        }
        carryOut(role, effects)
    }

    /// `count` more clients log in on `role`.
    mutating func join(_ role: ServerRole, _ count: Int) {
        clients[role, default: 0] += count
        send(role, .clients(joined: count, left: 0, lost: 0, loggedIn: clients[role]!))
    }

    /// `count` of `role`'s clients are lost (they went silent or their connections dropped).
    mutating func lose(clients count: Int, of role: ServerRole) {
        clients[role] = max(0, clients[role, default: 0] - count)
        send(role, .clients(joined: 0, left: 0, lost: count, loggedIn: clients[role]!))
    }

    /// `count` of `role`'s clients leave on purpose (a logout, a move): not a loss.
    mutating func leave(_ role: ServerRole, _ count: Int) {
        clients[role] = max(0, clients[role, default: 0] - count)
        send(role, .clients(joined: 0, left: count, lost: 0, loggedIn: clients[role]!))
    }

    /// The peer connection comes up (or back) on both sides.
    mutating func connect() {
        linkUp = true
        send(.primary, .peerConnected(handshake: .zero))
        send(.secondary, .peerConnected(handshake: .zero))
    }

    /// The link goes: closed (each side that sees it hears the close) or silent (nothing more
    /// arrives; each side's monitor notices after its loss timeout). A side that does not see it
    /// is dead.
    mutating func lose(_ cause: PeerLinkMonitor.LossCause, primarySees: Bool = true, secondarySees: Bool = true) {
        linkUp = false
        inFlight.removeAll()
        if !primarySees { dead.insert(.primary) }
        if !secondarySees { dead.insert(.secondary) }
        guard cause == .closed else { return }
        send(.primary, .peerDisconnected)
        send(.secondary, .peerDisconnected)
    }

    mutating func carryOut(_ role: ServerRole, _ effects: PairEffects) {
        let toPrimary = role == .secondary
        if let state = effects.persist { disks[role] = state }
        incidents[role, default: []] += effects.incidents
        for directive in effects.directives {
            switch directive {
            case .send(let signal):
                if case .clientCount = signal {
                    transmit(signal, toPrimary: toPrimary, extra: delayNextReport)
                    delayNextReport = .zero
                } else {
                    transmit(signal, toPrimary: toPrimary)
                }
            case .adminReply(let accepted, let text): replies.append((accepted, text))
            case .warning(let text): warnings[role, default: []].append(text)
            case .redirectClients: clients[role] = 0
            case .replicationRole(.leader): send(role, .peerReplicationLag(0))  // the stores are in step
            case .activate: activity.append((now, role, true))
            case .deactivate: activity.append((now, role, false))
            case .witness(let request):
                let sent = now
                switch witness.reach[role] ?? .up {
                case .up:
                    let reply = witness.serve(request, from: role, at: now + witness.delay)
                    schedule(at: now + witness.delay * 2, role, .witnessReply(reply, sentAt: sent))
                case .refused:
                    schedule(at: now + witness.delay * 2, role, .witnessReply(.refused, sentAt: sent))
                case .silent:
                    schedule(at: now + witness.requestTimeout, role, .witnessReply(.unreachable, sentAt: sent))
                }
            case .checkPeerPort:
                schedule(at: now + .milliseconds(1), role, .peerPortChecked(refused: portRefused.contains(role == .primary ? .secondary : .primary)))
            default: break
            }
            if case .send(.heartbeat) = directive { continue }
            log.append("\(now) \(role): \(directive)")
        }
    }

    mutating func schedule(at time: MonotonicTime, _ role: ServerRole, _ input: PairInput) {
        scheduled.append((time, role, input))
        scheduled.sort { $0.at < $1.at }
    }

    mutating func transmit(_ frame: PeerSignal, toPrimary: Bool, extra: Duration = .zero) {
        guard linkUp else { return }
        let last = inFlight.filter { $0.toPrimary == toPrimary }.map(\.at).max() ?? .zero
        inFlight.append((max(now + latency + extra, last), toPrimary, frame))
    }

    /// Runs deliveries and the nodes' deadlines in time order up to `time`.
    mutating func run(until time: MonotonicTime) {
        while true {
            let delivery = inFlight.map(\.at).min()
            let deadline = [ServerRole.primary, .secondary].filter { !dead.contains($0) }.compactMap { node($0).nextDeadline }.min()
            let due = scheduled.first?.at
            guard let next = [delivery, deadline, due].compactMap({ $0 }).min(), next <= time else { break }
            now = next
            if let due, due == next {
                let (_, role, input) = scheduled.removeFirst()
                send(role, input)
            } else if let delivery, delivery == next, let index = inFlight.firstIndex(where: { $0.at == delivery }) {
                let (_, toPrimary, frame) = inFlight.remove(at: index)
                send(toPrimary ? .primary : .secondary, .peerSignal(frame))
            } else {
                send(.primary, .tick)
                send(.secondary, .tick)
            }
        }
        now = max(now, time)
    }

    mutating func advance(by duration: Duration) { run(until: now + duration) }

    var activeRoles: [ServerRole] { [ServerRole.primary, .secondary].filter { !dead.contains($0) && node($0).state == .active } }
}
