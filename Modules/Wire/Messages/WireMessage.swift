import NIOCore

/// One conversation's set of messages: client↔server, primary↔secondary or admin↔server.
///
/// Each conversation decodes only its own types, so a client port never parses peer or
/// admin traffic: anything else is an unknown type and closes the connection.
public protocol WireMessage: Sendable, Equatable {
    var messageType: MessageType { get }
    /// Whether the payload may be deflated. Media is already-compressed audio and small;
    /// deflating it would cost CPU at 50 frames per second per talker for nothing.
    var isCompressible: Bool { get }
    func writePayload(to buffer: inout ByteBuffer) throws(WireError)
    /// Decodes a payload of a known type; throws `unknownMessageType` for any other.
    init(type: MessageType, payload: inout ByteBuffer) throws(WireError)
    /// The message that tells the other side why its connection is closing (each
    /// conversation's `.goodbye` case).
    static func goodbye(_ goodbye: Goodbye) -> Self
}

/// Type codes shared by every conversation.
public enum CommonMessageType {
    public static let hello = MessageType(0x0001)
    public static let goodbye = MessageType(0x0002)
}
