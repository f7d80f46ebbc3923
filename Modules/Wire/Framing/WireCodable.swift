import NIOCore

/// A value with a binary wire form: fixed-width integers in network byte order,
/// length-prefixed UTF-8 strings and byte strings (docs/wire-protocol.md, "Field encoding").
///
/// Other modules (configuration records, admin requests) use the same primitives for the
/// bodies they put inside frames, so every payload follows one documented encoding.
public protocol WireCodable: Sendable, Equatable {
    init(wire buffer: inout ByteBuffer) throws(WireError)
    func write(to buffer: inout ByteBuffer) throws(WireError)
}

extension ByteBuffer {
    @inlinable
    public mutating func readWireInteger<T: FixedWidthInteger>(_ field: StaticString, as: T.Type = T.self) throws(WireError) -> T {
        guard let value = readInteger(as: T.self) else { throw .truncatedPayload(field: "\(field)") }
        return value
    }

    public mutating func readWireBool(_ field: StaticString) throws(WireError) -> Bool {
        switch try readWireInteger(field, as: UInt8.self) {
        case 0: return false
        case 1: return true
        case let other: throw .invalidValue(field: "\(field)", value: UInt64(other))
        }
    }

    /// A one-byte code mapped to an enum; an unknown code is an error.
    public mutating func readWireEnum<E: RawRepresentable>(_ field: StaticString, as: E.Type = E.self) throws(WireError) -> E
    where E.RawValue == UInt8 {
        let raw = try readWireInteger(field, as: UInt8.self)
        guard let value = E(rawValue: raw) else { throw .invalidValue(field: "\(field)", value: UInt64(raw)) }
        return value
    }

    /// A UTF-8 string with a UInt16 byte-length prefix; invalid UTF-8 is refused, not repaired.
    public mutating func readWireString(_ field: StaticString) throws(WireError) -> String {
        let length = Int(try readWireInteger(field, as: UInt16.self))
        guard readableBytes >= length else { throw .truncatedPayload(field: "\(field)") }
        let string = withUnsafeReadableBytes { bytes in
            String(validating: UnsafeRawBufferPointer(rebasing: bytes[..<length]), as: UTF8.self)
        }
        guard let string else { throw .invalidUTF8(field: "\(field)") }
        moveReaderIndex(forwardBy: length)
        return string
    }

    /// Bytes with a UInt32 length prefix, copied into a buffer of their own. A slice would keep
    /// the whole receive buffer alive for as long as the value lives: a session token a client
    /// kept held NIOSSL's 32 KiB read buffer, whose next read then copied all 32 KiB to write
    /// into it (10 % of the simulator's CPU in a TLS failover, in page faults of those copies).
    public mutating func readWireBytes(_ field: StaticString) throws(WireError) -> ByteBuffer {
        let slice = try readWireSlice(field)
        return ByteBuffer(bytes: slice.readableBytesView)
    }

    /// The same bytes as a slice that shares this buffer's storage: no copy, for a value that
    /// is used and dropped before the next read (media audio, 47,500 frames a second relayed).
    public mutating func readWireSlice(_ field: StaticString) throws(WireError) -> ByteBuffer {
        let length = Int(try readWireInteger(field, as: UInt32.self))
        guard let slice = readSlice(length: length) else { throw .truncatedPayload(field: "\(field)") }
        return slice
    }

    /// An element count (UInt32), checked against what the rest of the payload could hold
    /// so that a forged count can never make the reader reserve memory.
    public mutating func readWireCount(_ field: StaticString, minimumElementSize: Int) throws(WireError) -> Int {
        let count = try readWireInteger(field, as: UInt32.self)
        guard UInt64(count) * UInt64(max(1, minimumElementSize)) <= UInt64(readableBytes) else {
            throw .countTooLarge(field: "\(field)", count: count, available: readableBytes)
        }
        return Int(count)
    }

    /// A presence byte (0 or 1) followed by the value when present.
    public mutating func readWireOptional<T: WireCodable>(_ field: StaticString, as: T.Type = T.self) throws(WireError) -> T? {
        try readWireBool(field) ? try T(wire: &self) : nil
    }

    public mutating func writeWireBool(_ value: Bool) {
        writeInteger(value ? 1 : 0, as: UInt8.self)
    }

    public mutating func writeWireEnum<E: RawRepresentable>(_ value: E) where E.RawValue == UInt8 {
        writeInteger(value.rawValue)
    }

    public mutating func writeWireString(_ value: String, field: StaticString) throws(WireError) {
        let length = value.utf8.count
        guard length <= Int(UInt16.max) else {
            throw .fieldTooLong(field: "\(field)", length: length, limit: Int(UInt16.max))
        }
        writeInteger(UInt16(length))
        writeString(value)
    }

    public mutating func writeWireBytes(_ value: ByteBuffer, field: StaticString) throws(WireError) {
        guard value.readableBytes <= Int(UInt32.max) else {
            throw .fieldTooLong(field: "\(field)", length: value.readableBytes, limit: Int(UInt32.max))
        }
        writeInteger(UInt32(value.readableBytes))
        writeImmutableBuffer(value)
    }

    public mutating func writeWireCount(_ count: Int, field: StaticString) throws(WireError) {
        guard count <= Int(UInt32.max) else {
            throw .fieldTooLong(field: "\(field)", length: count, limit: Int(UInt32.max))
        }
        writeInteger(UInt32(count))
    }

    public mutating func writeWireOptional<T: WireCodable>(_ value: T?) throws(WireError) {
        writeWireBool(value != nil)
        try value?.write(to: &self)
    }
}
