import ActivationPolicy
import PairNode
import HealthMonitor
import PairModel

/// A primary, a secondary, the network between them and a population of clients, in
/// simulated time. Each server runs the `PairNode` the real server runs (the policy, the link
/// monitor, the census and the glue between them); this class plays the part of its SwiftNIO
/// shell (carrying out the node's effects), of TCP and of the clients. Deterministic:
/// everything random comes from the seed.
public final class SimulatedPair {
    public let settings: SimulationSettings
    public private(set) var now = MonotonicTime.zero
    public private(set) var steps = 0
    public private(set) var trace: [String] = []
    /// Lines of trace kept (the most recent ones).
    public var traceLimit = 1_500
    var servers: [SimulatedServer]
    var clients: [SimulatedClient]
    var queue = EventQueue<SimEvent>()
    var rng: SplitMix64
    /// Scheduled actions take the pair as a parameter: a closure that captured it would
    /// keep it alive through its own list (47 KB per schedule, 4.7 GB at 100,000).
    var scripts: [(SimulatedPair) -> Void] = []
    let invariants: InvariantChecker

    // The peer network and the TCP connection on it.
    public private(set) var peerNetworkUp = true
    var nextConnectionId = 0
    var nextSessionId = 0
    /// When the primary's current dial started (for the handshake's duration).
    var dialStartedAt = MonotonicTime.zero
    /// Frames (nil: a FIN) sent while the network was down, per direction, delivered when it heals.
    var stalled: [[(connection: Int, frame: PeerFrame?)]] = [[], []]
    var lastDelivery: [MonotonicTime] = [.zero, .zero]
    /// What a partition found when it struck (for the row-3 check).
    public struct PartitionRecord: Sendable {
        public var at: MonotonicTime
        public var primaryActive: Bool
        public var linkUp: Bool
        public var secondaryCanServe: Bool
        public var population: Int
        public var cut: Int
    }

    public var partitionRecord: PartitionRecord?
    /// The witness (etcd), used only when the settings configure one.
    public var witness = SimulatedEtcd()
    /// The first decision frames each server sent, to replay one as a stale frame.
    var sentFrames: [[PeerFrame]] = [[], []]

    /// A running pair with 40 clients logged in to the primary: where most scenarios start.
    public static func running(seed: UInt64 = 7, settings: SimulationSettings = SimulationSettings()) -> SimulatedPair {
        let pair = SimulatedPair(settings: settings, seed: seed)
        pair.start(.primary)
        pair.start(.secondary)
        pair.advance(by: .milliseconds(500))
        pair.startClients()
        pair.advance(by: .seconds(5))
        return pair
    }

    public init(settings: SimulationSettings = SimulationSettings(), seed: UInt64) {
        self.settings = settings
        rng = SplitMix64(seed: seed)
        servers = [SimulatedServer(role: .primary, settings: settings), SimulatedServer(role: .secondary, settings: settings)]
        clients = Array(repeating: SimulatedClient(), count: settings.clients)
        invariants = InvariantChecker(settings: settings)
        latencyRange = settings.latency
        servers[0].running = false
        servers[1].running = false
        witness.ttl = settings.policy.witness?.leaseTTL ?? .seconds(3)
    }

    // MARK: Driving the world

    /// Runs every event up to `time`, checking the invariants after each.
    public func run(until time: MonotonicTime) {
        while let next = queue.nextTime, next <= time {
            let (at, event) = queue.pop()!
            now = at
            steps += 1
            handle(event)
            invariants.check(self)
        }
        now = max(now, time)
        invariants.check(self)
    }

    public func advance(by duration: Duration) { run(until: now + duration) }

    /// Runs `action` at `time` inside the simulation (used by the random schedules).
    public func schedule(at time: MonotonicTime, _ action: @escaping (SimulatedPair) -> Void) {
        scripts.append(action)
        queue.push(.script(scripts.count - 1), at: time)
    }

    public func log(_ line: @autoclosure () -> String) {
        trace.append("\(now) \(line())")
        if trace.count > traceLimit { trace.removeFirst(traceLimit / 4) }
    }

    func random(_ range: ClosedRange<Int64>) -> Int64 { Int64.random(in: range, using: &rng) }
    func latency() -> Duration { .nanoseconds(random(latencyRange)) }
    /// The network's one-way delay from now on (a jittery link repaired becomes a LAN).
    public var latencyRange: ClosedRange<Int64> = 0...0
    func jitter() -> Duration { .nanoseconds(random(settings.timerJitter)) }
    func index(_ role: ServerRole) -> Int { role == .primary ? 0 : 1 }

    // MARK: Observing it

    public func state(of role: ServerRole) -> ServerState? {
        let server = servers[index(role)]
        return server.running ? server.policy.state : nil
    }

    public func epoch(of role: ServerRole) -> UInt64 { servers[index(role)].policy.epoch }
    public func incidents(of role: ServerRole) -> [Incident] { servers[index(role)].incidents }
    public func activationIncident(of role: ServerRole) -> String? { servers[index(role)].policy.activationIncident }
    public func loggedIn(on role: ServerRole) -> Int { servers[index(role)].sessions.count }
    public func isRunning(_ role: ServerRole) -> Bool { servers[index(role)].running }
    public var activeServers: [ServerRole] { servers.filter { $0.isServing }.map(\.role) }
    public var violations: [String] { invariants.violations }
    /// Every state change of either server, in order.
    public private(set) var history: [(at: MonotonicTime, role: ServerRole, state: ServerState)] = []

    /// When `role` last entered `state` at or after `time`.
    public func firstTime(_ role: ServerRole, entered state: ServerState, after time: MonotonicTime) -> MonotonicTime? {
        history.first { $0.role == role && $0.state == state && $0.at >= time }?.at
    }

    public func activations(of role: ServerRole) -> [MonotonicTime] { servers[index(role)].activations.map(\.at) }
    public func warnings(of role: ServerRole) -> [String] { servers[index(role)].warnings }
    public var clientsWithoutSession: Int { clients.filter { $0.session == nil }.count }

    // MARK: Faults and commands

    public func start(_ role: ServerRole) {
        let i = index(role)
        guard !servers[i].running else { return }  // a running process is not started twice
        servers[i].restart(settings: settings)
        log("\(role) starts with \(servers[i].disk)")
        apply(i, servers[i].node.handle(.licence(refusal: servers[i].activationRefusal), at: now))
        // A restarted server reads maintenance mode from its configuration before deciding.
        feedMaintenance(i)
        invariants.restarting = role
        apply(i, servers[i].node.handle(.start, at: now))
        invariants.restarting = nil
        if role == .primary { servers[i].nextDialAt = now }
        rescheduleTimer(i)
    }

    /// Maintenance mode for the pair until `until`, as the replicated setting gives it to both
    /// servers (and to one that restarts or resumes meanwhile).
    public private(set) var maintenanceUntil: MonotonicTime?

    public func beginMaintenance(until: MonotonicTime) {
        maintenanceUntil = until
        log("maintenance until \(until)")
        for i in servers.indices { feedMaintenance(i) }
    }

    func feedMaintenance(_ i: Int) {
        guard servers[i].running, !servers[i].isPaused, let until = maintenanceUntil, now < until else { return }
        apply(i, servers[i].node.handle(.maintenance(on: true, until: until), at: now))
        rescheduleTimer(i)
    }

    /// Clients log in to the primary first, as configured on their panels.
    public func startClients() {
        for c in clients.indices {
            clients[c].target = 0
            queue.push(.clientAttempt(client: c), at: now + .milliseconds(random(0...500)))
        }
    }

    /// kill -9: the process stops at this instant and persists nothing more; its kernel
    /// resets the peer connection, and its clients notice by themselves.
    public func crash(_ role: ServerRole) {
        let i = index(role)
        guard servers[i].running else { return }
        log("\(role) crashes")
        servers[i].running = false
        if let connection = servers[i].connectionId ?? servers[i].dialing { resetConnection(connection, by: i) }
        servers[i].connectionId = nil
        servers[i].dialing = nil
        for (client, session) in servers[i].sessionsInOrder {
            // The kernel of a running host answers with a reset; an unreachable one says nothing.
            let notice: Duration = clients[client].reach[i] ? latency() : settings.clientTimeout + jitter()
            queue.push(.clientNoticesLoss(client: client, session: session), at: now + notice)
        }
        servers[i].sessions = [:]
        servers[i].deferred = []
        servers[i].timerGeneration += 1
        servers[i].scheduledTimer = nil
    }

    public func cutPeerNetwork() {
        guard peerNetworkUp else { return }
        log("peer network cut")
        peerNetworkUp = false
    }

    public func healPeerNetwork() {
        guard !peerNetworkUp else { return }
        log("peer network healed")
        peerNetworkUp = true
        // TCP retransmits what was sent during the cut, in order.
        for direction in 0..<2 {
            let receiver = 1 - direction
            for (connection, frame) in stalled[direction] {
                if let frame {
                    send(frame, on: connection, to: receiver)
                } else {
                    queue.push(.peerClosed(to: receiver, connection: connection), at: deliveryTime(to: receiver))
                }
            }
            stalled[direction] = []
        }
    }

    public func pause(_ role: ServerRole, for duration: Duration) {
        let i = index(role)
        guard servers[i].running, !servers[i].isPaused else { return }
        log("\(role) paused for \(duration)")
        servers[i].pausedUntil = now + duration
        servers[i].timerGeneration += 1
        servers[i].scheduledTimer = nil
        queue.push(.resume(server: i), at: now + duration)
        // Its clients hear nothing from it and give up after their timeout.
        for (client, session) in servers[i].sessionsInOrder {
            queue.push(.clientNoticesLoss(client: client, session: session), at: now + settings.clientTimeout + jitter())
        }
    }

    /// Cuts the network path between `count` of the server's logged-in clients and it.
    @discardableResult
    public func cutClients(of role: ServerRole, count: Int) -> [Int] {
        let i = index(role)
        let victims = Array(servers[i].sessions.keys.sorted().shuffled(using: &rng).prefix(count))
        log("cut \(victims.count) clients from \(role)")
        for client in victims {
            cutClient(client, from: i)
        }
        return victims
    }

    func cutClient(_ client: Int, from i: Int) {
        clients[client].reach[i] = false
        if let session = servers[i].sessions[client] {
            // Both ends notice the silence after their heartbeat timeout, at a random phase.
            queue.push(.serverNoticesClientLoss(server: i, client: client, session: session), at: now + settings.clientTimeout + jitter() + .milliseconds(random(0...1000)))
            queue.push(.clientNoticesLoss(client: client, session: session), at: now + settings.clientTimeout + .milliseconds(random(0...1000)))
        }
    }

    /// Cuts these clients off from both servers (their own network failed).
    public func isolateClients(_ ids: [Int]) {
        log("isolate clients \(ids)")
        for client in ids {
            for i in servers.indices where clients[client].reach[i] { cutClient(client, from: i) }
        }
    }

    public func healClients(of role: ServerRole) {
        let i = index(role)
        log("client paths to \(role) healed")
        for c in clients.indices { clients[c].reach[i] = true }
    }

    /// Whether a server may serve (a secondary without the primary's licence may not); kept
    /// across restarts, as the licence file would be.
    public func setActivationRefusal(_ role: ServerRole, _ refusal: String?) {
        let i = index(role)
        servers[i].activationRefusal = refusal
        log("\(role) activation permission: \(refusal ?? "granted")")
        guard servers[i].running, !servers[i].isPaused else { return }
        apply(i, servers[i].node.handle(.licence(refusal: refusal), at: now))
        rescheduleTimer(i)
    }

    /// An administrator command; returns the policy's answer (accepted or refused).
    @discardableResult
    public func admin(_ role: ServerRole, _ command: AdminCommand) -> PolicyAction? {
        let i = index(role)
        guard servers[i].running, !servers[i].isPaused else { return nil }
        log("admin on \(role): \(command)")
        servers[i].lastAdminReply = nil
        let incidentBefore = servers[i].policy.activationIncident
        invariants.commandInProgress = (command, role)
        apply(i, servers[i].node.handle(.admin(command), at: now))
        invariants.commandInProgress = nil
        rescheduleTimer(i)
        let reply = servers[i].lastAdminReply
        if case .adminAccepted = reply { invariants.noteAdmin(command, on: role, accepted: true, incidentBefore: incidentBefore, pair: self) }
        return reply
    }

    // MARK: Events

    func handle(_ event: SimEvent) {
        if let i = event.handlingServer {
            guard servers[i].running else { return }
            if servers[i].isPaused {
                servers[i].deferred.append(event)
                return
            }
        }
        switch event {
        case .serverTimer(let i, let generation):
            guard generation == servers[i].timerGeneration else { return }
            servers[i].scheduledTimer = nil
            tick(i)
        case .dialArrives(let connection): dialArrives(connection)
        case .dialAnswered(let connection): dialAnswered(connection)
        case .dialFailed(let connection):
            if servers[0].dialing == connection { servers[0].dialing = nil }
        case .peerFrame(let to, let connection, let frame): receive(frame, on: connection, at: to)
        case .peerClosed(let to, let connection): peerClosed(connection, at: to)
        case .resume(let i): resume(i)
        case .clientAttempt(let c): clientAttempt(c)
        case .clientArrives(let c, let i, let attempt): clientArrives(c, at: i, attempt: attempt)
        case .clientAttemptFailed(let c, let attempt):
            guard clients[c].attempt == attempt, clients[c].session == nil else { return }
            retry(c)
        case .clientNoticesLoss(let c, let session): clientNoticesLoss(c, session: session)
        case .serverNoticesClientLoss(let i, let c, let session): serverNoticesClientLoss(i, client: c, session: session)
        case .script(let n): scripts[n](self)
        case .witnessArrives(let i, let request, let sentAt, let process):
            let reply = witness.serve(request, from: servers[i].role, at: now)
            queue.push(.witnessAnswer(server: i, reply: reply, sentAt: sentAt, process: process), at: now + witness.delay)
        case .witnessAnswer(let i, let reply, let sentAt, let process):
            guard process == servers[i].process else { return }
            apply(i, servers[i].node.handle(.witnessReply(reply, sentAt: sentAt), at: now))
        case .portChecked(let i, let refused, let process):
            guard process == servers[i].process else { return }
            apply(i, servers[i].node.handle(.peerPortChecked(refused: refused), at: now))
        }
        for i in servers.indices { rescheduleTimer(i) }
    }

    func tick(_ i: Int) {
        if let dialAt = servers[i].nextDialAt, now >= dialAt { dial() }
        apply(i, servers[i].node.handle(.tick, at: now))
    }

    func rescheduleTimer(_ i: Int) {
        guard let deadline = servers[i].nextDeadline else { return }
        if let scheduled = servers[i].scheduledTimer, scheduled <= deadline { return }
        servers[i].timerGeneration += 1
        servers[i].scheduledTimer = deadline
        queue.push(.serverTimer(server: i, generation: servers[i].timerGeneration), at: max(now, deadline) + jitter())
    }

    func resume(_ i: Int) {
        guard servers[i].running, servers[i].isPaused else { return }
        log("\(servers[i].role) resumes")
        servers[i].pausedUntil = nil
        feedMaintenance(i)
        servers[i].scheduledTimer = nil
        let pending = servers[i].deferred
        servers[i].deferred = []
        for event in pending { handle(event) }
        tick(i)
    }

    // MARK: Carrying out what the node decided (the shell's job)

    /// The node's effects, in their order: the state persisted first, the incidents, then the
    /// directives.
    func apply(_ i: Int, _ effects: PairEffects) {
        let role = servers[i].role
        if let state = effects.persist { servers[i].disk = state }
        // The state change each automatic rule makes: an activation for a lost link, a
        // deactivation for a handover or row 3. (A witness's lease loss, which may stop a
        // server in maintenance, can come in the same effects as a trial's end recorded as
        // a lost link: seed 7227.)
        let activated = effects.directives.contains { if case .activate = $0 { true } else { false } }
        let deactivated = effects.directives.contains { if case .deactivate = $0 { true } else { false } }
        for incident in effects.incidents {
            log("\(role) incident \(incident.id): \(incident.cause)")
            let automatic =
                (incident.cause == .peerLinkLost && activated) || ([.clientLossHandover, .linkAndMajorityLost].contains(incident.cause) && deactivated)
            if servers[i].node.inMaintenance, automatic {
                invariants.fail("\(role) decided \(incident.cause) during maintenance mode", self)
            }
            servers[i].incidents.append(incident)
            invariants.noteIncident(incident, pair: self)
        }
        for id in effects.acknowledged { log("\(role) acknowledged \(id)") }
        for directive in effects.directives {
            switch directive {
            case .send(let signal):
                if case .activationRequest(let request) = signal { log("\(role) asks the peer to activate (\(request.reason))") }
                if let connection = servers[i].connectionId { send(signal, on: connection, from: i) }
            case .closePeerConnection:
                if let connection = servers[i].connectionId { closeConnection(connection, by: i) }
            case .activate(let epoch):
                log("\(role) ACTIVE epoch \(epoch)")
                let wasActive = history.last { $0.role == role }?.state == .active && servers[i].activeSinceStart
                history.append((now, role, .active))
                servers[i].activeSinceStart = true
                servers[i].activations.append((now, epoch))
                invariants.noteActivation(of: role, epoch: epoch, reassertion: wasActive, pair: self)
            case .deactivate(let state):
                log("\(role) \(state)")
                history.append((now, role, state))
                servers[i].activeSinceStart = false
            case .redirectClients(let reason):
                log("\(role) redirects \(servers[i].sessions.count) clients (\(reason))")
                redirectAll(from: i)
            case .announceToWatchers, .warnWatchers:
                break  // the simulated clients keep no watch connection
            case .replicationRole(let replication):
                // The simulated stores are always in step: a leader's follower is caught up at
                // once (replication lag is the ConfigStore's business, tested there).
                if replication == .leader { apply(i, servers[i].node.handle(.peerReplicationLag(0), at: now)) }
            case .linkReport(let report):
                if report != .suspect && report != .recovered { log("\(role) link \(report)") }
                switch report {
                case .stable: servers[i].stableOn = servers[i].connectionId.map { ($0, now) }
                case .lost: servers[i].stableOn = nil
                default: break
                }
            case .slowLink(let roundTrip, let suggested):
                servers[i].warnings.append("slow link: first frame after \(roundTrip), raise the loss timeout to \(suggested)")
                log("\(role) slow link: first frame after \(roundTrip)")
            case .maintenanceEnded:
                log("\(role) maintenance ended")
            case .adminReply(let accepted, let text):
                log("\(role) admin: \(accepted ? "accepted" : "refused"): \(text)")
                servers[i].lastAdminReply = accepted ? .adminAccepted(text) : .adminRefused(text)
            case .warning(let text):
                log("\(role) warning: \(text)")
                servers[i].warnings.append(text)
            case .witness(let request):
                let process = servers[i].process
                switch witness.reach[role] ?? .up {
                case .up:
                    queue.push(.witnessArrives(server: i, request: request, sentAt: now, process: process), at: now + witness.delay)
                case .refused:
                    queue.push(.witnessAnswer(server: i, reply: .refused, sentAt: now, process: process), at: now + latency())
                case .silent:
                    queue.push(.witnessAnswer(server: i, reply: .unreachable, sentAt: now, process: process), at: now + witness.requestTimeout)
                }
            case .checkPeerPort:
                // A crashed process's port refuses; a paused one's accepts (the kernel answers).
                let refused = !servers[1 - i].running
                queue.push(.portChecked(server: i, refused: refused, process: servers[i].process), at: now + latency() * 2)
            }
        }
    }

    func updateClientCount(_ i: Int, joined: Int = 0, lost: Int = 0) {
        apply(i, servers[i].node.handle(.clients(joined: joined, left: 0, lost: lost, loggedIn: servers[i].sessions.count), at: now))
    }
}
