import ConfigStore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Wire

/// The client port's logic shared by every session: login, keys, media relay. Thread-safe;
/// each session calls it from its own event loop. What the control loop must know (a client
/// joined, left, or was lost) is handed to it through `events`.
final class ClientService: Sendable {
    struct Events: Sendable {
        var joined: @Sendable () -> Void
        var left: @Sendable () -> Void
        var lost: @Sendable () -> Void
    }

    let gate: AdmissionGate
    let registry = SessionRegistry()
    let router = MediaRouter()
    let sweepers = IdleSweepers()
    let mediaCodec = FrameCodec<ClientMessage>(configuration: .client)
    let tokens: SessionTokens
    let verified = VerifiedPasswords()
    let store: any ConfigurationStoring
    /// scrypt runs here, never on an event loop: one verification costs about 56 ms.
    let hashing: NIOThreadPool
    let events: Events
    let clock: any RuntimeClock
    let metrics: RuntimeMetrics
    let logger: Logger
    let heartbeatInterval: Duration
    let serverId: String
    /// How long a login waits on a standby that is taking over (see `AdmissionGate.Serving`).
    let loginHold: Duration
    /// A session that says nothing for this long is lost (the client's heartbeat timing).
    let sessionTimeout: Duration
    /// Logins waiting for the takeover; at most `maxHeld`, the rest are refused as before.
    private let held = NIOLockedValueBox<(next: UInt64, waiting: [UInt64: EventLoopPromise<Void>])>((0, [:]))
    static let maxHeld = 50_000

    init(
        gate: AdmissionGate, tokens: SessionTokens, store: any ConfigurationStoring, hashing: NIOThreadPool, events: Events,
        clock: any RuntimeClock, metrics: RuntimeMetrics, logger: Logger, heartbeatInterval: Duration, serverId: String,
        loginHold: Duration = .zero, sessionTimeout: Duration? = nil
    ) {
        self.loginHold = loginHold
        self.sessionTimeout = sessionTimeout ?? heartbeatInterval * 3
        self.gate = gate
        self.tokens = tokens
        self.store = store
        self.hashing = hashing
        self.events = events
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
        self.heartbeatInterval = heartbeatInterval
        self.serverId = serverId
    }

    enum LoginOutcome: Sendable {
        case accepted(LoginAccepted, ClientSessionRef)
        case refused(LoginRefused)
    }

    /// Checks a login: the server serves, the credential is good, the operator may log in,
    /// the licence has a seat. The seat is taken only on success.
    func login(_ request: LoginRequest, outlet: MediaOutlet, held: Bool = false) -> EventLoopFuture<LoginOutcome> {
        let loop = outlet.channel.eventLoop
        let serving = gate.serving
        if !serving.active, serving.takingOver, !held, let wait = hold(on: loop) {
            return wait.flatMap { self.login(request, outlet: outlet, held: true) }
        }
        guard serving.active else {
            return loop.makeSucceededFuture(
                refuse(.notActiveServer, "this server is not the active server; try the other server", serving: serving, alternate: true))
        }
        let configuration = store.configuration
        let now = clock.wallNow
        switch request.credential {
        case .sessionToken(let token):
            switch tokens.verify(token, at: now) {
            case .failure(.expired):
                return loop.makeSucceededFuture(refuse(.tokenExpired, "the session token expired; log in with the password", serving: serving))
            case .failure:
                return loop.makeSucceededFuture(refuse(.badCredentials, "the session token is not valid", serving: serving))
            case .success(let claims):
                guard let account = configuration.operator(claims.username), nameKey(account.username) == nameKey(request.username),
                    SessionTokens.stamp(ofPasswordHash: account.passwordHash) == claims.credentialStamp
                else {
                    return loop.makeSucceededFuture(refuse(.badCredentials, "the session token is not valid any more", serving: serving))
                }
                return loop.makeSucceededFuture(admit(account, outlet: outlet, withToken: true))
            }
        case .password(let password):
            let account = configuration.operator(request.username)
            // An unknown user costs the same scrypt as a known one: timing tells nothing.
            let stored = account?.passwordHash ?? Self.decoyHash
            return verified.verify(password, against: stored, at: now, pool: hashing, on: loop).map { matches in
                guard let account, matches else { return self.refuse(.badCredentials, "wrong username or password", serving: serving) }
                return self.admit(account, outlet: outlet, withToken: false)
            }
        }
    }

    /// Waits (at most `loginHold`) for the control loop to publish a new serving state. The
    /// clients of a server that just died arrive here within milliseconds, before the peer
    /// timeout has made this server active; refused, each would retry with backoff and come
    /// back hundreds of milliseconds after the activation. Nil when holding is off or full.
    private func hold(on loop: EventLoop) -> EventLoopFuture<Void>? {
        guard loginHold > .zero else { return nil }
        let promise = loop.makePromise(of: Void.self)
        let id = held.withLockedValue { held -> UInt64? in
            guard held.waiting.count < Self.maxHeld else { return nil }
            held.next &+= 1
            held.waiting[held.next] = promise
            return held.next
        }
        guard let id else {
            promise.succeed()  // never handed out: completed so NIO does not report it leaked
            return nil
        }
        loop.scheduleTask(in: .nanoseconds(loginHold.nanoseconds)) {
            // Whoever takes the promise out of the table completes it, exactly once.
            if let promise = self.held.withLockedValue({ $0.waiting.removeValue(forKey: id) }) { promise.succeed() }
        }
        return promise.futureResult
    }

    /// The control loop published a new state: held logins go on (admitted if this server
    /// serves now, refused otherwise) unless it is still taking over.
    func servingChanged() {
        let serving = gate.serving
        guard serving.active || !serving.takingOver else { return }
        let waiting = held.withLockedValue { held in
            defer { held.waiting.removeAll() }
            return Array(held.waiting.values)
        }
        for promise in waiting { promise.succeed() }
    }

    // MARK: Watchers

    /// A watcher that says nothing for this long is dropped (clients send a heartbeat every
    /// 10 s on a watch connection).
    static let watchTimeout: Duration = .seconds(30)
    private let watchers = NIOLockedValueBox<(outlets: [ObjectIdentifier: MediaOutlet], announced: UInt64?)>(([:], nil))
    private let watcherCodec = FrameCodec<ClientMessage>(configuration: .client)

    /// A client of the other server asks to hear of this one's activation. Nil when its token
    /// is not one of this pair's; otherwise the epoch to announce at once if this server
    /// already serves.
    func watch(_ request: Watch, outlet: MediaOutlet) -> UInt64?? {
        guard case .success = tokens.verify(request.sessionToken, at: clock.wallNow) else { return nil }
        let (announced, count) = watchers.withLockedValue { watchers in
            watchers.outlets[ObjectIdentifier(outlet.channel)] = outlet
            return (watchers.announced, watchers.outlets.count)
        }
        metrics.watchers(count)
        return .some(announced)
    }

    func unwatch(_ channel: Channel) {
        let count = watchers.withLockedValue { watchers in
            watchers.outlets.removeValue(forKey: ObjectIdentifier(channel))
            return watchers.outlets.count
        }
        metrics.watchers(count)
    }

    var watcherCount: Int { watchers.withLockedValue { $0.outlets.count } }

    /// The control loop saw this server become active (`epoch`) or stop serving (nil): every
    /// watcher hears of an activation once, framed once for all of them.
    func announce(activeEpoch epoch: UInt64?, from loop: EventLoop) {
        let outlets = watchers.withLockedValue { watchers -> [MediaOutlet] in
            guard watchers.announced != epoch else { return [] }
            watchers.announced = epoch
            return epoch == nil ? [] : Array(watchers.outlets.values)
        }
        guard let epoch, !outlets.isEmpty else { return }
        var bytes = ByteBuffer()
        guard (try? watcherCodec.encode(.activated(Activated(epoch: epoch)), into: &bytes)) != nil else { return }
        logger.info("telling \(outlets.count) watching clients that this server serves (epoch \(epoch))")
        MediaRouter.send(bytes, to: outlets, from: loop)
    }

    /// A well-formed hash of a random password, for unknown users.
    static let decoyHash = (try? PasswordHasher().hash(UUID().uuidString)) ?? ""

    private func admit(_ account: Operator, outlet: MediaOutlet, withToken: Bool) -> LoginOutcome {
        guard account.enabled else {
            return refuse(.accountDisabled, "operator '\(account.username)' is disabled", serving: gate.serving)
        }
        switch gate.admit(at: clock.wallNow) {
        case .refused(let reason, let detail, let alternate, let epoch):
            metrics.loginRefused(reason)
            return .refused(LoginRefused(reason: reason, detail: detail, alternateServer: alternate, epoch: epoch))
        case .admitted(let epoch, let warning):
            if let warning { warnOnce(warning) }
            let session = ClientSessionRef(id: registry.makeId(), username: account.username, operatorId: account.id, channel: outlet.channel, loggedInAt: clock.wallNow)
            registry.add(session)
            router.joined(session: session.id, operatorId: account.id, outlet: outlet)
            metrics.loginAccepted(withToken: withToken)
            events.joined()
            let token = tokens.issue(username: account.username, passwordHash: account.passwordHash, epoch: epoch, at: clock.wallNow)
            let serving = gate.serving
            return .accepted(
                LoginAccepted(
                    sessionId: session.id, epoch: epoch, serverRole: serving.role, alternateServer: serving.alternate,
                    sessionToken: token, heartbeatIntervalMs: UInt32(clamping: heartbeatInterval.milliseconds)),
                session)
        }
    }

    private let lastWarning = NIOLockedValueBox<(text: String, at: Date)?>(nil)

    /// The licence's expiry warning reaches every login reply, but the log once an hour: a
    /// line per login would be 10,000 lines in the seconds after a failover.
    private func warnOnce(_ warning: String) {
        let now = clock.wallNow
        let due = lastWarning.withLockedValue { last in
            guard last == nil || last!.text != warning || now.timeIntervalSince(last!.at) >= 3600 else { return false }
            last = (warning, now)
            return true
        }
        if due { logger.warning("\(warning)") }
    }

    private func refuse(_ reason: RefusalReason, _ detail: String, serving: AdmissionGate.Serving, alternate: Bool = false) -> LoginOutcome {
        metrics.loginRefused(reason)
        return .refused(LoginRefused(reason: reason, detail: detail, alternateServer: alternate ? serving.alternate : nil, epoch: serving.epoch))
    }

    /// A session ended. `lost`: it dropped or went silent (the census counts it); otherwise it
    /// left on purpose (logout, redirect, shutdown).
    func ended(_ session: ClientSessionRef, lost: Bool) {
        registry.remove(session.id)
        router.left(session: session.id, operatorId: session.operatorId)
        gate.release()
        if lost { events.lost() } else { events.left() }
    }

    /// Whether the operator's panel has a key allowing this press (talk or listen to a party
    /// line, talk to a user). A key the configuration does not give is ignored. Walks the
    /// operator's own keys (at most 64) and looks each target up by name: no scan of the
    /// configuration, whose tables are keyed by name (10,000 panels pressing their listen key
    /// after a failover must not each walk 10,000 operators).
    func allows(_ change: KeyChange, username: String) -> Bool {
        guard change.pressed else { return true }
        let configuration = store.configuration
        let keys = configuration.keys(of: username)
        switch change.target {
        case .partyLine(let id):
            return keys.contains { key in
                guard case .partyLine(let name) = key.target, change.action == .talk ? key.talk : key.listen else { return false }
                return configuration.partyLine(name)?.id == id
            }
        case .user(let id):
            guard change.action == .talk else { return false }
            return keys.contains { key in
                guard case .operator(let name) = key.target, key.talk else { return false }
                return configuration.operator(name)?.id == id
            }
        }
    }
}
