import ActivationPolicy
import HealthMonitor
import PairModel

/// Two pure policies joined by a link with a fixed one-way delay, for scenarios whose timing
/// must be exact (a report that lands a few milliseconds after a deadline). No clients, no
/// monitors: the test says when the link is up, stable or lost and how many clients each
/// server has. Frames are delivered in order, each `latency` after it was sent, unless a
/// test delays one on purpose.
struct PolicyPair {
    var primary: ActivationPolicy
    var secondary: ActivationPolicy
    var latency: Duration
    var now = MonotonicTime.zero
    var linkUp = false
    /// Frames in flight: (delivery time, to the primary?, frame).
    var inFlight: [(at: MonotonicTime, toPrimary: Bool, frame: Frame)] = []
    var log: [String] = []
    var incidents: [ServerRole: [Incident]] = [:]
    var disks: [ServerRole: PersistentState] = [:]
    var replies: [PolicyAction] = []
    /// Extra delay given to the next frame a side sends of a kind (a retransmission).
    var delayNextReport: Duration = .zero

    enum Frame {
        case status(PeerStatus)
        case request(ActivationRequest)
        case report(ClientCountReport)
    }

    init(latency: Duration, configuration: ActivationPolicy.Configuration = .init()) {
        primary = ActivationPolicy(role: .primary, configuration: configuration)
        secondary = ActivationPolicy(role: .secondary, configuration: configuration)
        self.latency = latency
    }

    /// Both started, linked and stable, the primary serving `clients`.
    static func running(latency: Duration, clients: Int = 40, configuration: ActivationPolicy.Configuration = .init()) -> PolicyPair {
        var pair = PolicyPair(latency: latency, configuration: configuration)
        pair.send(.primary, .start)
        pair.send(.secondary, .start)
        pair.connect()
        pair.advance(by: .seconds(2))
        pair.send(.primary, .loggedInClients(clients))
        return pair
    }

    func policy(_ role: ServerRole) -> ActivationPolicy { role == .primary ? primary : secondary }

    mutating func send(_ role: ServerRole, _ event: PolicyEvent) {
        let actions: [PolicyAction]
        if role == .primary {
            actions = primary.handle(event, at: now)
        } else {
            actions = secondary.handle(event, at: now)
        }
        perform(role, actions)
    }

    mutating func connect() {
        linkUp = true
        send(.primary, .link(.up))
        send(.secondary, .link(.up))
        send(.primary, .link(.stable))
        send(.secondary, .link(.stable))
    }

    mutating func lose(_ cause: PeerLinkMonitor.LossCause, primarySees: Bool = true, secondarySees: Bool = true) {
        linkUp = false
        inFlight.removeAll()
        if primarySees { send(.primary, .link(.lost(cause))) }
        if secondarySees { send(.secondary, .link(.lost(cause))) }
    }

    mutating func perform(_ role: ServerRole, _ actions: [PolicyAction]) {
        let toPrimary = role == .secondary
        for action in actions {
            switch action {
            case .persist(let state): disks[role] = state
            case .announce(let status): transmit(.status(status), toPrimary: toPrimary)
            case .requestPeerActivation(let request): transmit(.request(request), toPrimary: toPrimary)
            case .reportClientCount(let report):
                transmit(.report(report), toPrimary: toPrimary, extra: delayNextReport)
                delayNextReport = .zero
            case .recordIncident(let incident): incidents[role, default: []].append(incident)
            case .adminAccepted, .adminRefused: replies.append(action)
            default: break
            }
            log.append("\(now) \(role): \(action)")
        }
    }

    mutating func transmit(_ frame: Frame, toPrimary: Bool, extra: Duration = .zero) {
        guard linkUp else { return }
        let last = inFlight.filter { $0.toPrimary == toPrimary }.map(\.at).max() ?? .zero
        inFlight.append((max(now + latency + extra, last), toPrimary, frame))
    }

    /// Runs deliveries and policy deadlines in time order up to `time`.
    mutating func run(until time: MonotonicTime) {
        while true {
            let delivery = inFlight.map(\.at).min()
            let deadline = [primary.nextDeadline, secondary.nextDeadline].compactMap { $0 }.min()
            guard let next = [delivery, deadline].compactMap({ $0 }).min(), next <= time else { break }
            now = next
            if let delivery, delivery == next, let index = inFlight.firstIndex(where: { $0.at == delivery }) {
                let (_, toPrimary, frame) = inFlight.remove(at: index)
                let role: ServerRole = toPrimary ? .primary : .secondary
                switch frame {
                case .status(let status): send(role, .peerState(status))
                case .request(let request): send(role, .peerActivationRequest(request))
                case .report(let report): send(role, .peerClientCount(report))
                }
            } else {
                send(.primary, .tick)
                send(.secondary, .tick)
            }
        }
        now = max(now, time)
    }

    mutating func advance(by duration: Duration) { run(until: now + duration) }

    var activeRoles: [ServerRole] { [ServerRole.primary, .secondary].filter { policy($0).state == .active } }
}
