import NIOCore
import PairModel

extension Endpoint: WireCodable {
    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        self.init(host: try buffer.readWireString("endpoint.host"), port: try buffer.readWireInteger("endpoint.port"))
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireString(host, field: "endpoint.host")
        buffer.writeInteger(port)
    }
}

/// The first frame each side sends on every connection. Its layout is frozen: it is always
/// sent in frame version 1 so that any two builds can agree on a version (or refuse cleanly).
public struct Hello: WireCodable {
    public var minVersion: UInt8
    public var maxVersion: UInt8
    /// Stable identity of the sender: a server id, a client instance, an admin tool.
    public var nodeId: String
    /// Free text for logs, e.g. "vcom-client-sim 0.1".
    public var software: String

    public init(
        versions: ClosedRange<UInt8> = WireProtocol.supportedVersions, nodeId: String, software: String
    ) {
        minVersion = versions.lowerBound
        maxVersion = versions.upperBound
        self.nodeId = nodeId
        self.software = software
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        minVersion = try buffer.readWireInteger("hello.minVersion")
        maxVersion = try buffer.readWireInteger("hello.maxVersion")
        nodeId = try buffer.readWireString("hello.nodeId")
        software = try buffer.readWireString("hello.software")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(minVersion)
        buffer.writeInteger(maxVersion)
        try buffer.writeWireString(nodeId, field: "hello.nodeId")
        try buffer.writeWireString(software, field: "hello.software")
    }

    /// The highest version both sides speak, or nil when the ranges do not overlap.
    public func negotiatedVersion(with local: ClosedRange<UInt8> = WireProtocol.supportedVersions) -> UInt8? {
        guard minVersion <= maxVersion else { return nil }
        let shared = local.clamped(to: minVersion...maxVersion)
        return local.overlaps(minVersion...maxVersion) ? shared.upperBound : nil
    }
}

/// Why a connection is being closed. Unknown codes from a newer peer are kept as they are
/// and shown as such, because a goodbye must always be readable.
public struct GoodbyeReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let normal = GoodbyeReason(rawValue: 0)
    public static let shuttingDown = GoodbyeReason(rawValue: 1)
    public static let protocolError = GoodbyeReason(rawValue: 2)
    public static let unsupportedVersion = GoodbyeReason(rawValue: 3)
    public static let authenticationFailed = GoodbyeReason(rawValue: 4)
    public static let idleTimeout = GoodbyeReason(rawValue: 5)
    public static let superseded = GoodbyeReason(rawValue: 6)
    /// The session's right to be here ended: kicked by an administrator, the operator
    /// disabled or removed, its token revoked. A client does not come back with the token.
    public static let accessRevoked = GoodbyeReason(rawValue: 7)
    /// The server refuses more of this: too many connections from this address, or a
    /// connection that did not authenticate in time.
    public static let refused = GoodbyeReason(rawValue: 8)

    public var description: String {
        switch self {
        case .normal: "normal"
        case .shuttingDown: "shutting down"
        case .protocolError: "protocol error"
        case .unsupportedVersion: "unsupported version"
        case .authenticationFailed: "authentication failed"
        case .idleTimeout: "idle timeout"
        case .superseded: "superseded by a newer connection"
        case .accessRevoked: "access revoked"
        case .refused: "refused"
        default: "unrecognized reason \(rawValue)"
        }
    }
}

/// The last frame before a deliberate close, so the other side learns why.
public struct Goodbye: WireCodable {
    public var reason: GoodbyeReason
    public var detail: String

    public init(reason: GoodbyeReason, detail: String) {
        self.reason = reason
        self.detail = detail
    }

    /// The goodbye sent when bad input forces a connection closed.
    public init(error: WireError) {
        if case .unsupportedVersion = error {
            reason = .unsupportedVersion
        } else {
            reason = .protocolError
        }
        detail = error.description
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        reason = GoodbyeReason(rawValue: try buffer.readWireInteger("goodbye.reason"))
        detail = try buffer.readWireString("goodbye.detail")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(reason.rawValue)
        // A goodbye must never fail to encode: an over-long detail is cut on a character boundary.
        try buffer.writeWireString(Self.clip(detail, maxBytes: 1024), field: "goodbye.detail")
    }

    static func clip(_ text: String, maxBytes: Int) -> String {
        guard text.utf8.count > maxBytes else { return text }
        var clipped = ""
        for character in text {
            guard clipped.utf8.count + character.utf8.count <= maxBytes else { break }
            clipped.append(character)
        }
        return clipped
    }
}

