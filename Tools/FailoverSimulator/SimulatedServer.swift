import ActivationPolicy
import HealthMonitor
import PairModel

/// What travels on the simulated peer link.
enum PeerFrame: CustomStringConvertible {
    case heartbeat
    case status(PeerStatus)
    case activationRequest(ActivationRequest)
    case clientCount(ClientCountReport)

    /// A frame the policy acts on (not a heartbeat).
    var isDecision: Bool {
        if case .heartbeat = self { return false }
        return true
    }

    var epoch: UInt64 {
        switch self {
        case .heartbeat: 0
        case .status(let status): status.epoch
        case .activationRequest(let request): request.epoch
        case .clientCount(let report): report.epoch
        }
    }

    var description: String {
        switch self {
        case .heartbeat: "heartbeat"
        case .status(let status): "status \(status)"
        case .activationRequest(let request): "activation request \(request.requestId) (\(request.reason)) epoch \(request.epoch)"
        case .clientCount(let report): "client count \(report.loggedInClients) for request \(report.requestId) epoch \(report.epoch)"
        }
    }
}

/// One simulated server process: the pure state machines plus what the real shell would
/// hold (its disk, its sessions, its peer connection). A class: the checker reads both
/// servers after every event, and copying a struct this size was most of the run time.
final class SimulatedServer {
    let role: ServerRole
    var running = true
    var pausedUntil: MonotonicTime?
    /// Survives crashes, as the SQLite file would.
    var disk = PersistentState()
    var policy: ActivationPolicy
    var monitor: PeerLinkMonitor
    var census: ClientCensus
    /// Logged-in clients and their session ids.
    var sessions: [Int: Int] = [:]
    var connectionId: Int?
    /// The connection this server dialled and waits to complete (the primary only).
    var dialing: Int?
    var nextDialAt: MonotonicTime?
    /// The connection on which this server's monitor reported `stable`, and when.
    var stableOn: (connection: Int, at: MonotonicTime)?
    var timerGeneration = 0
    var scheduledTimer: MonotonicTime?
    var incidents: [Incident] = []
    var activations: [(at: MonotonicTime, epoch: UInt64)] = []
    var lastAdminReply: PolicyAction?
    var warnings: [String] = []
    /// Events that reached the process while it was paused, handled when it resumes.
    var deferred: [SimEvent] = []
    /// Why this server may not serve (no licence); survives restarts.
    var activationRefusal: String?
    /// Active in this run of the process (an `.activate` while already so is a re-assertion).
    var activeSinceStart = false

    init(role: ServerRole, settings: SimulationSettings) {
        self.role = role
        policy = ActivationPolicy(role: role, configuration: settings.policy)
        monitor = PeerLinkMonitor(configuration: settings.link)
        census = ClientCensus(configuration: settings.census)
    }

    var index: Int { role == .primary ? 0 : 1 }

    /// Sessions by client number. Loops that draw random numbers per client must not follow
    /// Dictionary order: Swift seeds hashing per process, so a seed would not replay.
    var sessionsInOrder: [(key: Int, value: Int)] { sessions.sorted { $0.key < $1.key } }
    var isPaused: Bool { pausedUntil != nil }
    var isServing: Bool { running && !isPaused && policy.state == .active }

    /// A fresh process on the same disk.
    func restart(settings: SimulationSettings) {
        running = true
        pausedUntil = nil
        policy = ActivationPolicy(role: role, configuration: settings.policy, persisted: disk)
        monitor = PeerLinkMonitor(configuration: settings.link)
        census = ClientCensus(configuration: settings.census)
        sessions = [:]
        connectionId = nil
        dialing = nil
        nextDialAt = nil
        stableOn = nil
        deferred = []
        scheduledTimer = nil
        timerGeneration += 1
        activeSinceStart = false
    }

    var nextDeadline: MonotonicTime? {
        guard running, !isPaused else { return nil }
        return monitor.nextDeadline.earliest(census.nextDeadline).earliest(policy.nextDeadline).earliest(nextDialAt)
    }
}

/// Everything that can happen in the simulated world.
enum SimEvent {
    case serverTimer(server: Int, generation: Int)
    case dialArrives(connection: Int)
    case dialAnswered(connection: Int)
    case dialFailed(connection: Int)
    case peerFrame(to: Int, connection: Int, frame: PeerFrame)
    case peerClosed(to: Int, connection: Int)
    case resume(server: Int)
    case clientAttempt(client: Int)
    case clientArrives(client: Int, server: Int, attempt: Int)
    case clientAttemptFailed(client: Int, attempt: Int)
    case clientNoticesLoss(client: Int, session: Int)
    case serverNoticesClientLoss(server: Int, client: Int, session: Int)
    case script(Int)

    /// The server whose process must handle this event (deferred while it is paused).
    var handlingServer: Int? {
        switch self {
        case .serverTimer(let server, _): server
        case .dialArrives: 1
        case .dialAnswered, .dialFailed: 0
        case .peerFrame(let to, _, _), .peerClosed(let to, _): to
        case .clientArrives(_, let server, _): server
        case .serverNoticesClientLoss(let server, _, _): server
        default: nil
        }
    }
}

struct SimulatedClient {
    var session: (server: Int, id: Int)?
    /// The server the next attempt goes to.
    var target = 0
    var attempt = 0
    /// Whether the network path to each server works.
    var reach = [true, true]
}
