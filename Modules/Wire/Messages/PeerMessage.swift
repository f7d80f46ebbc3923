import NIOCore
import PairModel

/// Primary ↔ secondary: the peer link that carries liveness, the licence, configuration
/// replication and the activation handshake.
public enum PeerMessage: WireMessage {
    case hello(PeerHello)
    case goodbye(Goodbye)
    case auth(PeerAuth)
    case heartbeat(PeerHeartbeat)
    case licence(LicenceTransfer)
    case configSnapshot(ConfigSnapshot)
    case configChange(ReplicatedChange)
    case configAck(ConfigAck)
    case catchUpRequest(CatchUpRequest)
    case activationRequest(ActivationRequest)
    case clientCountReport(ClientCountReport)
    case stateAnnouncement(StateAnnouncement)
    case configDivergence(ConfigDivergence)
    case licenceReceipt(LicenceReceipt)

    public enum Types {
        public static let auth = MessageType(0x0201)
        public static let heartbeat = MessageType(0x0202)
        public static let licence = MessageType(0x0203)
        public static let configSnapshot = MessageType(0x0204)
        public static let configChange = MessageType(0x0205)
        public static let configAck = MessageType(0x0206)
        public static let catchUpRequest = MessageType(0x0207)
        public static let activationRequest = MessageType(0x0208)
        public static let clientCountReport = MessageType(0x0209)
        public static let stateAnnouncement = MessageType(0x020A)
        public static let configDivergence = MessageType(0x020B)
        public static let licenceReceipt = MessageType(0x020C)
    }

    public var messageType: MessageType {
        switch self {
        case .hello: CommonMessageType.hello
        case .goodbye: CommonMessageType.goodbye
        case .auth: Types.auth
        case .heartbeat: Types.heartbeat
        case .licence: Types.licence
        case .configSnapshot: Types.configSnapshot
        case .configChange: Types.configChange
        case .configAck: Types.configAck
        case .catchUpRequest: Types.catchUpRequest
        case .activationRequest: Types.activationRequest
        case .clientCountReport: Types.clientCountReport
        case .stateAnnouncement: Types.stateAnnouncement
        case .configDivergence: Types.configDivergence
        case .licenceReceipt: Types.licenceReceipt
        }
    }

    public var isCompressible: Bool { true }

    public func writePayload(to buffer: inout ByteBuffer) throws(WireError) {
        switch self {
        case .hello(let body): try body.write(to: &buffer)
        case .goodbye(let body): try body.write(to: &buffer)
        case .auth(let body): try body.write(to: &buffer)
        case .heartbeat(let body): try body.write(to: &buffer)
        case .licence(let body): try body.write(to: &buffer)
        case .configSnapshot(let body): try body.write(to: &buffer)
        case .configChange(let body): try body.write(to: &buffer)
        case .configAck(let body): try body.write(to: &buffer)
        case .catchUpRequest(let body): try body.write(to: &buffer)
        case .activationRequest(let body): try body.write(to: &buffer)
        case .clientCountReport(let body): try body.write(to: &buffer)
        case .stateAnnouncement(let body): try body.write(to: &buffer)
        case .configDivergence(let body): try body.write(to: &buffer)
        case .licenceReceipt(let body): try body.write(to: &buffer)
        }
    }

    public init(type: MessageType, payload: inout ByteBuffer) throws(WireError) {
        switch type {
        case CommonMessageType.hello: self = .hello(try PeerHello(wire: &payload))
        case CommonMessageType.goodbye: self = .goodbye(try Goodbye(wire: &payload))
        case Types.auth: self = .auth(try PeerAuth(wire: &payload))
        case Types.heartbeat: self = .heartbeat(try PeerHeartbeat(wire: &payload))
        case Types.licence: self = .licence(try LicenceTransfer(wire: &payload))
        case Types.configSnapshot: self = .configSnapshot(try ConfigSnapshot(wire: &payload))
        case Types.configChange: self = .configChange(try ReplicatedChange(wire: &payload))
        case Types.configAck: self = .configAck(try ConfigAck(wire: &payload))
        case Types.catchUpRequest: self = .catchUpRequest(try CatchUpRequest(wire: &payload))
        case Types.activationRequest: self = .activationRequest(try ActivationRequest(wire: &payload))
        case Types.clientCountReport: self = .clientCountReport(try ClientCountReport(wire: &payload))
        case Types.stateAnnouncement: self = .stateAnnouncement(try StateAnnouncement(wire: &payload))
        case Types.configDivergence: self = .configDivergence(try ConfigDivergence(wire: &payload))
        case Types.licenceReceipt: self = .licenceReceipt(try LicenceReceipt(wire: &payload))
        default: throw .unknownMessageType(type)
        }
    }
}

/// The peer link's first frame: the common hello fields, then who the sender is in the
/// pair and a fresh nonce the other side must sign (see `PeerAuth`).
public struct PeerHello: WireCodable {
    public var hello: Hello
    public var role: ServerRole
    public var epoch: UInt64
    public var nonce: ByteBuffer

    public init(hello: Hello, role: ServerRole, epoch: UInt64, nonce: ByteBuffer) {
        self.hello = hello
        self.role = role
        self.epoch = epoch
        self.nonce = nonce
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        hello = try Hello(wire: &buffer)
        role = try buffer.readWireEnum("peerHello.role")
        epoch = try buffer.readWireInteger("peerHello.epoch")
        nonce = try buffer.readWireBytes("peerHello.nonce")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try hello.write(to: &buffer)
        buffer.writeWireEnum(role)
        buffer.writeInteger(epoch)
        try buffer.writeWireBytes(nonce, field: "peerHello.nonce")
    }
}

/// Proof that the sender holds the pair's shared key: a MAC over both nonces. It also says
/// where clients reach the sender, so each server can tell its clients where the other is.
public struct PeerAuth: WireCodable {
    public var proof: ByteBuffer
    public var clientEndpoint: Endpoint?

    public init(proof: ByteBuffer, clientEndpoint: Endpoint?) {
        self.proof = proof
        self.clientEndpoint = clientEndpoint
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        proof = try buffer.readWireBytes("peerAuth.proof")
        clientEndpoint = try buffer.readWireOptional("peerAuth.clientEndpoint")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireBytes(proof, field: "peerAuth.proof")
        try buffer.writeWireOptional(clientEndpoint)
    }
}

public struct PeerHeartbeat: WireCodable {
    public var sequence: UInt64

    public init(sequence: UInt64) { self.sequence = sequence }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        sequence = try buffer.readWireInteger("peerHeartbeat.sequence")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(sequence)
    }
}

/// The primary's signed licence, as text; the secondary verifies the signature itself.
public struct LicenceTransfer: WireCodable {
    public var text: String

    public init(text: String) { self.text = text }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        text = try buffer.readWireString("licence.text")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireString(text, field: "licence.text")
    }
}

extension ActivationRequest: WireCodable {
    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        self.init(
            requestId: try buffer.readWireInteger("activationRequest.requestId"), epoch: try buffer.readWireInteger("activationRequest.epoch"),
            reason: ActivationReason(rawValue: try buffer.readWireInteger("activationRequest.reason")),
            timeoutMs: try buffer.readWireInteger("activationRequest.timeoutMs"))
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(requestId)
        buffer.writeInteger(epoch)
        buffer.writeInteger(reason.rawValue)
        buffer.writeInteger(timeoutMs)
    }
}

extension ClientCountReport: WireCodable {
    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        self.init(
            requestId: try buffer.readWireInteger("clientCount.requestId"), loggedInClients: try buffer.readWireInteger("clientCount.loggedInClients"),
            epoch: try buffer.readWireInteger("clientCount.epoch"))
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(requestId)
        buffer.writeInteger(loggedInClients)
        buffer.writeInteger(epoch)
    }
}

/// A server's view of itself, sent on link-up and on every change of state.
public struct StateAnnouncement: WireCodable {
    public var role: ServerRole
    public var state: ServerState
    public var epoch: UInt64
    public var loggedInClients: UInt32
    public var configRevision: UInt64
    /// Whether the sender could serve if asked (a secondary without the primary's licence,
    /// or one that never completed a first configuration sync, cannot): a primary never
    /// yields to a peer that cannot take its clients.
    public var canActivate: Bool
    /// Non-zero when this announcement is the sender's entry in a settle round: both servers
    /// were active when the link came up, and each decides who yields on the same two
    /// entries (docs/failover-policy.md, row 6).
    public var settleRound: UInt32

    public init(
        role: ServerRole, state: ServerState, epoch: UInt64, loggedInClients: UInt32, configRevision: UInt64, canActivate: Bool,
        settleRound: UInt32 = 0
    ) {
        self.role = role
        self.state = state
        self.epoch = epoch
        self.loggedInClients = loggedInClients
        self.configRevision = configRevision
        self.canActivate = canActivate
        self.settleRound = settleRound
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        role = try buffer.readWireEnum("state.role")
        state = try buffer.readWireEnum("state.state")
        epoch = try buffer.readWireInteger("state.epoch")
        loggedInClients = try buffer.readWireInteger("state.loggedInClients")
        configRevision = try buffer.readWireInteger("state.configRevision")
        canActivate = try buffer.readWireBool("state.canActivate")
        settleRound = try buffer.readWireInteger("state.settleRound")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeWireEnum(role)
        buffer.writeWireEnum(state)
        buffer.writeInteger(epoch)
        buffer.writeInteger(loggedInClients)
        buffer.writeInteger(configRevision)
        buffer.writeWireBool(canActivate)
        buffer.writeInteger(settleRound)
    }
}
