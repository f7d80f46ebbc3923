/// Everything that can be wrong with bytes received or with a message about to be sent.
/// Every case closes the connection it happened on; none may crash the process.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case badMagic(UInt16)
    case unsupportedVersion(UInt8, supported: ClosedRange<UInt8>)
    case reservedFlags(UInt8)
    case frameTooLarge(length: Int, limit: Int)
    case decompressedTooLarge(length: Int, limit: Int)
    case corruptCompressedData(String)
    /// The connection ended in the middle of a frame.
    case truncatedFrame(have: Int, need: Int)
    /// A payload ended before the field it should contain.
    case truncatedPayload(field: String)
    case unknownMessageType(MessageType)
    case invalidUTF8(field: String)
    case invalidValue(field: String, value: UInt64)
    /// A count that promises more elements than the payload can possibly hold.
    case countTooLarge(field: String, count: UInt32, available: Int)
    /// Raised when encoding: a field exceeds what its length prefix can carry.
    case fieldTooLong(field: String, length: Int, limit: Int)

    public var description: String {
        switch self {
        case .badMagic(let magic):
            return "not a VCOM frame: magic 0x\(String(magic, radix: 16)) instead of 0x5643"
        case .unsupportedVersion(let version, let supported):
            return "protocol version \(version) is not supported (this side speaks \(supported.lowerBound)...\(supported.upperBound))"
        case .reservedFlags(let flags):
            return "frame sets reserved flag bits 0x\(String(flags, radix: 16))"
        case .frameTooLarge(let length, let limit):
            return "frame payload of \(length) bytes exceeds the limit of \(limit) bytes"
        case .decompressedTooLarge(let length, let limit):
            return "compressed payload inflates to \(length) bytes, above the limit of \(limit) bytes"
        case .corruptCompressedData(let detail):
            return "compressed payload is corrupt: \(detail)"
        case .truncatedFrame(let have, let need):
            return "connection ended inside a frame: \(have) of \(need) bytes received"
        case .truncatedPayload(let field):
            return "payload ends before field '\(field)'"
        case .unknownMessageType(let type):
            return "unknown message type \(type)"
        case .invalidUTF8(let field):
            return "field '\(field)' is not valid UTF-8"
        case .invalidValue(let field, let value):
            return "field '\(field)' has invalid value \(value)"
        case .countTooLarge(let field, let count, let available):
            return "field '\(field)' announces \(count) elements but only \(available) bytes remain"
        case .fieldTooLong(let field, let length, let limit):
            return "field '\(field)' is \(length) bytes long, above its limit of \(limit)"
        }
    }
}
