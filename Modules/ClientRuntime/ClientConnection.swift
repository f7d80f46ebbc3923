import HealthMonitor
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TransportSecurity
import PairModel
import Wire

/// A client's connection to a VCOM pair over TCP: `ClientConnectionMachine` carried out on
/// one event loop. Events come out as an `AsyncSequence` (`events`) or, for programs that run
/// thousands of clients, through a callback.
public final class ClientConnection: Sendable {
    private struct Shell {
        var machine: ClientConnectionMachine
        var channel: Channel?
        var attempt = 0
        /// The watch connection to the other server, and its attempt number.
        var watchChannel: Channel?
        var watchAttempt = -1
        var timer: Scheduled<Void>?
        var timerDeadline: MonotonicTime?
    }

    public let eventLoop: EventLoop
    /// How long an abandoned connection (its server silent) stays open before it is closed.
    static let abandonDelay = Duration.seconds(1)
    /// How long a client that logged out waits for the server's close before closing itself.
    public static let leaveGrace = Duration.milliseconds(500)
    private let shell: NIOLoopBoundBox<Box>
    private let published: NIOLockedValueBox<(phase: ClientConnectionMachine.Phase, server: Endpoint?, epoch: UInt64, token: ByteBuffer?)>
    private let onEvent: (@Sendable (ClientEvent) -> Void)?
    private let stream: AsyncStream<ClientEvent>.Continuation?
    private let timers: ClientTimers?
    private let tls: ClientTLS?
    /// Every event, in order (empty when a callback was given instead).
    public let events: AsyncStream<ClientEvent>

    private final class Box {
        var shell: Shell
        var random = SystemRandomNumberGenerator()
        init(_ shell: Shell) { self.shell = shell }
    }

    /// - Parameter onEvent: called on the connection's event loop for every event; when given,
    ///   `events` stays empty (a program running thousands of clients needs no stream each).
    /// - Parameter timers: a clock shared with the other connections of `eventLoop` (see
    ///   `ClientTimers`); without one, the connection keeps a timer of its own.
    /// - Parameter tls: how the servers are verified; nil speaks in clear, to servers whose
    ///   client port has TLS switched off (closed networks). No default: a caller decides.
    public init(
        servers: [Endpoint], username: String, password: String, clientInstance: String, tls: ClientTLS?,
        configuration: ClientConnectionMachine.Configuration = .init(), eventLoop: EventLoop,
        timers: ClientTimers? = nil, onEvent: (@Sendable (ClientEvent) -> Void)? = nil
    ) {
        precondition(timers == nil || timers!.eventLoop === eventLoop, "the shared timers must run on the connection's loop")
        self.eventLoop = eventLoop
        self.timers = timers
        self.tls = tls
        let machine = ClientConnectionMachine(
            servers: servers, username: username, password: password, clientInstance: clientInstance, configuration: configuration)
        shell = NIOLoopBoundBox.makeBoxSendingValue(Box(Shell(machine: machine)), eventLoop: eventLoop)
        published = NIOLockedValueBox((.idle, servers.first, 0, nil))
        self.onEvent = onEvent
        if onEvent == nil {
            let (stream, continuation) = AsyncStream<ClientEvent>.makeStream()
            events = stream
            self.stream = continuation
        } else {
            events = AsyncStream { $0.finish() }
            stream = nil
        }
    }

    /// The connection's phase, the server it is on (or trying), and the highest epoch seen.
    public var state: (phase: ClientConnectionMachine.Phase, server: Endpoint?, epoch: UInt64) {
        published.withLockedValue { ($0.phase, $0.server, $0.epoch) }
    }
    /// The session token from the last login (what a re-login presents).
    public var token: ByteBuffer? { published.withLockedValue { $0.token } }
    /// Why the last connection attempt that failed failed (a connect says nothing else: no
    /// event), for a program that shows why it cannot get in.
    public var lastConnectFailure: String? { connectFailure.withLockedValue { $0 } }
    private let connectFailure = NIOLockedValueBox<String?>(nil)
    public var isLoggedIn: Bool { if case .loggedIn = state.phase { true } else { false } }

    public func start() {
        eventLoop.execute { self.feed(.start) }
    }

    /// Logs out (when logged in) and closes; no more reconnection.
    public func stop() {
        eventLoop.execute { self.feed(.stop) }
    }

    /// Sends a message on the session (ignored unless logged in). Keys go through `press`,
    /// which also restores them at the next login.
    public func send(_ message: ClientMessage) {
        eventLoop.execute {
            guard self.shell.value.shell.machine.isLoggedIn else { return }
            self.shell.value.shell.channel?.writeAndFlush(message, promise: nil)
        }
    }

    /// Presses or releases a panel key: sent at once when logged in, and the keys held are
    /// restored with every later login (a failover, a redirect) without the program's help.
    public func press(_ change: KeyChange) {
        eventLoop.execute { self.feed(.keyChanged(change)) }
    }

    /// `send`, from the connection's own event loop (no hop: for traffic generators).
    public func sendOnLoop(_ message: ClientMessage) {
        eventLoop.preconditionInEventLoop()
        guard shell.value.shell.machine.isLoggedIn else { return }
        shell.value.shell.channel?.writeAndFlush(message, promise: nil)
    }

    // MARK: The shell

    private func feed(_ event: ClientConnectionMachine.Event) {
        let box = shell.value
        let now = MonotonicTime(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds))
        let before = (box.shell.machine.phase, box.shell.machine.epoch)
        let actions = box.shell.machine.handle(event, at: now, random: &box.random)
        // Messages are written as they come (`perform` does not flush) and flushed together,
        // before anything else happens to the channels: one system call for a hello and its login.
        // Only the channel written to is flushed: with TLS a flush is not free, and a listener's
        // watch connection has nothing to send when its session does.
        var written = (main: false, watch: false)
        for action in actions {
            switch action {
            case .send: written.main = true
            case .sendWatch: written.watch = true
            default: flush(box, &written)
            }
            perform(action)
        }
        flush(box, &written)
        // A media frame or a heartbeat changes neither (the server and token change only with
        // the phase): no lock taken for them, 50 times a second per listener. The fields are read
        // one by one: a copy of the whole machine retained and released a dozen references.
        if box.shell.machine.phase != before.0 || box.shell.machine.epoch != before.1 {
            let snapshot = (box.shell.machine.phase, box.shell.machine.server, box.shell.machine.epoch, box.shell.machine.token)
            published.withLockedValue { $0 = snapshot }
        }
        scheduleTimer(now: now)
    }

    private func flush(_ box: Box, _ written: inout (main: Bool, watch: Bool)) {
        if written.main { box.shell.channel?.flush() }
        if written.watch { box.shell.watchChannel?.flush() }
        written = (false, false)
    }

    /// Carries out one action; messages are written, not flushed (`feed` flushes).
    private func perform(_ action: ClientConnectionMachine.Action) {
        let box = shell.value
        switch action {
        case .connect(let endpoint, let attempt):
            box.shell.attempt = attempt
            connect(endpoint, attempt: attempt)
        case .send(let message):
            box.shell.channel?.write(message, promise: nil)
        case .close:
            let channel = box.shell.channel
            box.shell.channel = nil
            if let channel { ClientTLS.closeAtOnce(channel) }
        case .abandon:
            // Its server is silent: the login on the other server goes first, and the close
            // (NIO's and TLS's teardown, the larger part of a client's work in a failover)
            // follows a second later, when the failover's burst of logins is over. Frames on it
            // are ignored meanwhile (its attempt number is no longer the session's).
            guard let channel = box.shell.channel else { break }
            box.shell.channel = nil
            let close = { ClientTLS.closeAtOnce(channel) }
            let later = MonotonicTime(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds)) + Self.abandonDelay
            if let timers {
                timers.schedule(at: later, close)
            } else {
                eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Self.abandonDelay.nanoseconds), close)
            }
        case .leave:
            // The server's close (after it read the logout) closes the channel; whatever
            // arrives meanwhile is not the session's any more.
            guard let channel = box.shell.channel else { break }
            box.shell.channel = nil
            box.shell.attempt = -1
            eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Self.leaveGrace.nanoseconds)) {
                if channel.isActive { ClientTLS.closeAtOnce(channel) }
            }
        case .connectWatch(let endpoint, let attempt):
            box.shell.watchAttempt = attempt
            connect(endpoint, attempt: attempt, watch: true)
        case .sendWatch(let message):
            box.shell.watchChannel?.write(message, promise: nil)
        case .closeWatch:
            let channel = box.shell.watchChannel
            box.shell.watchChannel = nil
            box.shell.watchAttempt = -1
            if let channel { ClientTLS.closeAtOnce(channel) }
        case .adoptWatch:
            box.shell.channel = box.shell.watchChannel
            box.shell.attempt = box.shell.watchAttempt
            box.shell.watchChannel = nil
            box.shell.watchAttempt = -1
        case .emit(let event):
            if let onEvent {
                onEvent(event)
            } else {
                stream?.yield(event)
                if case .stopped = event { stream?.finish() }
            }
        }
    }

    private func connect(_ endpoint: Endpoint, attempt: Int, watch: Bool = false) {
        let inbound = InboundHandler(connection: self, attempt: attempt)
        let tls = tls
        let bootstrap = ClientBootstrap(group: eventLoop)
            // A watch is in no hurry. Against a server that holds its port without answering
            // (stopped), a long timeout means few retries; and every connect that succeeds
            // cancels its timeout, which NIO does by scanning all the loop's timers.
            .connectTimeout(watch ? .seconds(10) : .seconds(1))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try tls.makeHandler(host: endpoint.host)) }
                    try channel.pipeline.syncOperations.addWireHandlers(for: ClientMessage.self, configuration: .client)
                    try channel.pipeline.syncOperations.addHandler(inbound)
                }
            }
        // An address given as an IP literal (what a pair is usually configured with) skips
        // name resolution and happy eyeballs: after a failover every client reconnects at once,
        // and a getaddrinfo per client was a tenth of the reconnect's cost.
        let connected =
            if let address = try? SocketAddress(ipAddress: endpoint.host, port: Int(endpoint.port)) {
                bootstrap.connect(to: address)
            } else {
                bootstrap.connect(host: endpoint.host, port: Int(endpoint.port))
            }
        connected
            .hop(to: eventLoop)
            .assumeIsolated()
            .whenComplete { result in
                let box = self.shell.value
                switch result {
                case .success(let channel):
                    guard (watch ? box.shell.watchAttempt : box.shell.attempt) == attempt, !self.isStopped else {
                        channel.close(promise: nil)
                        return
                    }
                    if watch {
                        box.shell.watchChannel = channel
                        self.feed(.watchConnected(attempt: attempt))
                    } else {
                        box.shell.channel = channel
                        self.feed(.connected(attempt: attempt))
                    }
                case .failure(let error):
                    self.connectFailure.withLockedValue { $0 = "\(watch ? "watch " : "")\(endpoint): \(error)" }
                    self.feed(watch ? .watchConnectFailed(attempt: attempt) : .connectFailed(attempt: attempt, reason: "\(error)"))
                }
            }
    }

    private var isStopped: Bool { shell.value.shell.machine.phase == .stopped }

    fileprivate func received(_ message: ClientMessage, attempt: Int) {
        let box = shell.value
        if box.shell.attempt == attempt {
            feed(.received(message))
        } else if box.shell.watchAttempt == attempt {
            feed(.watchReceived(message))
        }
    }

    fileprivate func closed(attempt: Int) {
        let box = shell.value
        if box.shell.watchAttempt == attempt, box.shell.watchChannel != nil {
            box.shell.watchChannel = nil
            box.shell.watchAttempt = -1
            feed(.watchClosed)
            return
        }
        guard shell.value.shell.attempt == attempt, shell.value.shell.channel != nil else { return }
        shell.value.shell.channel = nil
        feed(.closed(reason: "the connection closed"))
    }

    private func scheduleTimer(now: MonotonicTime) {
        let box = shell.value
        guard let deadline = box.shell.machine.nextDeadline else {
            box.shell.timer?.cancel()
            box.shell.timer = nil
            box.shell.timerDeadline = nil
            return
        }
        // A later deadline keeps the timer: it fires early, and the tick asks again. Every frame
        // heard moves the silence deadline; rescheduling on each cost more than the frame.
        if let current = box.shell.timerDeadline, current <= deadline, box.shell.timer != nil || timers != nil { return }
        if let timers {
            box.shell.timerDeadline = deadline
            timers.schedule(at: deadline) {
                if box.shell.timerDeadline == deadline { box.shell.timerDeadline = nil }
                guard !self.isStopped else { return }
                self.feed(.tick)
            }
            return
        }
        box.shell.timer?.cancel()
        box.shell.timerDeadline = deadline
        let delay = max(.zero, deadline - now)
        box.shell.timer = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanoseconds)) {
            box.shell.timer = nil
            box.shell.timerDeadline = nil
            self.feed(.tick)
        }
    }

    private final class InboundHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ClientMessage
        let connection: ClientConnection
        let attempt: Int

        init(connection: ClientConnection, attempt: Int) {
            self.connection = connection
            self.attempt = attempt
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            connection.received(unwrapInboundIn(data), attempt: attempt)
        }

        func channelInactive(context: ChannelHandlerContext) {
            connection.closed(attempt: attempt)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(after: error)
        }
    }
}
