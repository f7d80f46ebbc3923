import NIOCore
import PairModel

/// Client ↔ server: login, keys, media, heartbeats and redirection.
public enum ClientMessage: WireMessage {
    case hello(Hello)
    case goodbye(Goodbye)
    case login(LoginRequest)
    case loginAccepted(LoginAccepted)
    case loginRefused(LoginRefused)
    case heartbeat(Heartbeat)
    case keyChange(KeyChange)
    case media(MediaFrame)
    case redirect(Redirect)
    case logout
    case watch(Watch)
    case activated(Activated)
    case takeoverWarning(TakeoverWarning)

    public enum Types {
        public static let login = MessageType(0x0101)
        public static let loginAccepted = MessageType(0x0102)
        public static let loginRefused = MessageType(0x0103)
        public static let heartbeat = MessageType(0x0104)
        public static let keyChange = MessageType(0x0105)
        public static let media = MessageType(0x0106)
        public static let redirect = MessageType(0x0107)
        public static let logout = MessageType(0x0108)
        public static let watch = MessageType(0x0109)
        public static let activated = MessageType(0x010A)
        public static let takeoverWarning = MessageType(0x010B)
    }

    public var messageType: MessageType {
        switch self {
        case .hello: CommonMessageType.hello
        case .goodbye: CommonMessageType.goodbye
        case .login: Types.login
        case .loginAccepted: Types.loginAccepted
        case .loginRefused: Types.loginRefused
        case .heartbeat: Types.heartbeat
        case .keyChange: Types.keyChange
        case .media: Types.media
        case .redirect: Types.redirect
        case .logout: Types.logout
        case .watch: Types.watch
        case .activated: Types.activated
        case .takeoverWarning: Types.takeoverWarning
        }
    }

    public var isCompressible: Bool {
        if case .media = self { return false }
        return true
    }

    public func writePayload(to buffer: inout ByteBuffer) throws(WireError) {
        switch self {
        case .hello(let body): try body.write(to: &buffer)
        case .goodbye(let body): try body.write(to: &buffer)
        case .login(let body): try body.write(to: &buffer)
        case .loginAccepted(let body): try body.write(to: &buffer)
        case .loginRefused(let body): try body.write(to: &buffer)
        case .heartbeat(let body): try body.write(to: &buffer)
        case .keyChange(let body): try body.write(to: &buffer)
        case .media(let body): try body.write(to: &buffer)
        case .redirect(let body): try body.write(to: &buffer)
        case .logout: break
        case .watch(let body): try body.write(to: &buffer)
        case .activated(let body): try body.write(to: &buffer)
        case .takeoverWarning(let body): try body.write(to: &buffer)
        }
    }

    public init(type: MessageType, payload: inout ByteBuffer) throws(WireError) {
        switch type {
        case CommonMessageType.hello: self = .hello(try Hello(wire: &payload))
        case CommonMessageType.goodbye: self = .goodbye(try Goodbye(wire: &payload))
        case Types.login: self = .login(try LoginRequest(wire: &payload))
        case Types.loginAccepted: self = .loginAccepted(try LoginAccepted(wire: &payload))
        case Types.loginRefused: self = .loginRefused(try LoginRefused(wire: &payload))
        case Types.heartbeat: self = .heartbeat(try Heartbeat(wire: &payload))
        case Types.keyChange: self = .keyChange(try KeyChange(wire: &payload))
        case Types.media: self = .media(try MediaFrame(wire: &payload))
        case Types.redirect: self = .redirect(try Redirect(wire: &payload))
        case Types.logout: self = .logout
        case Types.watch: self = .watch(try Watch(wire: &payload))
        case Types.activated: self = .activated(try Activated(wire: &payload))
        case Types.takeoverWarning: self = .takeoverWarning(try TakeoverWarning(wire: &payload))
        default: throw .unknownMessageType(type)
        }
    }
}

/// How a client proves who it is: a password on first login, or the session token from an
/// earlier login so a failover does not make every client pay for a slow password hash.
public enum Credential: Sendable, Equatable {
    case password(String)
    case sessionToken(ByteBuffer)
}

public struct LoginRequest: WireCodable {
    public var username: String
    public var credential: Credential
    /// Identifies one client installation across reconnects (a UUID string in practice).
    public var clientInstance: String
    /// The keys the panel holds pressed, applied as the session starts: after a failover the
    /// panel talks and listens again with its login, not one message later. Appended to the
    /// payload (absent means none), so an older server reads the rest and ignores them.
    public var pressedKeys: [KeyChange]

    public init(username: String, credential: Credential, clientInstance: String, pressedKeys: [KeyChange] = []) {
        self.username = username
        self.credential = credential
        self.clientInstance = clientInstance
        self.pressedKeys = pressedKeys
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        username = try buffer.readWireString("login.username")
        switch try buffer.readWireInteger("login.credentialKind", as: UInt8.self) {
        case 1: credential = .password(try buffer.readWireString("login.password"))
        case 2: credential = .sessionToken(try buffer.readWireBytes("login.sessionToken"))
        case let kind: throw .invalidValue(field: "login.credentialKind", value: UInt64(kind))
        }
        clientInstance = try buffer.readWireString("login.clientInstance")
        pressedKeys = []
        if buffer.readableBytes > 0 {
            let count = try buffer.readWireCount("login.pressedKeys", minimumElementSize: 7)
            guard count <= 64 else { throw .invalidValue(field: "login.pressedKeys", value: UInt64(count)) }
            for _ in 0..<count { pressedKeys.append(try KeyChange(wire: &buffer)) }
        }
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireString(username, field: "login.username")
        switch credential {
        case .password(let password):
            buffer.writeInteger(1 as UInt8)
            try buffer.writeWireString(password, field: "login.password")
        case .sessionToken(let token):
            buffer.writeInteger(2 as UInt8)
            try buffer.writeWireBytes(token, field: "login.sessionToken")
        }
        try buffer.writeWireString(clientInstance, field: "login.clientInstance")
        guard !pressedKeys.isEmpty else { return }
        guard pressedKeys.count <= 64 else { throw .invalidValue(field: "login.pressedKeys", value: UInt64(pressedKeys.count)) }
        try buffer.writeWireCount(pressedKeys.count, field: "login.pressedKeys")
        for key in pressedKeys { try key.write(to: &buffer) }
    }
}

public struct LoginAccepted: WireCodable {
    public var sessionId: UInt64
    /// The accepting server's activation epoch; a client carries it to detect a stale server.
    public var epoch: UInt64
    public var serverRole: ServerRole
    /// Where to go when this server is lost: the secondary, as seen from the primary.
    public var alternateServer: Endpoint?
    /// Lets the client log in again on either server without its password.
    public var sessionToken: ByteBuffer
    public var heartbeatIntervalMs: UInt32

    public init(
        sessionId: UInt64, epoch: UInt64, serverRole: ServerRole, alternateServer: Endpoint?,
        sessionToken: ByteBuffer, heartbeatIntervalMs: UInt32
    ) {
        self.sessionId = sessionId
        self.epoch = epoch
        self.serverRole = serverRole
        self.alternateServer = alternateServer
        self.sessionToken = sessionToken
        self.heartbeatIntervalMs = heartbeatIntervalMs
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        sessionId = try buffer.readWireInteger("loginAccepted.sessionId")
        epoch = try buffer.readWireInteger("loginAccepted.epoch")
        serverRole = try buffer.readWireEnum("loginAccepted.serverRole")
        alternateServer = try buffer.readWireOptional("loginAccepted.alternateServer")
        sessionToken = try buffer.readWireBytes("loginAccepted.sessionToken")
        heartbeatIntervalMs = try buffer.readWireInteger("loginAccepted.heartbeatIntervalMs")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(sessionId)
        buffer.writeInteger(epoch)
        buffer.writeWireEnum(serverRole)
        try buffer.writeWireOptional(alternateServer)
        try buffer.writeWireBytes(sessionToken, field: "loginAccepted.sessionToken")
        buffer.writeInteger(heartbeatIntervalMs)
    }
}

public struct LoginRefused: WireCodable {
    public var reason: RefusalReason
    public var detail: String
    /// For "not the active server": where the active one probably is.
    public var alternateServer: Endpoint?
    public var epoch: UInt64

    public init(reason: RefusalReason, detail: String, alternateServer: Endpoint? = nil, epoch: UInt64) {
        self.reason = reason
        self.detail = detail
        self.alternateServer = alternateServer
        self.epoch = epoch
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        reason = RefusalReason(rawValue: try buffer.readWireInteger("loginRefused.reason"))
        detail = try buffer.readWireString("loginRefused.detail")
        alternateServer = try buffer.readWireOptional("loginRefused.alternateServer")
        epoch = try buffer.readWireInteger("loginRefused.epoch")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(reason.rawValue)
        try buffer.writeWireString(detail, field: "loginRefused.detail")
        try buffer.writeWireOptional(alternateServer)
        buffer.writeInteger(epoch)
    }
}

public struct Heartbeat: WireCodable {
    public var sequence: UInt32

    public init(sequence: UInt32) { self.sequence = sequence }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        sequence = try buffer.readWireInteger("heartbeat.sequence")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(sequence)
    }
}

/// What a panel key is bound to.
public enum KeyTarget: Sendable, Hashable {
    case partyLine(UInt32)
    case user(UInt32)
}

public enum KeyAction: UInt8, Sendable, CaseIterable {
    case talk = 1
    case listen = 2
}

/// A talk or listen key pressed or released.
public struct KeyChange: WireCodable {
    public var action: KeyAction
    public var target: KeyTarget
    public var pressed: Bool

    public init(action: KeyAction, target: KeyTarget, pressed: Bool) {
        self.action = action
        self.target = target
        self.pressed = pressed
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        action = try buffer.readWireEnum("keyChange.action")
        let kind = try buffer.readWireInteger("keyChange.targetKind", as: UInt8.self)
        let id = try buffer.readWireInteger("keyChange.targetId", as: UInt32.self)
        switch kind {
        case 1: target = .partyLine(id)
        case 2: target = .user(id)
        default: throw .invalidValue(field: "keyChange.targetKind", value: UInt64(kind))
        }
        pressed = try buffer.readWireBool("keyChange.pressed")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeWireEnum(action)
        switch target {
        case .partyLine(let id):
            buffer.writeInteger(1 as UInt8)
            buffer.writeInteger(id)
        case .user(let id):
            buffer.writeInteger(2 as UInt8)
            buffer.writeInteger(id)
        }
        buffer.writeWireBool(pressed)
    }
}

/// One packet of encoded audio (20 ms at 50 frames per second). The audio is a slice of
/// the received buffer, so decoding copies nothing; a receiver that keeps it past the read
/// keeps that whole buffer, and copies it first.
public struct MediaFrame: WireCodable {
    public var streamId: UInt32
    public var sequence: UInt32
    /// Sample clock of the first sample, as RTP does.
    public var timestamp: UInt32
    public var audio: ByteBuffer

    public init(streamId: UInt32, sequence: UInt32, timestamp: UInt32, audio: ByteBuffer) {
        self.streamId = streamId
        self.sequence = sequence
        self.timestamp = timestamp
        self.audio = audio
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        streamId = try buffer.readWireInteger("media.streamId")
        sequence = try buffer.readWireInteger("media.sequence")
        timestamp = try buffer.readWireInteger("media.timestamp")
        audio = try buffer.readWireSlice("media.audio")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(streamId)
        buffer.writeInteger(sequence)
        buffer.writeInteger(timestamp)
        try buffer.writeWireBytes(audio, field: "media.audio")
    }
}

/// Tells a logged-in client to move to the other server now, instead of cutting it off.
public struct Redirect: WireCodable {
    public var target: Endpoint
    public var reason: RedirectReason
    /// The epoch under which the target serves (or will serve).
    public var epoch: UInt64

    public init(target: Endpoint, reason: RedirectReason, epoch: UInt64) {
        self.target = target
        self.reason = reason
        self.epoch = epoch
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        target = try Endpoint(wire: &buffer)
        reason = RedirectReason(rawValue: try buffer.readWireInteger("redirect.reason"))
        epoch = try buffer.readWireInteger("redirect.epoch")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try target.write(to: &buffer)
        buffer.writeInteger(reason.rawValue)
        buffer.writeInteger(epoch)
    }
}

/// A client logged in to one server keeps a cheap connection to the other, to hear at once
/// when that one activates. The token is the session token from the server it is logged in to
/// (both servers verify tokens); `epoch` is the highest epoch the client has seen.
public struct Watch: WireCodable {
    public var sessionToken: ByteBuffer
    public var epoch: UInt64
    /// The watcher understands `takeoverWarning`. Appended to the payload (absent means no):
    /// an older server reads the rest and ignores it, and an older client is never sent a
    /// message it would take for a protocol error.
    public var wantsWarnings: Bool

    public init(sessionToken: ByteBuffer, epoch: UInt64, wantsWarnings: Bool = false) {
        self.sessionToken = sessionToken
        self.epoch = epoch
        self.wantsWarnings = wantsWarnings
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        sessionToken = try buffer.readWireBytes("watch.sessionToken")
        epoch = try buffer.readWireInteger("watch.epoch")
        wantsWarnings = buffer.readableBytes > 0 ? try buffer.readWireInteger("watch.wantsWarnings") as UInt8 != 0 : false
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireBytes(sessionToken, field: "watch.sessionToken")
        buffer.writeInteger(epoch)
        if wantsWarnings { buffer.writeInteger(UInt8(1)) }
    }
}

/// Sent to the watchers that asked for it when this server stops hearing its serving peer
/// (the peer link is late, not yet lost) and would take over if the silence lasts: each
/// watcher checks its own server now, so that when the activation comes the answer (or its
/// absence) is already known. Nobody moves on a warning alone. `epoch`: the epoch this
/// server knows the peer serves under.
public struct TakeoverWarning: WireCodable {
    public var epoch: UInt64

    public init(epoch: UInt64) { self.epoch = epoch }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        epoch = try buffer.readWireInteger("takeoverWarning.epoch")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(epoch)
    }
}

/// Sent on every watch connection when the server activates (and at once to a new watcher of
/// a server that is already active): the watcher checks its own server and moves if that one
/// does not answer.
public struct Activated: WireCodable {
    public var epoch: UInt64

    public init(epoch: UInt64) { self.epoch = epoch }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        epoch = try buffer.readWireInteger("activated.epoch")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(epoch)
    }
}
