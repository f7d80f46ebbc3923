import HealthMonitor
import NIOCore
import PairModel
import Wire

/// What a client program hears from its connection.
public enum ClientEvent: Equatable, Sendable {
    case connecting(Endpoint)
    case loggedIn(server: Endpoint, role: ServerRole, epoch: UInt64, sessionId: UInt64)
    case refused(server: Endpoint, reason: RefusalReason, detail: String)
    /// The session ended without the client asking (the server went away or went silent).
    case lost(server: Endpoint, reason: String)
    case redirected(from: Endpoint, to: Endpoint, reason: RedirectReason)
    case media(MediaFrame)
    /// The client gave up (bad credentials) or was stopped.
    case stopped(reason: String)
}

/// A client's connection to a pair of servers, as a pure state machine: events and the time
/// in, actions out; the NIO shell (`ClientConnection`) performs them.
///
/// It logs in to the first server, learns the other server's address at login, and on losing
/// its server (a close, or heartbeats missing for `heartbeatInterval × misses`) tries the
/// other at once, then alternates with jittered exponential backoff. It follows redirects,
/// treats "not the active server" as "try the other one", logs in again with its session
/// token, and never moves back by itself while a server serves it.
public struct ClientConnectionMachine: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var heartbeatInterval: Duration
        public var heartbeatMisses: Int
        /// The first retry after the immediate one; doubles up to `retryMaximum`.
        public var retryBase: Duration
        public var retryMaximum: Duration
        /// Each delay is multiplied by a random factor in 1 ± this.
        public var retryJitter: Double
        /// Keep a watch connection to the other server while logged in (see the type's doc).
        public var watchOther: Bool
        /// Heartbeats on the watch connection (the server drops a watcher silent for 30 s).
        public var watchHeartbeatInterval: Duration
        /// How long the own server has to answer once the other one announced its activation.
        public var probeTimeout: Duration
        /// A probe's deadline seen by a tick later than this after it: this client's loop was
        /// held up (a busy or descheduled process), and the answer may be waiting unread behind
        /// the tick. The client looks once more, half this later, before it moves.
        public var lateTickTolerance: Duration
        /// The watch starts at a random moment this long at most after a login.
        public var watchStartSpread: Duration
        /// A connection attempt that has neither connected nor failed by then counts as failed.
        /// The shell's own connect timeout (1 s) normally ends it first; this one makes sure no
        /// phase but `idle` and `stopped` waits without a deadline: a client stuck there would
        /// never log in, and nothing would tell.
        public var connectDeadline: Duration

        public init(
            heartbeatInterval: Duration = .seconds(1), heartbeatMisses: Int = 3, retryBase: Duration = .milliseconds(100),
            retryMaximum: Duration = .seconds(2), retryJitter: Double = 0.2, watchOther: Bool = true,
            watchHeartbeatInterval: Duration = .seconds(10), probeTimeout: Duration = .milliseconds(250),
            watchStartSpread: Duration = .seconds(2), connectDeadline: Duration = .seconds(5),
            lateTickTolerance: Duration = .milliseconds(50)
        ) {
            self.lateTickTolerance = max(.milliseconds(1), lateTickTolerance)
            self.watchStartSpread = max(.zero, watchStartSpread)
            self.connectDeadline = max(.milliseconds(1), connectDeadline)
            self.heartbeatInterval = heartbeatInterval
            self.heartbeatMisses = max(1, heartbeatMisses)
            self.retryBase = retryBase
            self.retryMaximum = retryMaximum
            self.retryJitter = min(max(0, retryJitter), 0.9)
            self.watchOther = watchOther
            self.watchHeartbeatInterval = max(.milliseconds(100), watchHeartbeatInterval)
            self.probeTimeout = max(.milliseconds(1), probeTimeout)
        }

        var timeout: Duration { heartbeatInterval * heartbeatMisses }
    }

    public enum Event: Sendable {
        case start
        /// The connection attempt numbered `attempt` succeeded.
        case connected(attempt: Int)
        case connectFailed(attempt: Int, reason: String)
        case received(ClientMessage)
        case closed(reason: String)
        case tick
        case stop
        /// The program pressed or released a key: sent now if logged in, and the keys held are
        /// sent with every login, so a failover restores them with the session.
        case keyChanged(KeyChange)
        /// The same for the watch connection to the other server.
        case watchConnected(attempt: Int)
        case watchConnectFailed(attempt: Int)
        case watchReceived(ClientMessage)
        case watchClosed
    }

    public enum Action: Equatable, Sendable {
        case connect(Endpoint, attempt: Int)
        case send(ClientMessage)
        case close
        /// Close the session's connection, in no hurry: its server stopped answering and the
        /// client moves on. The shell may close it a moment later, after the login that
        /// matters now (no frame of it is read any more).
        case abandon
        /// The logout is written: the server closes the connection once it has read it, and
        /// the shell closes it then (or after a moment at most). Closed at once with media
        /// still unread, it would be reset, and the logout could be lost with it: the server
        /// would count a lost client, toward a handover.
        case leave
        case emit(ClientEvent)
        case connectWatch(Endpoint, attempt: Int)
        case sendWatch(ClientMessage)
        case closeWatch
        /// The watch connection becomes the session's connection (the old one is closed).
        case adoptWatch
    }

    /// The watch connection to the other server.
    public enum WatchPhase: Equatable, Sendable {
        case none
        case connecting(attempt: Int, to: Endpoint)
        case open(attempt: Int, to: Endpoint)
        case waiting(until: MonotonicTime)
    }

    public enum Phase: Equatable, Sendable {
        case idle
        case connecting(attempt: Int)
        case greeting
        case loggingIn
        case loggedIn(sessionId: UInt64, epoch: UInt64)
        case waiting(until: MonotonicTime)
        case stopped
    }

    public let configuration: Configuration
    public let username: String
    let password: String
    let clientInstance: String
    /// The two servers: the configured one first, the other learned at login (or configured).
    public private(set) var servers: [Endpoint?]
    /// Which of `servers` the current (or next) attempt goes to.
    public private(set) var current = 0
    public private(set) var phase = Phase.idle
    public private(set) var token: ByteBuffer?
    /// The highest epoch a server logged this client in under.
    public private(set) var epoch: UInt64 = 0
    var attempt = 0
    var failures = 0
    var lastHeard = MonotonicTime.zero
    var connectStarted = MonotonicTime.zero
    var nextHeartbeat: MonotonicTime?
    var heartbeatSequence: UInt32 = 0
    var usingToken = false
    public private(set) var watch = WatchPhase.none
    /// The keys held pressed, in the order pressed.
    public private(set) var pressedKeys: [KeyChange] = []
    var watchGreeted = false
    var watchFailures = 0
    var watchLastHeard = MonotonicTime.zero
    var watchNextHeartbeat = MonotonicTime.zero
    /// A heartbeat sent to the own server after the other announced its activation.
    var probe: Probe?

    /// A heartbeat sent to the own server to learn whether it still answers, and until when
    /// it may take. `epoch` is the other server's activation that started it, or nil for a
    /// takeover warning (the other server does not serve yet: nobody moves on that alone);
    /// `overdue`: a warning's probe whose deadline passed, waiting for the activation.
    struct Probe {
        var sequence: UInt32
        var deadline: MonotonicTime
        var epoch: UInt64?
        var overdue = false
        /// Its deadline was pushed once because a late tick saw it (`lateTickTolerance`).
        var rechecked = false
    }
    /// The server this client last lost a session on, until it logs in somewhere again.
    var lostSessionOn: Endpoint?

    public init(
        servers: [Endpoint], username: String, password: String, clientInstance: String, configuration: Configuration = Configuration()
    ) {
        precondition(!servers.isEmpty, "a client needs at least one server address")
        self.servers = [servers[0], servers.count > 1 ? servers[1] : nil]
        self.username = username
        self.password = password
        self.clientInstance = clientInstance
        self.configuration = configuration
    }

    public var server: Endpoint? { servers[current] }
    public var isLoggedIn: Bool { if case .loggedIn = phase { true } else { false } }

    /// When `.tick` must next be delivered.
    public var nextDeadline: MonotonicTime? {
        let session: MonotonicTime? =
            switch phase {
            case .loggedIn: nextHeartbeat.earliest(lastHeard + configuration.timeout)
            case .waiting(let until): until
            case .greeting, .loggingIn: lastHeard + configuration.timeout
            case .connecting: connectStarted + configuration.connectDeadline
            case .idle, .stopped: nil
            }
        let watching: MonotonicTime? =
            switch watch {
            case .open: watchNextHeartbeat
            case .waiting(let until): until
            default: nil
            }
        return session.earliest(watching).earliest(probe.flatMap { $0.overdue ? nil : $0.deadline })
    }

    public mutating func handle(_ event: Event, at now: MonotonicTime, random: inout some RandomNumberGenerator) -> [Action] {
        switch event {
        case .watchConnected, .watchConnectFailed, .watchReceived, .watchClosed:
            return handleWatch(event, at: now, random: &random)
        case .tick:
            return handleSession(.tick, at: now, random: &random) + watchTick(at: now, random: &random)
        default:
            return handleSession(event, at: now, random: &random)
        }
    }

    private mutating func handleSession(_ event: Event, at now: MonotonicTime, random: inout some RandomNumberGenerator) -> [Action] {
        switch (phase, event) {
        case (.idle, .start):
            return connect(at: now)
        case (.stopped, .stop):
            return []
        case (_, .stop):
            let wasLoggedIn = isLoggedIn
            phase = .stopped
            probe = nil
            return (wasLoggedIn ? [.send(.logout), .leave] : [.close]) + dropWatch() + [.emit(.stopped(reason: "stopped by the program"))]
        case (.connecting(let expected), .connected(let attempt)) where attempt == expected:
            phase = .greeting
            lastHeard = now
            // The login goes right behind the hello, not after the server's: one round trip
            // less per client, and after a failover every client of the pair makes it at once.
            return [.send(.hello(Hello(nodeId: clientInstance, software: "vcom-client"))), .send(.login(login())), .emit(.connecting(server!))]
        case (.connecting(let expected), .connectFailed(let attempt, _)) where attempt == expected:
            return retry(at: now, random: &random)
        case (_, .keyChanged(let change)):
            var held = KeyChange(action: change.action, target: change.target, pressed: true)
            pressedKeys.removeAll { $0 == held }
            if change.pressed {
                guard pressedKeys.count < 64 else { return [] }  // a panel has 64 keys
                pressedKeys.append(held)
            }
            held.pressed = change.pressed
            return isLoggedIn ? [.send(.keyChange(held))] : []
        case (.greeting, .received(.hello)):
            phase = .loggingIn
            lastHeard = now
            return []
        case (.loggingIn, .received(.loginAccepted(let accepted))):
            return loggedIn(accepted, at: now, random: &random)
        case (.loggingIn, .received(.loginRefused(let refused))):
            return refusedLogin(refused, at: now, random: &random)
        case (.loggedIn, .received(.heartbeat(let beat))):
            lastHeard = now
            if let probe, beat.sequence >= probe.sequence { self.probe = nil }  // still served here: stay
            return []
        case (.loggedIn, .received(.media(let frame))):
            lastHeard = now
            return [.emit(.media(frame))]
        case (.loggedIn, .received(.redirect(let redirect))), (.loggingIn, .received(.redirect(let redirect))):
            let from = server!
            let other = 1 - current
            servers[other] = redirect.target
            current = other
            failures = 0
            probe = nil
            let moved: [Action] = [.close, .emit(.redirected(from: from, to: redirect.target, reason: redirect.reason))]
            if case .open(_, let to) = watch, to == redirect.target { return moved + adoptWatch(at: now) }
            return moved + dropWatch() + connect(at: now)
        case (.loggedIn, .received(.goodbye(let goodbye))), (.greeting, .received(.goodbye(let goodbye))),
            (.loggingIn, .received(.goodbye(let goodbye))):
            return lost(at: now, reason: "the server said goodbye: \(goodbye.reason): \(goodbye.detail)", random: &random)
        case (.loggedIn, .closed(let reason)), (.greeting, .closed(let reason)), (.loggingIn, .closed(let reason)):
            return lost(at: now, reason: reason, random: &random)
        case (.loggedIn, .tick):
            if let probe, now >= probe.deadline, !probe.overdue {
                if !probe.rechecked, now - probe.deadline > configuration.lateTickTolerance {
                    // Chaos split rounds: clients left a primary that served them, their answer
                    // unread when a tick 160-300 ms late found the deadline passed.
                    self.probe?.rechecked = true
                    self.probe?.deadline = now + configuration.lateTickTolerance / 2
                } else if let epoch = probe.epoch {
                    self.probe = nil
                    return [.abandon] + lostToSilence(epoch: epoch, at: now, random: &random)
                } else {
                    self.probe?.overdue = true  // a warning's: the move waits for the activation
                }
            }
            if now >= lastHeard + configuration.timeout {
                return [.close] + lost(at: now, reason: "no heartbeat from the server for \(configuration.timeout)", random: &random)
            }
            guard let due = nextHeartbeat, now >= due else { return [] }
            heartbeatSequence &+= 1
            nextHeartbeat = now + configuration.heartbeatInterval
            return [.send(.heartbeat(Heartbeat(sequence: heartbeatSequence)))]
        case (.greeting, .tick), (.loggingIn, .tick):
            guard now >= lastHeard + configuration.timeout else { return [] }
            return [.close] + lost(at: now, reason: "the server did not answer in time", random: &random)
        case (.waiting(let until), .tick) where now >= until:
            return connect(at: now)
        case (.connecting, .tick) where now >= connectStarted + configuration.connectDeadline:
            // Its completion, if it ever comes, carries an attempt number no longer awaited.
            return retry(at: now, random: &random)
        default:
            return []
        }
    }

    private mutating func login() -> LoginRequest {
        usingToken = token != nil
        let credential: Credential = token.map { .sessionToken($0) } ?? .password(password)
        return LoginRequest(username: username, credential: credential, clientInstance: clientInstance, pressedKeys: pressedKeys)
    }

    private mutating func connect(at now: MonotonicTime) -> [Action] {
        guard let target = servers[current] else {
            current = 0
            return connect(at: now)
        }
        attempt += 1
        phase = .connecting(attempt: attempt)
        connectStarted = now
        return [.connect(target, attempt: attempt)]
    }

    private mutating func loggedIn(_ accepted: LoginAccepted, at now: MonotonicTime, random: inout some RandomNumberGenerator) -> [Action] {
        phase = .loggedIn(sessionId: accepted.sessionId, epoch: accepted.epoch)
        token = accepted.sessionToken
        epoch = max(epoch, accepted.epoch)
        if let alternate = accepted.alternateServer { servers[1 - current] = alternate }
        // Here after losing a session on the other server: it is unlikely to be back within
        // seconds. (Not merely after failed attempts: a first login that needed a retry in a
        // busy start-up would otherwise leave its client without a watch for a minute.)
        let otherFailed = lostSessionOn != nil && lostSessionOn == servers[1 - current]
        lostSessionOn = nil
        failures = 0
        lastHeard = now
        let interval = Duration.milliseconds(Int64(accepted.heartbeatIntervalMs))
        nextHeartbeat = now + (accepted.heartbeatIntervalMs > 0 ? min(interval, configuration.heartbeatInterval) : configuration.heartbeatInterval)
        probe = nil
        return [.emit(.loggedIn(server: server!, role: accepted.serverRole, epoch: accepted.epoch, sessionId: accepted.sessionId))]
            + startWatch(at: now, afterFailure: otherFailed, random: &random)
    }

    private mutating func refusedLogin(_ refused: LoginRefused, at now: MonotonicTime, random: inout some RandomNumberGenerator) -> [Action] {
        let at = server!
        var actions: [Action] = [.close, .emit(.refused(server: at, reason: refused.reason, detail: refused.detail))]
        switch refused.reason {
        case .notActiveServer:
            if let alternate = refused.alternateServer { servers[1 - current] = alternate }
            return actions + retry(at: now, random: &random)
        case .tokenExpired, .badCredentials where usingToken:
            // The token is no good here: the password still is.
            token = nil
            return actions + connect(at: now)
        case .badCredentials, .accountDisabled, .notAuthorized:
            phase = .stopped
            actions.append(.emit(.stopped(reason: "login refused: \(refused.reason): \(refused.detail)")))
            return actions
        default:
            // Licence limits and the like may clear: keep trying, slowly.
            return actions + retry(at: now, random: &random)
        }
    }

    private mutating func lost(at now: MonotonicTime, reason: String, random: inout some RandomNumberGenerator) -> [Action] {
        let wasLoggedIn = isLoggedIn
        let at = server!
        nextHeartbeat = nil
        probe = nil
        var actions: [Action] = []
        if wasLoggedIn {
            actions.append(.emit(.lost(server: at, reason: reason)))
            failures = 0
            lostSessionOn = at
        }
        // Already connected to the other server: log in there, no new connection.
        if case .open = watch { return actions + adoptWatch(at: now) }
        return actions + retry(at: now, random: &random)
    }

    /// The other server at once after a first failure, then alternating with backoff.
    private mutating func retry(at now: MonotonicTime, random: inout some RandomNumberGenerator) -> [Action] {
        failures += 1
        if servers[1 - current] != nil { current = 1 - current }
        if failures == 1 { return connect(at: now) }
        let doublings = min(failures - 2, 16)
        let base = min(configuration.retryBase * (1 << doublings), configuration.retryMaximum)
        let factor = Double.random(in: (1 - configuration.retryJitter)...(1 + configuration.retryJitter), using: &random)
        let delay = Duration.nanoseconds(Int64(Double(base.nanoseconds) * factor))
        phase = .waiting(until: now + delay)
        return []
    }

    // MARK: The watch connection

    /// After a login: watch the other server, unless already watching it.
    private mutating func startWatch(at now: MonotonicTime, afterFailure: Bool = false, random: inout some RandomNumberGenerator) -> [Action] {
        guard configuration.watchOther, token != nil, let other = servers[1 - current] else { return dropWatch() }
        switch watch {
        case .open(_, let to), .connecting(_, let to):
            if to == other { return [] }
            return dropWatch() + startWatch(at: now, random: &random)
        case .waiting:
            return []  // already due at its time
        case .none:
            // Not at once: after a failover every client of the pair logs in within a second,
            // and its watch would go to the server that just failed (which may still hold its
            // port without answering). A spread start keeps that storm off both sides.
            // Watching the server just lost waits longer still, 15 to 75 s: it is unlikely to be
            // back sooner (and comes back awaiting authorization), and when it hangs rather than
            // dies every watch connect to it waits out its full accept queue. Spread over 10 s,
            // 10,000 clients' watch connects and TLS handshakes to a stopped primary starved
            // the benchmark's simulator until the sessions on the secondary timed out.
            let spread = Double(configuration.watchStartSpread.nanoseconds)
            let delay = afterFailure ? Double.random(in: 15e9...75e9, using: &random) : Double.random(in: 0...spread, using: &random)
            watch = .waiting(until: now + .nanoseconds(Int64(delay)))
            return []
        }
    }

    private mutating func connectWatch(to other: Endpoint) -> [Action] {
        attempt += 1
        watch = .connecting(attempt: attempt, to: other)
        return [.connectWatch(other, attempt: attempt)]
    }

    private mutating func dropWatch() -> [Action] {
        let open: Bool
        switch watch {
        case .open, .connecting: open = true
        default: open = false
        }
        watch = .none
        watchGreeted = false
        return open ? [.closeWatch] : []
    }

    /// The watch connection becomes the session's: a login on it, right away.
    private mutating func adoptWatch(at now: MonotonicTime) -> [Action] {
        guard case .open(let watchAttempt, let to) = watch else { return [] }
        if servers[1 - current] == to { current = 1 - current }
        servers[current] = to
        attempt = max(attempt, watchAttempt)
        failures = 1
        lastHeard = now
        phase = watchGreeted ? .loggingIn : .greeting
        watch = .none
        watchGreeted = false
        return [.adoptWatch, .send(.login(login())), .emit(.connecting(to))]
    }

    private mutating func handleWatch(_ event: Event, at now: MonotonicTime, random: inout some RandomNumberGenerator) -> [Action] {
        switch (watch, event) {
        case (.connecting(let expected, let to), .watchConnected(let attempt)) where attempt == expected:
            guard let token else { return dropWatch() }
            watch = .open(attempt: attempt, to: to)
            watchGreeted = false
            watchLastHeard = now
            watchNextHeartbeat = now + configuration.watchHeartbeatInterval
            return [
                .sendWatch(.hello(Hello(nodeId: clientInstance, software: "vcom-client"))),
                .sendWatch(.watch(Watch(sessionToken: token, epoch: epoch, wantsWarnings: true))),
            ]
        case (.connecting(let expected, _), .watchConnectFailed(let attempt)) where attempt == expected:
            return watchRetry(at: now, random: &random)
        case (.open, .watchClosed):
            watchGreeted = false
            return watchRetry(at: now, random: &random)
        case (.open, .watchReceived(let message)):
            watchLastHeard = now
            switch message {
            case .hello:
                watchGreeted = true
                return []
            case .heartbeat:
                watchFailures = 0
                return []
            case .activated(let announced):
                return otherActivated(announced.epoch, at: now, random: &random)
            case .takeoverWarning:
                return takeoverWarned(at: now)
            default:
                // A goodbye (a bad token, a server going down) or anything unexpected.
                return [.closeWatch] + watchRetry(at: now, random: &random)
            }
        default:
            return []
        }
    }

    /// The other server serves now. Logged in here: ask this server whether it is still there
    /// (a heartbeat) and move only if it does not answer in time; a split where this server
    /// still serves its clients moves nobody. Not logged in anywhere: go there at once.
    ///
    /// A probe started by a takeover warning counts: still unanswered after the probe timeout,
    /// the client moves as soon as the activation comes; answered, the activation starts a
    /// new one (the server answered before the activation, which says nothing about after).
    private mutating func otherActivated(_ announced: UInt64, at now: MonotonicTime, random: inout some RandomNumberGenerator) -> [Action] {
        switch phase {
        case .loggedIn(_, let sessionEpoch):
            guard announced > sessionEpoch else { return [] }
            if var warned = probe {
                guard warned.epoch == nil else { return [] }  // already probing for an activation
                // Overdue once a tick saw its deadline pass; a deadline passed with no tick yet
                // is this loop running behind, with the answer perhaps unread: the tick decides.
                if warned.overdue {
                    probe = nil
                    return [.abandon] + lostToSilence(epoch: announced, at: now, random: &random)
                }
                warned.epoch = announced
                probe = warned
                return []
            }
            heartbeatSequence &+= 1
            probe = Probe(sequence: heartbeatSequence, deadline: now + configuration.probeTimeout, epoch: announced)
            return [.send(.heartbeat(Heartbeat(sequence: heartbeatSequence)))]
        case .waiting, .connecting:
            return [.close] + adoptWatch(at: now)
        default:
            return []
        }
    }

    /// The other server warned that it may take over: probe the own server now. Nothing
    /// else changes; the answer is read when (if) the activation comes.
    private mutating func takeoverWarned(at now: MonotonicTime) -> [Action] {
        guard case .loggedIn = phase, probe == nil else { return [] }
        heartbeatSequence &+= 1
        probe = Probe(sequence: heartbeatSequence, deadline: now + configuration.probeTimeout, epoch: nil)
        return [.send(.heartbeat(Heartbeat(sequence: heartbeatSequence)))]
    }

    /// The other server serves under `epoch` and this one has not answered a probe within
    /// the probe timeout.
    private mutating func lostToSilence(epoch: UInt64, at now: MonotonicTime, random: inout some RandomNumberGenerator) -> [Action] {
        lost(at: now, reason: "the other server serves under epoch \(epoch) and this one did not answer within \(configuration.probeTimeout)", random: &random)
    }

    private mutating func watchRetry(at now: MonotonicTime, random: inout some RandomNumberGenerator) -> [Action] {
        watchFailures += 1
        let doublings = min(watchFailures - 1, 5)
        let base = min(Duration.seconds(1) * (1 << doublings), .seconds(30))
        let factor = Double.random(in: 0.8...1.2, using: &random)
        watch = .waiting(until: now + .nanoseconds(Int64(Double(base.nanoseconds) * factor)))
        return []
    }

    private mutating func watchTick(at now: MonotonicTime, random: inout some RandomNumberGenerator) -> [Action] {
        switch watch {
        case .waiting(let until) where now >= until:
            watch = .none
            guard isLoggedIn, configuration.watchOther, token != nil, let other = servers[1 - current] else { return [] }
            return connectWatch(to: other)
        case .open:
            if now >= watchLastHeard + configuration.watchHeartbeatInterval * 3 {
                return [.closeWatch] + watchRetry(at: now, random: &random)
            }
            guard now >= watchNextHeartbeat else { return [] }
            watchNextHeartbeat = now + configuration.watchHeartbeatInterval
            heartbeatSequence &+= 1
            return [.sendWatch(.heartbeat(Heartbeat(sequence: heartbeatSequence)))]
        default:
            return []
        }
    }
}
