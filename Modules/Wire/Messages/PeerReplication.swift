import NIOCore

/// The identity of a configuration history up to one record: SHA-256 over the previous
/// record's chain, the record's revision, epoch and body (docs/config-store.md). Two stores
/// with the same chain at a revision hold the same records up to it, byte for byte, so a
/// history rewritten under a reused epoch is told apart from the original.
public struct ChainHash: Hashable, Sendable, CustomStringConvertible {
    public static let size = 32
    public let bytes: [UInt8]

    /// The chain of the empty history (revision 0).
    public static let zero = ChainHash(unchecked: [UInt8](repeating: 0, count: size))

    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == Self.size else { return nil }
        self.bytes = Array(bytes)
    }

    init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    public var description: String { bytes.prefix(6).map { String($0, radix: 16).leftPadded(2) }.joined() }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

extension ByteBuffer {
    /// A chain hash that may be unknown: a length byte (0, or 32) and the bytes.
    mutating func readOptionalChain(_ field: StaticString) throws(WireError) -> ChainHash? {
        let length = try readWireInteger(field, as: UInt8.self)
        guard length != 0 else { return nil }
        guard Int(length) == ChainHash.size else { throw .invalidValue(field: "\(field)", value: UInt64(length)) }
        guard let bytes = readBytes(length: ChainHash.size) else { throw .truncatedPayload(field: "\(field)") }
        return ChainHash(unchecked: bytes)
    }

    mutating func writeOptionalChain(_ chain: ChainHash?) {
        guard let chain else {
            writeInteger(0 as UInt8)
            return
        }
        writeInteger(UInt8(ChainHash.size))
        writeBytes(chain.bytes)
    }

    mutating func readChain(_ field: StaticString) throws(WireError) -> ChainHash {
        guard let chain = try readOptionalChain(field) else { throw .invalidValue(field: "\(field)", value: 0) }
        return chain
    }
}

/// Where an epoch begins in a configuration history: its first revision. Kept for every
/// epoch (never pruned), so a leader can tell the epoch of any revision of a follower that
/// is far behind, as Kafka's leader-epoch cache does.
public struct EpochStart: Hashable, Sendable {
    public var epoch: UInt64
    public var startRevision: UInt64

    public init(epoch: UInt64, startRevision: UInt64) {
        self.epoch = epoch
        self.startRevision = startRevision
    }
}

/// One piece of the whole configuration at one revision. A snapshot is sent as consecutive
/// chunks of its body (each frame stays far below the link's frame limit, whatever the size
/// of the configuration); the first chunk, at offset 0, carries the epoch history.
public struct ConfigSnapshot: WireCodable {
    public var epoch: UInt64
    public var revision: UInt64
    /// The chain at `revision`: the receiver continues its own chain from it.
    public var chain: ChainHash
    /// Length of the whole body; the snapshot is complete when `offset + body` reaches it.
    public var totalLength: UInt64
    public var offset: UInt64
    /// Only in the first chunk (empty in the others).
    public var epochHistory: [EpochStart]
    public var body: ByteBuffer

    public init(
        epoch: UInt64, revision: UInt64, chain: ChainHash, totalLength: UInt64, offset: UInt64, epochHistory: [EpochStart],
        body: ByteBuffer
    ) {
        self.epoch = epoch
        self.revision = revision
        self.chain = chain
        self.totalLength = totalLength
        self.offset = offset
        self.epochHistory = epochHistory
        self.body = body
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        epoch = try buffer.readWireInteger("configSnapshot.epoch")
        revision = try buffer.readWireInteger("configSnapshot.revision")
        chain = try buffer.readChain("configSnapshot.chain")
        totalLength = try buffer.readWireInteger("configSnapshot.totalLength")
        offset = try buffer.readWireInteger("configSnapshot.offset")
        let count = try buffer.readWireCount("configSnapshot.epochHistory", minimumElementSize: 16)
        var history: [EpochStart] = []
        history.reserveCapacity(count)
        for _ in 0..<count {
            history.append(
                EpochStart(
                    epoch: try buffer.readWireInteger("configSnapshot.epochHistory.epoch"),
                    startRevision: try buffer.readWireInteger("configSnapshot.epochHistory.startRevision")))
        }
        epochHistory = history
        body = try buffer.readWireBytes("configSnapshot.body")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(epoch)
        buffer.writeInteger(revision)
        buffer.writeOptionalChain(chain)
        buffer.writeInteger(totalLength)
        buffer.writeInteger(offset)
        try buffer.writeWireCount(epochHistory.count, field: "configSnapshot.epochHistory")
        for start in epochHistory {
            buffer.writeInteger(start.epoch)
            buffer.writeInteger(start.startRevision)
        }
        try buffer.writeWireBytes(body, field: "configSnapshot.body")
    }
}

/// One configuration change, stamped with its revision, the epoch it was made in, and the
/// chain of the history up to it.
public struct ReplicatedChange: WireCodable {
    public var revision: UInt64
    public var epoch: UInt64
    /// Wall-clock milliseconds since 1970 when the change was committed (for lag figures).
    public var committedAtMs: UInt64
    public var chain: ChainHash
    public var body: ByteBuffer

    public init(revision: UInt64, epoch: UInt64, committedAtMs: UInt64, chain: ChainHash, body: ByteBuffer) {
        self.revision = revision
        self.epoch = epoch
        self.committedAtMs = committedAtMs
        self.chain = chain
        self.body = body
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        revision = try buffer.readWireInteger("configChange.revision")
        epoch = try buffer.readWireInteger("configChange.epoch")
        committedAtMs = try buffer.readWireInteger("configChange.committedAtMs")
        chain = try buffer.readChain("configChange.chain")
        body = try buffer.readWireBytes("configChange.body")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(revision)
        buffer.writeInteger(epoch)
        buffer.writeInteger(committedAtMs)
        buffer.writeOptionalChain(chain)
        try buffer.writeWireBytes(body, field: "configChange.body")
    }
}

/// The highest revision the sender has applied and made durable.
public struct ConfigAck: WireCodable {
    public var revision: UInt64

    public init(revision: UInt64) { self.revision = revision }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        revision = try buffer.readWireInteger("configAck.revision")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(revision)
    }
}

/// Sent by the follower on link-up and whenever it must start over: "this is the last change
/// I hold; send me what follows". Revision 0 asks for a snapshot.
public struct CatchUpRequest: WireCodable {
    public var lastRevision: UInt64
    /// The epoch of that last change, so the leader can tell a follower that diverged.
    public var lastEpoch: UInt64
    /// Its chain: the same position and epoch with another history is a divergence too.
    public var lastChain: ChainHash?

    public init(lastRevision: UInt64, lastEpoch: UInt64, lastChain: ChainHash?) {
        self.lastRevision = lastRevision
        self.lastEpoch = lastEpoch
        self.lastChain = lastChain
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        lastRevision = try buffer.readWireInteger("catchUp.lastRevision")
        lastEpoch = try buffer.readWireInteger("catchUp.lastEpoch")
        lastChain = try buffer.readOptionalChain("catchUp.lastChain")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(lastRevision)
        buffer.writeInteger(lastEpoch)
        buffer.writeOptionalChain(lastChain)
    }
}

/// A probe in the search for the last record two histories share, sent both ways: "the
/// last change I hold, not after this revision and of an epoch no later than this one, is
/// (revision, epoch, chain)". The chain is absent when the sender pruned that record and
/// knows only its epoch. The follower keeps what both hold and journals the rest
/// (docs/config-store.md).
public struct ConfigDivergence: WireCodable {
    public var revision: UInt64
    public var epoch: UInt64
    public var chain: ChainHash?

    public init(revision: UInt64, epoch: UInt64, chain: ChainHash?) {
        self.revision = revision
        self.epoch = epoch
        self.chain = chain
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        revision = try buffer.readWireInteger("divergence.revision")
        epoch = try buffer.readWireInteger("divergence.epoch")
        chain = try buffer.readOptionalChain("divergence.chain")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(revision)
        buffer.writeInteger(epoch)
        buffer.writeOptionalChain(chain)
    }
}

/// The secondary's answer to a licence transfer: stored, or refused with the reason (a
/// licence that fails verification, or one older than the licence it holds), so the
/// primary's operators see why their secondary runs on another licence.
public struct LicenceReceipt: WireCodable {
    public var accepted: Bool
    public var licenceId: String
    public var detail: String

    public init(accepted: Bool, licenceId: String, detail: String) {
        self.accepted = accepted
        self.licenceId = licenceId
        self.detail = detail
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        accepted = try buffer.readWireBool("licenceReceipt.accepted")
        licenceId = try buffer.readWireString("licenceReceipt.licenceId")
        detail = try buffer.readWireString("licenceReceipt.detail")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeWireBool(accepted)
        try buffer.writeWireString(licenceId, field: "licenceReceipt.licenceId")
        try buffer.writeWireString(Goodbye.clip(detail, maxBytes: 1024), field: "licenceReceipt.detail")
    }
}
