import ActivationPolicy
import PairNode
import HealthMonitor
import PairModel

/// What travels on the simulated peer link: the node's own signals.
typealias PeerFrame = PeerSignal

/// One simulated server process: the `PairNode` the server runs, plus what the real shell would
/// hold (its disk, its sessions, its peer connection). A class: the checker reads both
/// servers after every event, and copying a struct this size was most of the run time.
final class SimulatedServer {
    let role: ServerRole
    var running = true
    var pausedUntil: MonotonicTime?
    /// Survives crashes, as the SQLite file would.
    var disk = PersistentState()
    var node: PairNode
    /// The node's policy, for the checker.
    var policy: ActivationPolicy { node.policy }
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
    /// Counts the process's runs: an answer to a request of an earlier run is dropped.
    var process = 0

    init(role: ServerRole, settings: SimulationSettings) {
        self.role = role
        node = PairNode(role: role, configuration: settings.node, synced: true)
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
        // The simulated stores are always in step: a secondary is synced from its first run.
        node = PairNode(role: role, configuration: settings.node, persisted: disk, synced: true)
        sessions = [:]
        connectionId = nil
        dialing = nil
        nextDialAt = nil
        stableOn = nil
        deferred = []
        scheduledTimer = nil
        timerGeneration += 1
        activeSinceStart = false
        process += 1
    }

    /// Serving, and not past its witness lease by its own clock (what the checker counts).
    func servesWithLease(at now: MonotonicTime) -> Bool {
        isServing && (node.servingUntil.map { now < $0 } ?? true)
    }

    var nextDeadline: MonotonicTime? {
        guard running, !isPaused else { return nil }
        return node.nextDeadline.earliest(nextDialAt)
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
    /// A request reaches the witness (etcd answers even while its sender is paused).
    case witnessArrives(server: Int, request: WitnessRequest, sentAt: MonotonicTime, process: Int)
    case witnessAnswer(server: Int, reply: WitnessReply, sentAt: MonotonicTime, process: Int)
    case portChecked(server: Int, refused: Bool, process: Int)

    /// The server whose process must handle this event (deferred while it is paused).
    var handlingServer: Int? {
        switch self {
        case .serverTimer(let server, _): server
        case .dialArrives: 1
        case .dialAnswered, .dialFailed: 0
        case .peerFrame(let to, _, _), .peerClosed(let to, _): to
        case .clientArrives(_, let server, _): server
        case .serverNoticesClientLoss(let server, _, _): server
        case .witnessAnswer(let server, _, _, _), .portChecked(let server, _, _): server
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
