import NIOCore

/// Bytes to messages for one conversation, on a channel pipeline.
public struct WireFrameDecoder<Message: WireMessage>: ByteToMessageDecoder {
    public typealias InboundOut = Message
    public private(set) var codec: FrameCodec<Message>
    /// When set, the limits in force are read from it before each frame.
    let limits: FrameLimits?

    public init(configuration: WireConfiguration) {
        codec = FrameCodec(configuration: configuration)
        limits = nil
    }

    public init(limits: FrameLimits) {
        codec = FrameCodec(configuration: limits.current)
        self.limits = limits
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let limits { codec.configuration = limits.current }
        guard let message = try codec.decode(from: &buffer, allocator: context.channel.allocator) else {
            return .needMoreData
        }
        context.fireChannelRead(Self.wrapInboundOut(message))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        guard buffer.readableBytes == 0 else {
            let need = (try? buffer.peekFrameHeader(supported: codec.supportedVersions)).flatMap { $0 }
                .map { FrameHeader.size + Int($0.length) } ?? FrameHeader.size
            let have = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: have)
            throw WireError.truncatedFrame(have: have, need: need)
        }
        return .needMoreData
    }
}

/// Messages to bytes for one conversation, on a channel pipeline.
public struct WireFrameEncoder<Message: WireMessage>: MessageToByteEncoder {
    public typealias OutboundIn = Message
    public let codec: FrameCodec<Message>

    public init(configuration: WireConfiguration) {
        codec = FrameCodec(configuration: configuration)
    }

    public func encode(data: Message, out: inout ByteBuffer) throws {
        try codec.encode(data, into: &out)
    }
}

/// Closes a connection that sent bad input, after telling it why in a goodbye frame.
///
/// Sits right after the decoder. Errors that are not the protocol's (I/O errors, say)
/// pass on untouched for the application to handle.
public final class WireErrorHandler<Message: WireMessage>: ChannelInboundHandler {
    public typealias InboundIn = Message
    public typealias InboundOut = Message
    public typealias OutboundOut = Message

    private let onError: (@Sendable (WireError) -> Void)?
    private var closing = false

    /// - Parameter onError: told of each protocol error, for logs and metrics.
    public init(onError: (@Sendable (WireError) -> Void)? = nil) {
        self.onError = onError
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        let wireError: WireError
        switch error {
        case let error as WireError:
            wireError = error
        case ByteToMessageDecoderError.dataReceivedInErrorState(let first as WireError, _):
            wireError = first
        default:
            context.fireErrorCaught(error)
            return
        }
        guard !closing else { return }
        closing = true
        onError?(wireError)
        guard context.channel.isActive else {
            context.close(promise: nil)
            return
        }
        // Best effort: the goodbye is flushed straight to the socket before the close; a peer
        // too slow to take it loses only the explanation, never the close.
        let goodbye = Message.goodbye(Goodbye(error: wireError))
        context.writeAndFlush(Self.wrapOutboundOut(goodbye), promise: nil)
        context.close(promise: nil)
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds the frame encoder, the frame decoder and the protocol error handler for one
    /// conversation; handlers added after them see typed messages.
    public func addWireHandlers<Message: WireMessage>(
        for: Message.Type, configuration: WireConfiguration, onError: (@Sendable (WireError) -> Void)? = nil
    ) throws {
        try addHandler(MessageToByteHandler(WireFrameEncoder<Message>(configuration: configuration)))
        try addHandler(ByteToMessageHandler(WireFrameDecoder<Message>(configuration: configuration)))
        try addHandler(WireErrorHandler<Message>(onError: onError))
    }

    /// The same for a server's accepted connection: frames are held to `limits` (small until
    /// the session authenticates); what this side sends uses the port's full configuration.
    public func addWireHandlers<Message: WireMessage>(
        for: Message.Type, limits: FrameLimits, onError: (@Sendable (WireError) -> Void)? = nil
    ) throws {
        try addHandler(MessageToByteHandler(WireFrameEncoder<Message>(configuration: limits.afterAuthentication)))
        try addHandler(ByteToMessageHandler(WireFrameDecoder<Message>(limits: limits)))
        try addHandler(WireErrorHandler<Message>(onError: onError))
    }
}

extension ChannelHandlerContext {
    /// Ends the connection after an error that reached the application, unless the error is
    /// one that ends it already. NIO closes a socket channel itself after a failed read or
    /// write (`IOError`); a close through the pipeline as well made the TLS handler start a
    /// polite shutdown on the dead connection: a close_notify written into a reset socket, and
    /// a timer for the answer. After a kill -9 every connection of the dead server is reset,
    /// and that shutdown was 15 % of the simulator's CPU while its 10,000 clients were noticing.
    public func close(after error: Error) {
        if error is IOError { return }
        close(promise: nil)
    }
}
