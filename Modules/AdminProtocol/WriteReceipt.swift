import NIOCore
import Wire

/// How far a configuration write got before it was acknowledged (issue 30): held by both
/// servers, or by the one that serves only, and why.
public enum WriteDurability: Equatable, Sendable, CustomStringConvertible {
    /// The peer wrote it to its disk before the answer: a failover keeps it.
    case replicated
    /// Durable on the serving server only; the peer gets it when it can, and a failover before
    /// then may leave it in a divergence journal instead of in force.
    case localOnly(reason: String)

    public var description: String {
        switch self {
        case .replicated: "replicated"
        case .localOnly(let reason): "local only: \(reason)"
        }
    }
}

/// The answer to a configuration write: what was written, and whether the server's write
/// concern was met (`write.concern = "both"` wants the peer's confirmation; `"local"` is met
/// by the server's own disk, and its writes say `local only` without being a failure).
public struct WriteReceipt: WireCodable {
    public var changes: UInt32
    public var revision: UInt64
    public var durability: WriteDurability
    public var concernMet: Bool

    public init(changes: UInt32, revision: UInt64, durability: WriteDurability, concernMet: Bool) {
        self.changes = changes
        self.revision = revision
        self.durability = durability
        self.concernMet = concernMet
    }

    /// `1 change written, revision 26, replicated`, as vcom-admin prints it and the audit log
    /// records it.
    public var summary: String {
        "\(changes) change\(changes == 1 ? "" : "s") written, revision \(revision), \(durability)"
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        changes = try buffer.readWireInteger("receipt.changes")
        revision = try buffer.readWireInteger("receipt.revision")
        let reason = try buffer.readOptionalString("receipt.localOnly")
        durability = reason.map { .localOnly(reason: $0) } ?? .replicated
        concernMet = try buffer.readWireBool("receipt.concernMet")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(changes)
        buffer.writeInteger(revision)
        if case .localOnly(let reason) = durability {
            try buffer.writeOptionalString(reason, field: "receipt.localOnly")
        } else {
            try buffer.writeOptionalString(nil, field: "receipt.localOnly")
        }
        buffer.writeWireBool(concernMet)
    }
}
