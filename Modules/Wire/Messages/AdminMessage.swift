import NIOCore
import PairModel

/// Admin tool ↔ server: an authenticated session of numbered requests and replies. The
/// request and reply bodies belong to the AdminProtocol module, encoded with the same
/// field primitives; Wire only frames them.
public enum AdminMessage: WireMessage {
    case hello(Hello)
    case goodbye(Goodbye)
    /// SCRAM-SHA-256 (RFC 5802, RFC 7677): the password never crosses the wire.
    case authStart(AdminAuthStart)
    case authChallenge(AdminAuthChallenge)
    case authProof(AdminAuthProof)
    case loginAccepted(AdminLoginAccepted)
    case loginRefused(LoginRefused)
    case request(AdminRequest)
    case reply(AdminReply)

    public enum Types {
        public static let authStart = MessageType(0x0301)
        public static let loginAccepted = MessageType(0x0302)
        public static let loginRefused = MessageType(0x0303)
        public static let request = MessageType(0x0304)
        public static let reply = MessageType(0x0305)
        public static let authChallenge = MessageType(0x0306)
        public static let authProof = MessageType(0x0307)
    }

    public var messageType: MessageType {
        switch self {
        case .hello: CommonMessageType.hello
        case .goodbye: CommonMessageType.goodbye
        case .authStart: Types.authStart
        case .authChallenge: Types.authChallenge
        case .authProof: Types.authProof
        case .loginAccepted: Types.loginAccepted
        case .loginRefused: Types.loginRefused
        case .request: Types.request
        case .reply: Types.reply
        }
    }

    public var isCompressible: Bool { true }

    public func writePayload(to buffer: inout ByteBuffer) throws(WireError) {
        switch self {
        case .hello(let body): try body.write(to: &buffer)
        case .goodbye(let body): try body.write(to: &buffer)
        case .authStart(let body): try body.write(to: &buffer)
        case .authChallenge(let body): try body.write(to: &buffer)
        case .authProof(let body): try body.write(to: &buffer)
        case .loginAccepted(let body): try body.write(to: &buffer)
        case .loginRefused(let body): try body.write(to: &buffer)
        case .request(let body): try body.write(to: &buffer)
        case .reply(let body): try body.write(to: &buffer)
        }
    }

    public init(type: MessageType, payload: inout ByteBuffer) throws(WireError) {
        switch type {
        case CommonMessageType.hello: self = .hello(try Hello(wire: &payload))
        case CommonMessageType.goodbye: self = .goodbye(try Goodbye(wire: &payload))
        case Types.authStart: self = .authStart(try AdminAuthStart(wire: &payload))
        case Types.authChallenge: self = .authChallenge(try AdminAuthChallenge(wire: &payload))
        case Types.authProof: self = .authProof(try AdminAuthProof(wire: &payload))
        case Types.loginAccepted: self = .loginAccepted(try AdminLoginAccepted(wire: &payload))
        case Types.loginRefused: self = .loginRefused(try LoginRefused(wire: &payload))
        case Types.request: self = .request(try AdminRequest(wire: &payload))
        case Types.reply: self = .reply(try AdminReply(wire: &payload))
        default: throw .unknownMessageType(type)
        }
    }
}

public enum AdminRole: UInt8, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case viewer = 1
    case `operator` = 2
    case admin = 3

    public static func < (lhs: AdminRole, rhs: AdminRole) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .viewer: "viewer"
        case .operator: "operator"
        case .admin: "admin"
        }
    }
}

/// SCRAM's client-first message: who, and the client's nonce (printable ASCII, no comma).
public struct AdminAuthStart: WireCodable {
    public var username: String
    public var clientNonce: String

    public init(username: String, clientNonce: String) {
        self.username = username
        self.clientNonce = clientNonce
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        username = try buffer.readWireString("adminAuthStart.username")
        clientNonce = try buffer.readWireString("adminAuthStart.clientNonce")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireString(username, field: "adminAuthStart.username")
        try buffer.writeWireString(clientNonce, field: "adminAuthStart.clientNonce")
    }
}

/// SCRAM's server-first message: the combined nonce (the client's, then the server's), the
/// account's salt and PBKDF2 iteration count.
public struct AdminAuthChallenge: WireCodable {
    public var nonce: String
    public var salt: ByteBuffer
    public var iterations: UInt32

    public init(nonce: String, salt: ByteBuffer, iterations: UInt32) {
        self.nonce = nonce
        self.salt = salt
        self.iterations = iterations
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        nonce = try buffer.readWireString("adminAuthChallenge.nonce")
        salt = try buffer.readWireBytes("adminAuthChallenge.salt")
        iterations = try buffer.readWireInteger("adminAuthChallenge.iterations")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireString(nonce, field: "adminAuthChallenge.nonce")
        try buffer.writeWireBytes(salt, field: "adminAuthChallenge.salt")
        buffer.writeInteger(iterations)
    }
}

/// SCRAM's client-final message: the client proof (32 bytes for SHA-256). The channel
/// binding is always "n" (none; "biws" in the AuthMessage) and the nonce is the challenge's.
public struct AdminAuthProof: WireCodable {
    public var proof: ByteBuffer

    public init(proof: ByteBuffer) { self.proof = proof }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        proof = try buffer.readWireBytes("adminAuthProof.proof")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireBytes(proof, field: "adminAuthProof.proof")
    }
}

public struct AdminLoginAccepted: WireCodable {
    public var role: AdminRole
    public var serverRole: ServerRole
    public var serverState: ServerState
    public var epoch: UInt64
    /// SCRAM's server signature: proves the server knew the account's verifier.
    public var serverSignature: ByteBuffer

    public init(role: AdminRole, serverRole: ServerRole, serverState: ServerState, epoch: UInt64, serverSignature: ByteBuffer) {
        self.role = role
        self.serverRole = serverRole
        self.serverState = serverState
        self.epoch = epoch
        self.serverSignature = serverSignature
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        role = try buffer.readWireEnum("adminAccepted.role")
        serverRole = try buffer.readWireEnum("adminAccepted.serverRole")
        serverState = try buffer.readWireEnum("adminAccepted.serverState")
        epoch = try buffer.readWireInteger("adminAccepted.epoch")
        serverSignature = try buffer.readWireBytes("adminAccepted.serverSignature")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeWireEnum(role)
        buffer.writeWireEnum(serverRole)
        buffer.writeWireEnum(serverState)
        buffer.writeInteger(epoch)
        try buffer.writeWireBytes(serverSignature, field: "adminAccepted.serverSignature")
    }
}

public struct AdminRequest: WireCodable {
    /// Chosen by the admin tool; echoed in the reply.
    public var requestId: UInt32
    /// Which command; the catalogue lives in AdminProtocol.
    public var command: UInt16
    public var body: ByteBuffer

    public init(requestId: UInt32, command: UInt16, body: ByteBuffer) {
        self.requestId = requestId
        self.command = command
        self.body = body
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        requestId = try buffer.readWireInteger("adminRequest.requestId")
        command = try buffer.readWireInteger("adminRequest.command")
        body = try buffer.readWireBytes("adminRequest.body")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(requestId)
        buffer.writeInteger(command)
        try buffer.writeWireBytes(body, field: "adminRequest.body")
    }
}

public struct AdminReply: WireCodable {
    public var requestId: UInt32
    /// 0 is success; other codes are defined by AdminProtocol.
    public var status: UInt16
    public var body: ByteBuffer

    public init(requestId: UInt32, status: UInt16, body: ByteBuffer) {
        self.requestId = requestId
        self.status = status
        self.body = body
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        requestId = try buffer.readWireInteger("adminReply.requestId")
        status = try buffer.readWireInteger("adminReply.status")
        body = try buffer.readWireBytes("adminReply.body")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(requestId)
        buffer.writeInteger(status)
        try buffer.writeWireBytes(body, field: "adminReply.body")
    }
}
