import ConfigModel
import ConfigStore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PairModel
import Wire

/// The client port's logic shared by every session: login, keys, media relay. Thread-safe;
/// each session calls it from its own event loop. What the control loop must know (a client
/// joined, left, or was lost; a session to revoke) is handed to it through `events`.
final class ClientService: Sendable {
    struct Events: Sendable {
        var joined: @Sendable () -> Void
        var left: @Sendable () -> Void
        var lost: @Sendable () -> Void
        /// A session's token chain must stop logging in, on both servers (a logout, a kick):
        /// written to the configuration by the control loop; the future completes once written.
        var revoke: @Sendable (RevokedSession) -> EventLoopFuture<Void>?
    }

    let gate: AdmissionGate
    let registry = SessionRegistry()
    let router = MediaRouter()
    let sweepers = IdleSweepers()
    let mediaCodec = FrameCodec<ClientMessage>(configuration: .client)
    let tokens: SessionTokens
    let verified = VerifiedPasswords()
    let store: any ConfigurationStoring
    /// scrypt runs there, never on an event loop: one verification costs about 56 ms.
    let passwordChecks: PasswordChecks
    /// Failed password checks per (operator, source) and per source.
    private let throttle: NIOLockedValueBox<LoginThrottle>
    let refusals: RefusalLog?
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
        gate: AdmissionGate, tokens: SessionTokens, store: any ConfigurationStoring, passwordChecks: PasswordChecks,
        throttle: LoginThrottle.Rules = LoginThrottle.Rules(), refusals: RefusalLog? = nil, events: Events,
        clock: any RuntimeClock, metrics: RuntimeMetrics, logger: Logger, heartbeatInterval: Duration, serverId: String,
        loginHold: Duration = .zero, sessionTimeout: Duration? = nil
    ) {
        self.loginHold = loginHold
        self.sessionTimeout = sessionTimeout ?? heartbeatInterval * 3
        self.gate = gate
        self.tokens = tokens
        self.store = store
        self.passwordChecks = passwordChecks
        self.throttle = NIOLockedValueBox(LoginThrottle(rules: throttle))
        self.refusals = refusals
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
    /// the licence has a seat. The seat is taken only on success. `source` is the client's
    /// address as the throttles count it (`sourceKey`).
    func login(_ request: LoginRequest, outlet: MediaOutlet, source: String, held: Bool = false) -> EventLoopFuture<LoginOutcome> {
        let loop = outlet.channel.eventLoop
        let serving = gate.serving
        let serves = serving.serves(at: clock.now)
        if !serves, serving.takingOver, !held, let wait = hold(on: loop, for: serving.takeoverHold ?? loginHold) {
            return wait.flatMap { self.login(request, outlet: outlet, source: source, held: true) }
        }
        guard serves else {
            return loop.makeSucceededFuture(
                refuse(.notActiveServer, "this server is not the active server; try the other server", serving: serving, alternate: true))
        }
        let configuration = store.configuration
        let now = clock.wallNow
        switch request.credential {
        case .sessionToken(let token):
            switch tokenStanding(token, username: request.username, in: configuration, at: now) {
            case .refused(let reason, let detail):
                return loop.makeSucceededFuture(refuse(reason, detail, serving: serving))
            case .valid(let account, let claims):
                return loop.makeSucceededFuture(admit(account, outlet: outlet, chain: claims.chain, withToken: true))
            }
        case .password(let password):
            if let wait = throttle.withLockedValue({ $0.refusal(account: request.username, source: source, at: now) }) {
                return loop.makeSucceededFuture(
                    refuse(
                        .tooManyAttempts, "too many failed logins for this operator from this address; try again in \(Int(wait.rounded(.up))) s",
                        serving: serving))
            }
            let account = configuration.operator(request.username)
            // An unknown user costs the same scrypt as a known one: timing tells nothing.
            let stored = account?.passwordHash ?? Self.decoyHash
            let channel = outlet.channel
            let checks = passwordChecks
            let check = verified.verify(password, against: stored, at: now, on: loop) { work in
                checks.submit(source: source, on: loop, wanted: { channel.isActive }, work: work)
            }
            guard let check else {
                return loop.makeSucceededFuture(
                    refuse(.busy, "too many password checks are waiting (from this address, or in all); retry in a moment", serving: serving))
            }
            let username = request.username
            return check.map { matches -> LoginOutcome in
                guard let account, matches else {
                    let locked = self.throttle.withLockedValue { $0.failed(account: username, source: source, at: self.clock.wallNow) }
                    if locked {
                        self.refusals?.refused(
                            port: "client", source: source, reason: "login_throttled",
                            detail: "failed logins (the last for '\(username.prefix(64))'): further password logins from this address are refused for a while")
                    }
                    return self.refuse(.badCredentials, "wrong username or password", serving: serving)
                }
                self.throttle.withLockedValue { $0.succeeded(account: username, source: source) }
                return self.admit(account, outlet: outlet, chain: self.tokens.newChain(at: self.clock.wallNow), withToken: false)
            }.flatMapErrorThrowing { error in
                guard error is PasswordChecks.Dropped else { throw error }
                return self.refuse(.busy, "the password check was dropped; retry", serving: serving)
            }
        }
    }

    enum TokenStanding {
        case valid(Operator, SessionTokens.Claims)
        case refused(RefusalReason, String)
    }

    /// Whether a token still logs in (or watches): signed by the pair, not expired, of this
    /// operator, with the password it was issued under, not revoked, the operator enabled.
    func tokenStanding(_ token: ByteBuffer, username: String?, in configuration: SystemConfiguration, at now: Date) -> TokenStanding {
        switch tokens.verify(token, at: now) {
        case .failure(.expired):
            return .refused(.tokenExpired, "the session token expired; log in with the password")
        case .failure:
            return .refused(.badCredentials, "the session token is not valid")
        case .success(let claims):
            guard let account = configuration.operator(claims.username), username.map({ nameKey($0) == nameKey(account.username) }) ?? true,
                SessionTokens.stamp(ofPasswordHash: account.passwordHash) == claims.credentialStamp
            else {
                return .refused(.badCredentials, "the session token is not valid any more")
            }
            guard account.enabled else { return .refused(.accountDisabled, "operator '\(account.username)' is disabled") }
            if configuration.isRevoked(username: account.username, issuedAtMs: claims.issuedAtMs) {
                return .refused(.badCredentials, "the session token was revoked (a logout, or ended by an administrator)")
            }
            return .valid(account, claims)
        }
    }

    /// Waits (at most `duration`: `loginHold`, or the witness's wait) for the control loop to
    /// publish a new serving state. The clients of a server that just died arrive here within
    /// milliseconds, before the peer timeout has made this server active; refused, each would
    /// retry with backoff and come back hundreds of milliseconds after the activation. Nil when
    /// holding is off or full.
    private func hold(on loop: EventLoop, for duration: Duration) -> EventLoopFuture<Void>? {
        guard loginHold > .zero, duration > .zero else { return nil }
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
        loop.scheduleTask(in: .nanoseconds(duration.nanoseconds)) {
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
    /// Watch connections per token chain (one client instance): its watch, and a newer one
    /// that replaces it after a reconnect. A third evicts the oldest.
    static let watchesPerChain = 2
    private struct Watchers {
        var outlets: [ObjectIdentifier: (outlet: MediaOutlet, chain: String, wantsWarnings: Bool)] = [:]
        /// Per chain, its watch connections, oldest first.
        var byChain: [String: [ObjectIdentifier]] = [:]
        var announced: UInt64?
    }

    private let watchers = NIOLockedValueBox(Watchers())
    private let watcherCodec = FrameCodec<ClientMessage>(configuration: .client)

    enum WatchOutcome {
        /// Watching; the epoch to announce at once if this server already serves.
        case watching(announce: UInt64?)
        case refused(String)
    }

    /// A client of the other server asks to hear of this one's activation. Its token must
    /// still log in (signed by this pair, not revoked, the operator enabled); a chain holds at
    /// most `watchesPerChain` watches, the oldest giving way.
    func watch(_ request: Watch, outlet: MediaOutlet) -> WatchOutcome {
        guard case .valid(let account, let claims) = tokenStanding(request.sessionToken, username: nil, in: store.configuration, at: clock.wallNow)
        else { return .refused("the watch token is not valid") }
        let chain = RevokedSession.key(username: account.username, issuedAtMs: claims.issuedAtMs)
        let id = ObjectIdentifier(outlet.channel)
        let (announced, count, evicted) = watchers.withLockedValue { watchers -> (UInt64?, Int, [MediaOutlet]) in
            watchers.outlets[id] = (outlet, chain, request.wantsWarnings)
            var list = watchers.byChain[chain, default: []].filter { $0 != id } + [id]
            var evicted: [MediaOutlet] = []
            while list.count > Self.watchesPerChain {
                if let old = watchers.outlets.removeValue(forKey: list.removeFirst()) { evicted.append(old.outlet) }
            }
            watchers.byChain[chain] = list
            return (watchers.announced, watchers.outlets.count, evicted)
        }
        for old in evicted {
            ClientSessionRef.end(old.channel, Goodbye(reason: .superseded, detail: "a newer watch connection of this session replaces this one"))
        }
        metrics.watchers(count)
        return .watching(announce: announced)
    }

    func unwatch(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        let count = watchers.withLockedValue { watchers in
            if let removed = watchers.outlets.removeValue(forKey: id) {
                let left = watchers.byChain[removed.chain, default: []].filter { $0 != id }
                watchers.byChain[removed.chain] = left.isEmpty ? nil : left
            }
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
            return epoch == nil ? [] : watchers.outlets.values.map(\.outlet)
        }
        guard let epoch, !outlets.isEmpty else { return }
        var bytes = ByteBuffer()
        guard (try? watcherCodec.encode(.activated(Activated(epoch: epoch)), into: &bytes)) != nil else { return }
        logger.info("telling \(outlets.count) watching clients that this server serves (epoch \(epoch))")
        MediaRouter.send(bytes, to: outlets, from: loop)
    }

    /// The serving peer went quiet and this server would take over if it stays so: the
    /// watchers that understand the warning probe their own server now.
    func warnWatchers(peerEpoch: UInt64, from loop: EventLoop) {
        let outlets = watchers.withLockedValue { watchers in watchers.outlets.values.filter(\.wantsWarnings).map(\.outlet) }
        guard !outlets.isEmpty else { return }
        var bytes = ByteBuffer()
        guard (try? watcherCodec.encode(.takeoverWarning(TakeoverWarning(epoch: peerEpoch)), into: &bytes)) != nil else { return }
        logger.info("peer link late: warning \(outlets.count) watching clients that this server may take over")
        MediaRouter.send(bytes, to: outlets, from: loop)
    }

    // MARK: Revocation

    /// The whole configuration was replaced (a snapshot): every session whose operator is gone
    /// or disabled, or whose chain was revoked, ends.
    func configurationReplaced(_ configuration: SystemConfiguration) {
        for session in registry.all {
            guard let account = configuration.operator(session.username), account.enabled,
                !configuration.isRevoked(username: account.username, issuedAtMs: session.chain.issuedAtMs)
            else {
                session.end(Goodbye(reason: .accessRevoked, detail: "operator '\(session.username)' may no longer log in"))
                continue
            }
        }
    }

    /// A client logged out: its token chain stops logging in, on both servers. The future
    /// completes once that is written (nil: nothing to wait for).
    func loggedOut(_ session: ClientSessionRef) -> EventLoopFuture<Void>? {
        events.revoke(session.revocation(at: clock.wallNow))
    }

    /// The configuration changed (a write here, or records replicated from the peer): the
    /// sessions and watches of an operator disabled or removed, or of a revoked chain, end
    /// now with a goodbye that says why. Not a loss for the census: an administrator did it.
    func configurationChanged(_ changes: [ConfigChange]) {
        var ended: [String: String] = [:]  // operator name key -> why
        var revoked: [String: String] = [:]  // chain key -> operator
        for change in changes {
            switch change {
            case .putOperator(let value) where !value.enabled: ended[nameKey(value.username)] = "operator '\(value.username)' was disabled"
            case .removeOperator(let username): ended[nameKey(username)] = "operator '\(username)' was removed"
            case .revokeSession(let value): revoked[value.key] = value.username
            default: break
            }
        }
        guard !ended.isEmpty || !revoked.isEmpty else { return }
        for session in registry.all {
            let key = nameKey(session.username)
            if let why = ended[key] {
                session.end(Goodbye(reason: .accessRevoked, detail: why))
            } else if revoked[session.chainKey] != nil {
                session.end(Goodbye(reason: .accessRevoked, detail: "this session was ended by an administrator"))
            }
        }
        let watching = watchers.withLockedValue { watchers in
            watchers.outlets.values.filter { entry in
                revoked[entry.chain] != nil || ended[String(entry.chain.split(separator: " ").first ?? "")] != nil
            }.map(\.outlet)
        }
        for outlet in watching {
            ClientSessionRef.end(outlet.channel, Goodbye(reason: .accessRevoked, detail: "this session's token no longer logs in"))
        }
    }

    /// A well-formed hash of a random password, for unknown users.
    static let decoyHash = (try? PasswordHasher().hash(UUID().uuidString)) ?? ""

    /// `chain`: the times of the token chain this login continues (a token login) or starts.
    private func admit(_ account: Operator, outlet: MediaOutlet, chain: SessionTokens.Chain, withToken: Bool) -> LoginOutcome {
        guard account.enabled else {
            return refuse(.accountDisabled, "operator '\(account.username)' is disabled", serving: gate.serving)
        }
        switch gate.admit(at: clock.wallNow, now: clock.now) {
        case .refused(let reason, let detail, let alternate, let epoch):
            metrics.loginRefused(reason)
            return .refused(LoginRefused(reason: reason, detail: detail, alternateServer: alternate, epoch: epoch))
        case .admitted(let epoch, let warning):
            if let warning { warnOnce(warning) }
            let session = ClientSessionRef(
                id: registry.makeId(), username: account.username, operatorId: account.id, channel: outlet.channel, loggedInAt: clock.wallNow,
                chain: chain)
            registry.add(session)
            router.joined(session: session.id, operatorId: account.id, outlet: outlet)
            metrics.loginAccepted(withToken: withToken)
            events.joined()
            let token = tokens.issue(username: account.username, passwordHash: account.passwordHash, epoch: epoch, chain: chain)
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
