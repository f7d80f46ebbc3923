import ActivationPolicy
import AdminProtocol
import ConfigModel
import ConfigStore
import Foundation
import HealthMonitor
import Licensing
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import PairNode
import TransportSecurity
import PairModel
import Wire
import WitnessClient

/// One VCOM server, primary or secondary of a pair: the modules composed into a running
/// process. Tests start it in-process; `vcom-server` starts it from a configuration file and
/// runs it as a swift-service-lifecycle `Service`.
///
/// `start` binds the ports and starts the control loop (starting → running); `shutdown` hands
/// over (when it may), ends the sessions and releases everything (shutting down → stopped); a
/// second shutdown waits for the first. Every other method asks the control loop.
public final class ServerRuntime: Service, Sendable {
    public enum Lifecycle: Equatable, Sendable { case running, shuttingDown, stopped }
    /// Modules to use instead of the defaults (the seams a test substitutes).
    public struct Modules: Sendable {
        public var store: (any ConfigurationStoring)?
        public var incidents: (any IncidentRecording)?
        public var clock: (any RuntimeClock)?
        /// Every decision; given the persisted state and whether this server synced before.
        public var node: (@Sendable (PersistentState, _ synced: Bool) -> any PairDeciding)?
        /// Checks licences (the primary's file, an installed one, the one a secondary receives).
        public var licences: LicenceVerifier?
        /// TLS (or not) in front of every connection.
        public var transport: (any ConnectionSecuring)?

        public init(
            store: (any ConfigurationStoring)? = nil, incidents: (any IncidentRecording)? = nil, clock: (any RuntimeClock)? = nil,
            node: (@Sendable (PersistentState, _ synced: Bool) -> any PairDeciding)? = nil, licences: LicenceVerifier? = nil,
            transport: (any ConnectionSecuring)? = nil
        ) {
            self.store = store
            self.incidents = incidents
            self.clock = clock
            self.node = node
            self.licences = licences
            self.transport = transport
        }
    }

    public enum StartError: Error, CustomStringConvertible {
        case dataDirectory(String)
        case licence(String)
        case storage(String)
        case bind(String, String)

        public var description: String {
            switch self {
            case .dataDirectory(let detail): "server.data-dir: \(detail)"
            case .licence(let detail): "server.licence-file: \(detail)"
            case .storage(let detail): "server.data-dir: \(detail)"
            case .bind(let setting, let detail): "\(setting): cannot listen on \(detail)"
            }
        }
    }

    /// Client sessions, the metrics endpoint.
    let group: MultiThreadedEventLoopGroup
    /// The client and admin ports' loops were given by the caller (not shut down here).
    let groupInjected: Bool
    private let lifecycle = NIOLockedValueBox<(state: Lifecycle, waiters: [CheckedContinuation<Void, Never>])>((.running, []))
    /// systemd's notification socket, once `notifySystemd` was called (no-op outside systemd).
    private let systemd = NIOLockedValueBox<SystemdNotifier?>(nil)
    /// One thread of its own for the control loop and the peer link: a burst of 10,000 logins
    /// on the client loops must not delay a peer heartbeat past the loss deadline (it did,
    /// when the control loop also carried client sessions: the pair split under load).
    let controlGroup: MultiThreadedEventLoopGroup
    let hashing: NIOThreadPool
    let controller: NIOLoopBound<Controller>
    let loop: EventLoop
    let channels: [Channel]
    /// Where the listeners are bound (port 0 in the settings becomes the real port here).
    public let clientAddress: Endpoint
    public let peerAddress: Endpoint?
    public let metricsAddress: Endpoint?
    public let adminAddress: Endpoint?
    let clients: ClientService
    let operations: ServerOperations
    public let settings: ServerSettings
    public let store: any ConfigurationStoring
    let logger: Logger
    /// The etcd witness's HTTP client (nil: none); shut down with the loops.
    let witnessClient: EtcdWitness?

    /// `group`: the event loops of the client and admin ports (default: made here, with
    /// `settings.eventLoopThreads` threads, and shut down with the server).
    public static func start(
        settings: ServerSettings, logger baseLogger: Logger, modules: Modules = Modules(), group injected: MultiThreadedEventLoopGroup? = nil
    ) async throws -> ServerRuntime {
        var logger = baseLogger
        logger[metadataKey: "server"] = "\(settings.serverId)"
        do {
            for warning in try DataDirectory.secure(settings.dataDirectory) { logger.warning("\(warning)") }
        } catch {
            throw StartError.dataDirectory("cannot create \(settings.dataDirectory.path): \(error.localizedDescription)")
        }
        let store: any ConfigurationStoring
        let stateStore: StateStore
        do {
            store = try modules.store ?? ConfigStore(path: settings.dataDirectory.appendingPathComponent("config.sqlite").path)
            stateStore = try StateStore(path: settings.dataDirectory.appendingPathComponent("state.sqlite").path)
        } catch {
            throw StartError.storage("\(error)")
        }
        // Files the stores just created, made before this process's umask applied to them.
        DataDirectory.tightenFiles(in: settings.dataDirectory, warn: false)
        let licences = modules.licences ?? LicenceVerifier(trustedKeys: settings.vendorKeys)
        let licence = try Self.loadLicence(settings, verifier: licences, logger: logger)
        let persisted: PersistentState
        do {
            persisted = try stateStore.loadPolicyState() ?? PersistentState()
        } catch {
            throw StartError.storage("the failover state cannot be read: \(error)")
        }
        let synced: Bool
        do {
            synced = try stateStore.fact("synced") == "yes"
        } catch {
            throw StartError.storage("the failover state cannot be read: \(error)")
        }
        let node =
            modules.node?(persisted, synced)
            ?? PairNode(role: settings.role, configuration: settings.nodeConfiguration, persisted: persisted, synced: synced)
        let metrics = RuntimeMetrics(role: settings.role, serverId: settings.serverId, tls: settings.tls?.contexts)
        let failoverCauses: Set<String> = [IncidentCause.peerLinkLost, .clientLossHandover, .linkAndMajorityLost, .peerLinkLostWitnessDown, .witnessLeaseLost].map(\.description).reduce(into: []) { $0.insert($1) }
        if let last = (try? (modules.incidents ?? stateStore).incidents())?.filter({ failoverCauses.contains($0.cause) }).map(\.decidedAt).max() {
            metrics.lastFailover(at: last)
        }
        let clock = modules.clock ?? SystemClock()
        let descriptors = DescriptorLimit.raise()
        let limits = settings.limits.fitted(toDescriptors: descriptors.after)
        logger.info(
            "open files: limit \(descriptors.after)\(descriptors.after != descriptors.before ? " (raised from \(descriptors.before))" : ""); connections before login: client \(limits.client.total) (\(limits.client.perSource) per source), admin \(limits.admin.total), peer \(limits.peer.total), metrics \(limits.metrics.total)")
        let refusals = RefusalLog(logger: logger, metrics: metrics)
        let strangers = PortStrangers(limits: limits, refusals: refusals, clock: clock)

        let group = injected ?? MultiThreadedEventLoopGroup(numberOfThreads: settings.eventLoopThreads)
        let controlGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let hashing = NIOThreadPool(numberOfThreads: 2)
        hashing.start()
        let loop = controlGroup.next()
        let transport = modules.transport ?? ServerTransport(tls: settings.tls, refusals: refusals)
        var witnessClient: EtcdWitness?
        do {
            let bound = try await loop.submit {
                NIOLoopBound(
                    try Controller(
                        settings: settings, loop: loop, logger: logger, clock: clock, metrics: metrics, node: node, store: store,
                        stateStore: stateStore, incidents: modules.incidents ?? stateStore, licence: licence, licences: licences,
                        transport: transport),
                    eventLoop: loop)
            }.get()
            if let witness = settings.witness {
                let tls = try witness.tlsConfiguration()
                let client = EtcdWitness(
                    configuration: .init(
                        endpoints: witness.endpoints, key: "/vcom/\(settings.primaryId)/active", serverId: settings.serverId, leaseTTL: witness.leaseTTL,
                        tls: tls),
                    logger: logger)
                witnessClient = client
                try await loop.submit { bound.value.witnessClient = client }.get()
                logger.info("witness: etcd at \(witness.endpoints.joined(separator: ", ")), lease \(witness.leaseTTL), margin \(witness.margin)")
            }
            let gate = AdmissionGate(role: settings.role, licence: licence.enforcement)
            // Joins, departures and losses reach the control loop in batches, a few milliseconds
            // apart: after a failover 10,000 logins arrive within a second, and a wake-up of the
            // control loop per login (an eventfd write, a context switch) was a sixteenth of the
            // standby's work. The census judges losses over seconds; 5 ms changes no decision.
            let batch = NIOLockedValueBox((joined: 0, left: 0, lost: 0, scheduled: false))
            @Sendable func count(joined: Int = 0, left: Int = 0, lost: Int = 0) {
                let schedule = batch.withLockedValue { value in
                    value.joined += joined
                    value.left += left
                    value.lost += lost
                    defer { value.scheduled = true }
                    return !value.scheduled
                }
                guard schedule else { return }
                loop.scheduleTask(in: .milliseconds(5)) {
                    let taken = batch.withLockedValue { value in
                        defer { value = (0, 0, 0, false) }
                        return value
                    }
                    bound.value.clientsChanged(joined: taken.joined, left: taken.left, lost: taken.lost)
                }
            }
            let events = ClientService.Events(
                joined: { count(joined: 1) },
                left: { count(left: 1) },
                lost: { count(lost: 1) },
                revoke: { revoked in
                    loop.flatSubmit { bound.value.revoke(revoked) }
                })
            let service = ClientService(
                gate: gate, tokens: SessionTokens(keys: ClusterKeys(secret: settings.clusterSecret), lifetime: settings.timings.tokenLifetime),
                store: store,
                passwordChecks: PasswordChecks(
                    pool: hashing, threads: 2, limit: limits.passwordChecks, perSource: limits.passwordChecksPerSource),
                throttle: settings.clientLoginThrottle, refusals: refusals, events: events, clock: clock, metrics: metrics, logger: logger,
                heartbeatInterval: settings.timings.clientHeartbeat, serverId: settings.serverId,
                // Twice the peer timeout: the takeover's own detection, and as long again for
                // its activation to be decided and published.
                loginHold: settings.timings.peerHeartbeat * settings.timings.peerMisses * 2,
                sessionTimeout: settings.timings.clientHeartbeat * settings.timings.clientMisses)
            try await loop.submit { bound.value.clients = service }.get()

            var channels: [Channel] = []
            if let tls = settings.tls { CertificateWatch.start(tls, loop: loop, logger: logger) }
            let client = try await Self.bindClients(settings, group: group, service: service, transport: transport, strangers: strangers.client)
            channels.append(client)
            let clientAddress = Endpoint(host: settings.clientListen.host, port: UInt16(client.localAddress?.port ?? 0))
            var peerAddress: Endpoint?
            if settings.role == .secondary, let listen = settings.peerListen {
                let peer = try await Self.bindPeer(listen, loop: loop, controller: bound, transport: transport, strangers: strangers.peer)
                channels.append(peer)
                peerAddress = Endpoint(host: listen.host, port: UInt16(peer.localAddress?.port ?? 0))
            }
            let operations = ServerOperations(controller: bound, loop: loop, clients: service, store: store, settings: settings)
            var metricsAddress: Endpoint?
            if let listen = settings.metricsListen {
                // Made at most four times a second, however often strangers ask: each one costs
                // the control loop three trips and reads of the incident log and the journal.
                let cached = NIOLockedValueBox<(at: ContinuousClock.Instant, body: String)?>(nil)
                let page = StatusPageSource(
                    document: {
                        if let last = cached.withLockedValue({ $0 }), ContinuousClock.now - last.at < .milliseconds(250) { return last.body }
                        guard let status = await operations.status(), let report = await operations.report() else { return nil }
                        let incidents = (try? await operations.incidents()) ?? []
                        let body = StatusDocument.json(StatusDocument.make(status: status, report: report, incidents: incidents, now: Date()))
                        cached.withLockedValue { $0 = (ContinuousClock.now, body) }
                        return body
                    }, readToken: settings.metricsReadToken, catchUp: { await operations.catchUp() })
                do {
                    let http = try await MetricsServer.start(
                        on: (listen.host, Int(listen.port)), group: group, metrics: metrics,
                        health: try await loop.submit { bound.value.health }.get(), status: page, strangers: strangers.metrics)
                    channels.append(http)
                    metricsAddress = Endpoint(host: listen.host, port: UInt16(http.localAddress?.port ?? 0))
                } catch {
                    throw StartError.bind("listen.metrics", "\(listen): \(error)")
                }
            }
            var adminAddress: Endpoint?
            if let listen = settings.adminListen {
                let audit: AuditLog
                do {
                    audit = try AuditLog(path: settings.dataDirectory.appendingPathComponent("audit.sqlite").path)
                } catch {
                    throw StartError.storage("the audit log cannot be opened: \(error)")
                }
                let admin = AdminService(
                    operations: operations, audit: audit, store: store, clusterSecret: settings.clusterSecret,
                    throttle: settings.adminLoginThrottle, logger: logger)
                let channel = try await Self.bindAdmin(listen, group: group, service: admin, transport: transport, strangers: strangers.admin)
                // Refused attempts beyond the audit's budget are written as one row per source
                // and minute, when the minute ends.
                group.next().scheduleRepeatedTask(initialDelay: .seconds(60), delay: .seconds(60)) { _ in admin.flushSummaries() }
                channels.append(channel)
                adminAddress = Endpoint(host: listen.host, port: UInt16(channel.localAddress?.port ?? 0))
            }
            let advertised = settings.advertisedClientEndpoint.map { Endpoint(host: $0.host, port: $0.port == 0 ? clientAddress.port : $0.port) }
                ?? clientAddress
            try await loop.submit {
                bound.value.advertisedEndpoint = advertised
                bound.value.start()
            }.get()
            if settings.tls == nil { logger.warning("TLS is off on every port (--plaintext): passwords and configuration cross the network in clear") }
            return ServerRuntime(
                group: group, groupInjected: injected != nil, controlGroup: controlGroup, hashing: hashing, controller: bound, loop: loop,
                channels: channels, clientAddress: clientAddress, peerAddress: peerAddress, metricsAddress: metricsAddress,
                adminAddress: adminAddress, settings: settings, store: store, clients: service, operations: operations, logger: logger,
                witnessClient: witnessClient)
        } catch {
            await witnessClient?.shutdown()
            if injected == nil { try? await group.shutdownGracefully() }
            try? await controlGroup.shutdownGracefully()
            try? await hashing.shutdownGracefully()
            throw error
        }
    }

    private init(
        group: MultiThreadedEventLoopGroup, groupInjected: Bool, controlGroup: MultiThreadedEventLoopGroup, hashing: NIOThreadPool,
        controller: NIOLoopBound<Controller>, loop: EventLoop,
        channels: [Channel], clientAddress: Endpoint, peerAddress: Endpoint?, metricsAddress: Endpoint?, adminAddress: Endpoint?,
        settings: ServerSettings, store: any ConfigurationStoring, clients: ClientService, operations: ServerOperations, logger: Logger,
        witnessClient: EtcdWitness?
    ) {
        self.witnessClient = witnessClient
        self.operations = operations
        self.logger = logger
        self.adminAddress = adminAddress
        self.clients = clients
        self.group = group
        self.controlGroup = controlGroup
        self.groupInjected = groupInjected
        self.hashing = hashing
        self.controller = controller
        self.loop = loop
        self.channels = channels
        self.clientAddress = clientAddress
        self.peerAddress = peerAddress
        self.metricsAddress = metricsAddress
        self.settings = settings
        self.store = store
    }

    static func loadLicence(_ settings: ServerSettings, verifier: LicenceVerifier, logger: Logger) throws -> LicenceState {
        switch settings.role {
        case .primary:
            guard let file = settings.licenceFile else { throw StartError.licence("the primary needs a licence file") }
            let text: String
            do {
                text = try String(contentsOf: file, encoding: .utf8)
            } catch {
                throw StartError.licence("cannot read \(file.path): \(error.localizedDescription)")
            }
            do {
                let verified = try verifier.verify(text, boundTo: settings.serverId)
                if let warning = LicenceEnforcement(licence: verified).expiryWarning(at: Date()) { logger.warning("\(warning)") }
                return .own(verified)
            } catch {
                throw StartError.licence("\(file.path): \(error)")
            }
        case .secondary:
            var shared = SharedLicence(verifier: verifier, primaryId: settings.primaryId)
            let files = LicenceFileStore(directory: settings.dataDirectory)
            do {
                if let stored = try files.load() {
                    try shared.restore(stored)
                    logger.info("licence \(shared.current?.licence.licenceId ?? "") restored from the data directory")
                }
            } catch {
                logger.error("the stored licence is refused (\(error)); waiting for the primary to share its licence")
            }
            return .shared(shared)
        }
    }

    static func bindClients(
        _ settings: ServerSettings, group: EventLoopGroup, service: ClientService, transport: any ConnectionSecuring, strangers: Strangers
    ) async throws -> Channel {
        do {
            return try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 4096)
                // After a failover every client of the pair connects within milliseconds: an
                // accept queue that overflows drops SYNs, and each dropped client waits out the
                // kernel's 1 s SYN retransmission. Drain the queue by hundreds per wake-up
                // (NIO's default is 4).
                .serverChannelOption(.maxMessagesPerRead, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                // A listener that stops reading loses media above 64 KiB queued (about 600
                // frames, 12 s of one talker), rather than growing the server without bound.
                .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
                // What an idle TLS client costs in memory: see PagedBufferAllocator.
                .childChannelOption(.allocator, value: PagedBufferAllocator.allocator)
                // A channel keeps its receive buffer between reads. A client sends heartbeats,
                // keys and 80-byte media frames: 512 bytes hold any of them with TLS's overhead
                // (NIO's default starts at 2 KiB, kept per connection); the buffer still grows
                // for a larger read.
                .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536))
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let limits = FrameLimits(after: .client)
                        guard let ticket = try strangers.admit(channel, limits: limits) else { return }
                        let operations = channel.pipeline.syncOperations
                        try transport.addAccepted(.clients, to: channel)
                        try operations.addWireHandlers(for: ClientMessage.self, limits: limits)
                        try operations.addHandler(ClientSessionHandler(service: service, ticket: ticket))
                    }
                }
                .bind(host: settings.clientListen.host, port: Int(settings.clientListen.port)).get()
        } catch {
            throw StartError.bind("listen.client", "\(settings.clientListen): \(error)")
        }
    }

    static func bindAdmin(
        _ listen: Endpoint, group: EventLoopGroup, service: AdminService, transport: any ConnectionSecuring, strangers: Strangers
    ) async throws -> Channel {
        do {
            return try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let limits = FrameLimits(after: .admin)
                        guard let ticket = try strangers.admit(channel, limits: limits) else { return }
                        let operations = channel.pipeline.syncOperations
                        // A logged-in session that says nothing for five minutes is closed (before
                        // the login, the port's authentication deadline applies: 30 s).
                        try operations.addHandler(IdleStateHandler(readTimeout: .minutes(5)))
                        try transport.addAccepted(.admin, to: channel)
                        let source = ticket.source
                        // Bad input is an attempt too: audited (within the refusal budget).
                        try operations.addWireHandlers(
                            for: AdminMessage.self, limits: limits,
                            onError: { error in
                                service.refused(
                                    user: "-", source: source, action: limits.isAuthenticated ? "protocol" : "before login",
                                    result: "refused: \(error)")
                            })
                        try operations.addHandler(AdminSessionHandler(service: service, ticket: ticket))
                    }
                }
                .bind(host: listen.host, port: Int(listen.port)).get()
        } catch {
            throw StartError.bind("listen.admin", "\(listen): \(error)")
        }
    }

    static func bindPeer(
        _ listen: Endpoint, loop: EventLoop, controller: NIOLoopBound<Controller>, transport: any ConnectionSecuring, strangers: Strangers
    ) async throws -> Channel {
        do {
            return try await ServerBootstrap(group: loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let limits = FrameLimits(after: .peer)
                        guard let ticket = try strangers.admit(channel, limits: limits) else { return }
                        let remote = channel.remoteAddress.map { "\($0)" } ?? "an unknown address"
                        let source = ticket.source
                        try transport.addAccepted(.peer, to: channel)
                        try channel.pipeline.syncOperations.addWireHandlers(
                            for: PeerMessage.self, limits: limits,
                            onError: { error in
                                strangers.refusals.refused(port: "peer", source: source, reason: "bad_input", detail: "bad input: \(error)", level: .warning)
                            })
                        try channel.pipeline.syncOperations.addHandler(controller.value.makePeerHandler(remote: remote, ticket: ticket))
                    }
                }
                .bind(host: listen.host, port: Int(listen.port)).get()
        } catch {
            throw StartError.bind("listen.peer", "\(listen): \(error)")
        }
    }

    // MARK: Asking the control loop (`ServerOperations` does it; the admin port uses it too)

    public func status() async -> RuntimeStatus? { await operations.status() }
    public func switchover(acknowledging incident: String?) async -> AdminOutcome { await operations.switchover(acknowledging: incident) }
    public func switchoverRefusal(acknowledging incident: String?) async -> String? { await operations.switchoverRefusal(acknowledging: incident) }
    public func forceActivation(reason: String) async -> AdminOutcome { await operations.forceActivation(reason: reason) }
    public func installLicence(_ text: String) async -> AdminOutcome { await operations.installLicence(text) }
    public func write(_ changes: [ConfigChange]) async throws -> [ChangeRecord] { try await operations.write(changes) }
    public func report() async -> ServerReport? { await operations.report() }
    public func acknowledge(_ incident: String) async throws { try await operations.acknowledge(incident) }
    public func incidents() async throws -> [StoredIncident] { try await operations.incidents() }
    public func metricsText() async -> String { await operations.metricsText() }
    public func waitForState(_ state: ServerState, timeout: Duration) async -> Bool { await operations.waitForState(state, timeout: timeout) }

    /// Reloads the certificate files now if they changed (SIGHUP; the runtime also checks on
    /// its own every `reloadInterval`). Returns what happened, for the caller's log.
    @discardableResult
    public func reloadCertificates() -> ServerTLSContexts.Reload? {
        guard let tls = settings.tls else { return nil }
        return CertificateWatch.reload(tls, logger: logger)
    }

    public var state: Lifecycle { lifecycle.withLockedValue { $0.state } }

    /// The service's life: runs until a graceful shutdown is asked for (SIGTERM, SIGINT), then
    /// shuts down.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Tells systemd (Type=notify) that the ports are bound and the server started, keeps
    /// `STATUS=` up to date with its serving state, and feeds the watchdog (`WatchdogSec=`)
    /// from the control loop itself: a loop that stops turning stops the pings, and systemd
    /// restarts the process. Does nothing outside systemd.
    public func notifySystemd(_ notifier: SystemdNotifier = SystemdNotifier()) {
        guard notifier.isActive else { return }
        systemd.withLockedValue { $0 = notifier }
        let role = settings.role
        let id = settings.serverId
        _ = loop.submit { [controller] in
            let controller = controller.value
            controller.servingStateChanged = { state, epoch in notifier.notify("STATUS=\(role) \(id): \(state), epoch \(epoch)") }
            notifier.notify("READY=1\nMAINPID=\(getpid())\nSTATUS=\(role) \(id): \(controller.node.state), epoch \(controller.node.epoch)")
        }
        if let interval = notifier.watchdogInterval {
            loop.scheduleRepeatedTask(initialDelay: .nanoseconds(interval.nanoseconds), delay: .nanoseconds(interval.nanoseconds)) { _ in
                notifier.notify("WATCHDOG=1")
            }
        }
    }

    /// Stops at once, as a kill -9 would: no handover, no goodbye, nothing more persisted.
    /// For tests that need a crash in-process; the data directory stays as it was.
    public func stopAbruptly() async {
        guard await beginStopping() else { return }
        _ = operations.markStopped()
        _ = try? await loop.submit { self.controller.value.shuttingDown = true; self.controller.value.timer?.cancel() }.get()
        await releaseLoops()
        finishStopping()
    }

    /// Hands over when it may, ends the sessions, closes the ports and stops the loops. A second
    /// call while the first runs waits for it.
    public func shutdown() async {
        guard await beginStopping() else { return }
        systemd.withLockedValue { $0 }?.notify("STOPPING=1\nSTATUS=shutting down")
        _ = operations.markStopped()
        _ = try? await loop.flatSubmit { self.controller.value.beginShutdown() }.get()
        for channel in channels { try? await channel.close() }
        // Let the goodbyes and redirects reach the wire before the loops stop.
        try? await Task.sleep(for: .milliseconds(50))
        await releaseLoops()
        finishStopping()
    }

    /// True for the caller that stops the server; any other waits until it has stopped.
    private func beginStopping() async -> Bool {
        enum Next { case stop, wait, done }
        let next: Next = lifecycle.withLockedValue { value in
            switch value.state {
            case .running:
                value.state = .shuttingDown
                return .stop
            case .shuttingDown: return .wait
            case .stopped: return .done
            }
        }
        switch next {
        case .stop: return true
        case .done: return false
        case .wait:
            await withCheckedContinuation { continuation in
                let stopped = lifecycle.withLockedValue { value -> Bool in
                    if value.state == .stopped { return true }
                    value.waiters.append(continuation)
                    return false
                }
                if stopped { continuation.resume() }
            }
            return false
        }
    }

    private func finishStopping() {
        let waiters = lifecycle.withLockedValue { value in
            value.state = .stopped
            defer { value.waiters = [] }
            return value.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func releaseLoops() async {
        await witnessClient?.shutdown()
        if !groupInjected { try? await group.shutdownGracefully() }
        try? await controlGroup.shutdownGracefully()
        try? await hashing.shutdownGracefully()
    }

    /// SIGHUP takes renewed certificate files at once, rather than at the next periodic check.
    /// Cancel the source to stop.
    public func reloadCertificatesOnHangup() -> DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP)
        hangup.setEventHandler { _ = self.reloadCertificates() }
        hangup.resume()
        return hangup
    }

    /// The server's log: lines on standard error from `level` up.
    public static func standardErrorLogger(level: Logger.Level, json: Bool = false) -> Logger {
        var logger = Logger(label: "vcom.server") { label in LineLogHandler(label: label, level: level, json: json) }
        logger.logLevel = level
        return logger
    }

    /// The line a started server prints (and writes to a ready file): where its ports are.
    public var readyLine: ReadyLine {
        var ready: [String: Any] = [
            "ready": true, "role": settings.role.description, "id": settings.serverId, "pid": Int(getpid()), "client": clientAddress.description,
        ]
        if let peer = peerAddress { ready["peer"] = peer.description }
        if let metrics = metricsAddress { ready["metrics"] = metrics.description }
        if let admin = adminAddress { ready["admin"] = admin.description }
        ready["tls"] = settings.tls.map { $0.clientsUseTLS ? "on" : "peer-and-admin" } ?? "off"
        let data = (try? JSONSerialization.data(withJSONObject: ready, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return ReadyLine(text: String(decoding: data, as: UTF8.self))
    }
}

/// One JSON object on a line: `{"ready": true, "client": "host:port", ...}`.
public struct ReadyLine: Sendable {
    public let text: String

    /// Prints it on standard output, and writes it to `file` (by rename) when given.
    public func write(toFile file: String?) throws {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
        guard let file else { return }
        let temporary = file + ".tmp"
        try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: temporary))
        _ = rename(temporary, file)
    }
}

extension EventLoopFuture {
    /// The first of two futures to complete.
    func or(_ other: EventLoopFuture<Value>) -> EventLoopFuture<Value> {
        let promise = eventLoop.makePromise(of: Value.self)
        cascade(to: promise)
        other.hop(to: eventLoop).cascade(to: promise)
        return promise.futureResult
    }
}

/// The strangers of each port (docs/security.md, "Limits and throttles").
struct PortStrangers: Sendable {
    let client: Strangers
    let admin: Strangers
    let peer: Strangers
    let metrics: Strangers

    init(limits: ConnectionLimits, refusals: RefusalLog, clock: any RuntimeClock) {
        client = Strangers(port: "client", limits: limits.client, refusals: refusals, clock: clock)
        admin = Strangers(port: "admin", limits: limits.admin, refusals: refusals, clock: clock)
        peer = Strangers(port: "peer", limits: limits.peer, refusals: refusals, clock: clock)
        metrics = Strangers(port: "metrics", limits: limits.metrics, refusals: refusals, clock: clock)
    }
}
