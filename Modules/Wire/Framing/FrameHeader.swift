import NIOCore

/// The fixed 10-byte header in front of every payload (layout in docs/wire-protocol.md).
///
/// The first ten bytes keep this layout in every protocol version, so that any peer can
/// always read the magic and version of a frame and reject a version it does not speak.
public struct FrameHeader: Equatable, Sendable {
    public static let size = 10
    /// "VC" in ASCII.
    public static let magic: UInt16 = 0x5643

    public var version: UInt8
    public var flags: FrameFlags
    public var type: MessageType
    /// Payload bytes that follow the header on the wire (after compression, if any).
    public var length: UInt32

    public init(version: UInt8, flags: FrameFlags, type: MessageType, length: UInt32) {
        self.version = version
        self.flags = flags
        self.type = type
        self.length = length
    }
}

public struct FrameFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The payload is a 4-byte uncompressed length followed by a raw DEFLATE stream.
    public static let compressed = FrameFlags(rawValue: 0x01)
    /// Flags this version understands; any other bit set is a protocol error, because a
    /// flag changes how the payload must be read and guessing would corrupt it.
    public static let known: FrameFlags = [.compressed]
}

/// A message type code. Bit 15 marks a type a receiver may skip when it does not know it
/// (an optional extension); an unknown type without that bit is a protocol error.
public struct MessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let ignorableBit: UInt16 = 0x8000
    public var isIgnorable: Bool { rawValue & Self.ignorableBit != 0 }

    public var description: String {
        let hex = String(rawValue, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}

/// The protocol versions this build speaks.
public enum WireProtocol {
    public static let currentVersion: UInt8 = 1
    public static let supportedVersions: ClosedRange<UInt8> = 1...1
}

extension ByteBuffer {
    /// Validates as much of a header as has arrived, so a stream that is not VCOM fails on
    /// its first bytes; returns the header once all ten bytes are here, without consuming it.
    func peekFrameHeader(supported: ClosedRange<UInt8>) throws(WireError) -> FrameHeader? {
        let start = readerIndex
        if readableBytes >= 2, let magic = getInteger(at: start, as: UInt16.self), magic != FrameHeader.magic {
            throw .badMagic(magic)
        }
        if readableBytes >= 3, let version = getInteger(at: start + 2, as: UInt8.self), !supported.contains(version) {
            throw .unsupportedVersion(version, supported: supported)
        }
        if readableBytes >= 4, let flags = getInteger(at: start + 3, as: UInt8.self),
            !FrameFlags.known.isSuperset(of: FrameFlags(rawValue: flags))
        {
            throw .reservedFlags(flags)
        }
        guard readableBytes >= FrameHeader.size,
            let version = getInteger(at: start + 2, as: UInt8.self),
            let flags = getInteger(at: start + 3, as: UInt8.self),
            let type = getInteger(at: start + 4, as: UInt16.self),
            let length = getInteger(at: start + 6, as: UInt32.self)
        else { return nil }
        return FrameHeader(version: version, flags: FrameFlags(rawValue: flags), type: MessageType(type), length: length)
    }

    mutating func setFrameHeader(_ header: FrameHeader, at index: Int) {
        setInteger(FrameHeader.magic, at: index)
        setInteger(header.version, at: index + 2)
        setInteger(header.flags.rawValue, at: index + 3)
        setInteger(header.type.rawValue, at: index + 4)
        setInteger(header.length, at: index + 6)
    }
}
