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
import PairModel
import Wire

/// The one owner of the decision state: the policy, the link monitor, the census, the
/// replication machines, the peer connection. It lives on one event loop (the control loop)
/// and nothing else touches its state; everything reaches it as an event with a time, and
/// everything it decides leaves as an action performed here, in order. Follow any event to its
/// effect in this file and its extensions.
///
/// The policy's `.persist` is written to SQLite synchronously, before the actions after it:
/// a state change is rare and its fsync takes a few milliseconds, cheaper than a queue of
/// deferred effects. Slow work (applying replicated records, reading the log, scrypt) runs
/// off this loop and comes back as an event.
final class Controller {
    let settings: ServerSettings
    let loop: EventLoop
    let logger: Logger
    let clock: any RuntimeClock
    let metrics: RuntimeMetrics
    var policy: any FailoverDeciding
    var monitor: any PeerLinkWatching
    var census: any ClientLossWatching
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

    // Replication.
    enum ReplicationRole: Equatable { case none, leader, follower }
    var replicationRole = ReplicationRole.none
    var leader = ReplicationLeader()
    var follower = ReplicationFollower()
    /// Replication frames from the peer, handled one at a time: a frame waits while the
    /// store applies the previous one off the loop.
    var inbox: [PeerMessage] = []
    var diskBusy = false
    let disk = DispatchQueue(label: "vcom.config-store")
    /// The revision the peer last announced (the leader's, when following).
    var peerRevision: UInt64 = 0
    /// A fresh secondary that never completed a first sync must not serve an empty
    /// configuration; one that did keeps serving its last copy.
    var synced: Bool

    // The licence.
    var licence: LicenceState
    var licenceClock: LicenceClock
    let clockFile: LicenceClockFile

    // Timing.
    var timer: Scheduled<Void>?
    var timerDeadline: MonotonicTime?
    var adminReplies: [PolicyAction] = []
    var shuttingDown = false
    /// The shutdown ended the sessions and closed the link: no event is decided any more.
    var halted = false
    var stateWaiters: [(ServerState, EventLoopPromise<Void>)] = []
    /// Watching clients hear of an activation no earlier than this (set when the link closed).
    var announcementHeldUntil: MonotonicTime?
    /// The peer link's round trip nears its loss timeout: what to raise it to (status shows it).
    var slowLinkWarning: String?
    /// Session token chains to revoke, written together (see `revoke`).
    var pendingRevocations: [(RevokedSession, EventLoopPromise<Void>)] = []

    init(
        settings: ServerSettings, loop: EventLoop, logger: Logger, clock: any RuntimeClock, metrics: RuntimeMetrics,
        policy: any FailoverDeciding, monitor: any PeerLinkWatching, census: any ClientLossWatching, store: any ConfigurationStoring,
        stateStore: StateStore, incidents: any IncidentRecording, licence: LicenceState
    ) throws {
        self.settings = settings
        self.loop = loop
        self.logger = logger
        self.clock = clock
        self.metrics = metrics
        self.policy = policy
        self.monitor = monitor
        self.census = census
        self.store = store
        self.stateStore = stateStore
        self.incidents = incidents
        self.licence = licence
        keys = ClusterKeys(secret: settings.clusterSecret)
        clockFile = LicenceClockFile(directory: settings.dataDirectory)
        licenceClock = LicenceClock(highWater: clockFile.load())
        let syncedFact = try stateStore.fact("synced")
        synced = settings.role == .primary || syncedFact == "yes"
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
        updateActivationPermission()
        handle(.start)
        if settings.role == .primary { dial() }
        logger.info(
            "started as \(settings.role) \(settings.serverId): \(policy.state), epoch \(policy.epoch), configuration revision \(store.head.revision)")
    }

    // MARK: Events

    /// Feeds the policy an event now and performs what it decides.
    func handle(_ event: PolicyEvent) {
        loop.preconditionInEventLoop()
        guard !halted else { return }
        decide(event)
        afterEvent()
    }

    /// Feeds the policy one event and performs its actions. Once the shutdown has ended the
    /// sessions and closed the link, nothing more is decided: the link's loss is the
    /// shutdown's own doing, not a failure to act on.
    func decide(_ event: PolicyEvent) {
        guard !halted else { return }
        perform(policy.handle(event, at: clock.now))
    }

    /// What follows every event: replication follows who serves, the gate and the figures
    /// follow the state, the timer follows the earliest deadline.
    func afterEvent() {
        updateReplicationRole()
        publishServingState()
        scheduleTimer()
        // Waiters resume on a fresh turn of the loop: one of them (the shutdown) closes the
        // peer link, whose handler would otherwise re-enter this controller mid-update.
        let state = policy.state
        let ready = stateWaiters.filter { $0.0 == state }
        guard !ready.isEmpty else { return }
        stateWaiters.removeAll { $0.0 == state }
        loop.execute { for waiter in ready { waiter.1.succeed() } }
    }

    /// Sessions that started, ended on purpose, or were lost since the last batch.
    func clientsChanged(joined: Int, left: Int, lost: Int = 0) {
        let now = clock.now
        for _ in 0..<joined { census.clientJoined(at: now) }
        for _ in 0..<left { census.clientLeft(at: now) }
        for _ in 0..<lost {
            for report in census.clientLost(at: now) {
                logger.warning("client census: \(report)")
                decide(.census(report))
            }
        }
        clientCountChanged()
    }

    private func clientCountChanged() {
        let count = clients.registry.count
        metrics.clients(count)
        handle(.loggedInClients(count))
    }

    // MARK: The timer

    func scheduleTimer() {
        let now = clock.now
        var deadline = policy.nextDeadline.earliest(monitor.nextDeadline).earliest(census.nextDeadline).earliest(announcementHeldUntil)
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
        let now = clock.now
        census.tick(at: now)
        performMonitor(monitor.tick(at: now))
        performLeader(leader.tick(at: wallMs()))
        readLicenceClock()
        handle(.tick)
    }

    func wallMs() -> UInt64 { UInt64(max(0, clock.wallNow.timeIntervalSince1970 * 1000)) }

    /// Waits until the policy is in `state` (for shutdown and tests), on this loop.
    func waitForState(_ state: ServerState) -> EventLoopFuture<Void> {
        if policy.state == state { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        stateWaiters.append((state, promise))
        return promise.futureResult
    }
}
