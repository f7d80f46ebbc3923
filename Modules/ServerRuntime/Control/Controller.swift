import ActivationPolicy
import ConfigModel
import ConfigStore
import Dispatch
import Foundation
import HealthMonitor
import Licensing
import Logging
import NIOCore
import NIOPosix
import PairNode
import PairModel
import Wire
import WitnessClient

/// The shell around the server's decisions: it owns the `PairNode` (the policy, the link
/// monitor, the census and the glue between them, all pure) on one event loop (the control
/// loop), feeds it every input with the time, and carries out what it decides, in its order
/// (`PairEffects`: persist, incidents, directives). It decides nothing itself. It also owns
/// the I/O state the node must not: the peer connection, the replication machines and their
/// store work, the licence.
///
/// A persist is written to SQLite synchronously, before the effects after it: a state change
/// is rare and its fsync takes a few milliseconds, cheaper than a queue of deferred effects.
/// Slow work (applying replicated records, reading the log, scrypt) runs off this loop and
/// comes back as an input.
final class Controller {
    let settings: ServerSettings
    let loop: EventLoop
    let logger: Logger
    let clock: any RuntimeClock
    let metrics: RuntimeMetrics
    var node: any PairDeciding
    let store: any ConfigurationStoring
    let stateStore: StateStore
    let incidents: any IncidentRecording
    let keys: ClusterKeys
    var clients: ClientService!

    // The peer.
    var peer: PeerChannelHandler?
    var peerInfo: PeerHandshake.Peer?
    var nextPeerConnectionId = 0
    var heartbeatSequence: UInt64 = 0
    var dialing = false
    var redialDelay: Duration = .milliseconds(50)
    var redialTask: Scheduled<Void>?

    // Replication (the machines; which way it runs is the node's decision).
    var replicationRole: ReplicationRole { node.replicationRole }
    /// The machine running now (set up when the node's choice changes).
    var activeReplication = ReplicationRole.none
    var leader = ReplicationLeader()
    var follower = ReplicationFollower()
    /// Replication frames from the peer, handled one at a time: a frame waits while the
    /// store applies the previous one off the loop.
    var inbox: [PeerMessage] = []
    var diskBusy = false
    let disk = DispatchQueue(label: "vcom.config-store")
    /// The revision the peer last announced (the leader's, when following).
    var peerRevision: UInt64 = 0

    // The licence.
    var licence: LicenceState
    let licences: LicenceVerifier
    /// TLS (or not) on the peer connection this server dials.
    let transport: any ConnectionSecuring
    var licenceClock: LicenceClock
    let clockFile: LicenceClockFile

    // Timing.
    var timer: Scheduled<Void>?
    var timerDeadline: MonotonicTime?
    var shuttingDown = false
    /// The shutdown ended the sessions and closed the link: no input is decided any more.
    var halted = false
    var stateWaiters: [(ServerState, EventLoopPromise<Void>)] = []
    /// The peer link's round trip nears its loss timeout: what to raise it to (status shows it).
    var slowLinkWarning: String?
    /// `hooks.on-state-change`, on a thread of its own (nil: none configured).
    let hooks: StateChangeHooks?
    var lastHookedState: ServerState?
    /// The peer's id as its last authenticated link said (kept while the link is down).
    var lastPeerId: String?
    /// When this server entered its current serving state (the status page's "since").
    var stateSince = Date()
    /// Told of every change of serving state (systemd's STATUS=).
    var servingStateChanged: ((ServerState, UInt64) -> Void)?
    /// What the health endpoints answer, published after every input.
    let health: HealthState
    var started = false
    /// Maintenance mode as the configuration last said (what the node was told).
    var maintenanceWindow: MaintenanceWindow?
    /// Session token chains to revoke, written together (see `revoke`).
    var pendingRevocations: [(RevokedSession, EventLoopPromise<Void>)] = []
    /// Configuration writes waiting for the peer's confirmation (Controller+WriteConcern).
    var waitingWrites: [WaitingWrite] = []
    /// Since when the peer link has been down (from the start until it first comes up).
    var peerLinkDownSince: MonotonicTime?
    /// The etcd witness's client (nil: no witness configured). Shut down by the runtime.
    var witnessClient: EtcdWitness?

    init(
        settings: ServerSettings, loop: EventLoop, logger: Logger, clock: any RuntimeClock, metrics: RuntimeMetrics, node: any PairDeciding,
        store: any ConfigurationStoring, stateStore: StateStore, incidents: any IncidentRecording, licence: LicenceState, licences: LicenceVerifier,
        transport: any ConnectionSecuring
    ) throws {
        self.licences = licences
        self.transport = transport
        self.settings = settings
        self.loop = loop
        self.logger = logger
        self.clock = clock
        peerLinkDownSince = clock.now
        self.metrics = metrics
        self.node = node
        self.store = store
        self.stateStore = stateStore
        self.incidents = incidents
        self.licence = licence
        keys = ClusterKeys(secret: settings.clusterSecret)
        health = HealthState(role: settings.role)
        hooks = settings.stateChangeHook.map { hook in StateChangeHooks(hook: hook, logger: logger) { metrics.hookRan($0) } }
        clockFile = LicenceClockFile(directory: settings.dataDirectory)
        licenceClock = LicenceClock(highWater: clockFile.load())
        if let endpoint = try stateStore.fact("peer-client-endpoint"), let parsed = Endpoint(parsing: endpoint) {
            peerClientEndpointLearned = parsed
        }
    }

    /// What this server tells its peer about where its clients connect (set once bound).
    var advertisedEndpoint: Endpoint?
    /// Where the peer's clients connect, as the peer last said (kept across restarts).
    var peerClientEndpointLearned: Endpoint?
    var peerClientEndpoint: Endpoint? { settings.peerClientEndpoint ?? peerClientEndpointLearned }

    // MARK: Start

    func start() {
        loop.preconditionInEventLoop()
        readLicenceClock()
        feed(.licence(refusal: licence.activationRefusal))
        configurationMoved()
        started = true
        feed(.start)
        if settings.role == .primary { dial() }
        logger.info(
            "started as \(settings.role) \(settings.serverId): \(node.state), epoch \(node.epoch), configuration revision \(store.head.revision)")
    }

    // MARK: Inputs

    /// Gives the node one input now and carries out what it decides. Once the shutdown has
    /// ended the sessions and closed the link, nothing more is decided: the link's loss is the
    /// shutdown's own doing, not a failure to act on.
    @discardableResult
    func feed(_ input: PairInput) -> PairEffects {
        loop.preconditionInEventLoop()
        guard !halted else { return PairEffects() }
        let effects = node.handle(input, at: clock.now)
        carryOut(effects)
        afterInput()
        return effects
    }

    /// What follows every input: the gate and the figures follow the state, the timer follows
    /// the earliest deadline.
    func afterInput() {
        publishServingState()
        publishWitness()
        settleWaitingWrites()
        scheduleTimer()
        // Waiters resume on a fresh turn of the loop: one of them (the shutdown) closes the
        // peer link, whose handler would otherwise re-enter this controller mid-update.
        let state = node.state
        let ready = stateWaiters.filter { $0.0 == state }
        guard !ready.isEmpty else { return }
        stateWaiters.removeAll { $0.0 == state }
        loop.execute { for waiter in ready { waiter.1.succeed() } }
    }

    /// Sessions that started, ended on purpose, or were lost since the last batch.
    func clientsChanged(joined: Int, left: Int, lost: Int = 0) {
        let count = clients.registry.count
        metrics.clients(count)
        feed(.clients(joined: joined, left: left, lost: lost, loggedIn: count))
    }

    // MARK: The timer

    func scheduleTimer() {
        let now = clock.now
        var deadline = node.nextDeadline
        if let wall = leader.nextDeadlineMs {
            let remaining = Int64(wall) - Int64(wallMs())
            deadline = deadline.earliest(now + .milliseconds(max(0, remaining)))
        }
        // The licence clock's mark is read once a minute at least.
        deadline = deadline.earliest(now + .seconds(60))
        guard let deadline else { return }
        if let current = timerDeadline, current <= deadline, timer != nil { return }
        timer?.cancel()
        timerDeadline = deadline
        let delay = max(.zero, deadline - now)
        timer = loop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanoseconds)) { [self] in
            timer = nil
            timerDeadline = nil
            tick()
        }
    }

    func tick() {
        guard !halted else { return }
        performLeader(leader.tick(at: wallMs()))
        readLicenceClock()
        feed(.tick)
    }

    /// Lets every deadline already due act before a state is read: a process resumed after a
    /// freeze may answer a scrape before its timer fires, and would report a state (serving on
    /// an expired lease) that its node is about to leave.
    func catchUp() {
        guard !halted, let due = node.nextDeadline, due <= clock.now else { return }
        tick()
    }

    func wallMs() -> UInt64 { UInt64(max(0, clock.wallNow.timeIntervalSince1970 * 1000)) }

    /// Waits until the node is in `state` (for shutdown and tests), on this loop.
    func waitForState(_ state: ServerState) -> EventLoopFuture<Void> {
        if node.state == state { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        stateWaiters.append((state, promise))
        return promise.futureResult
    }
}
