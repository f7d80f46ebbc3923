import Glibc
import NIOCore
import NIOEmbedded
import NIOTestUtils
import PropertyBased
import Testing
@testable import Wire

/// The NIO handlers on a real pipeline: framing across arbitrary read boundaries, and bad
/// input answered with a goodbye and a closed connection.
@Suite struct ChannelHandlerTests {
    func encoded<M: WireMessage>(_ messages: [M], configuration: WireConfiguration = .peer) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        for message in messages { try FrameCodec<M>(configuration: configuration).encode(message, into: &buffer) }
        return buffer
    }

    func channel<M: WireMessage>(for: M.Type, configuration: WireConfiguration = .peer) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addWireHandlers(for: M.self, configuration: configuration)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    @Test func decoderPassesNIOsVerifierIncludingOneByteAtATime() throws {
        var random = RandomMessages(rng: Xoshiro(seed: (1, 2, 3, 4)))
        let pairs: [(ByteBuffer, [PeerMessage])] = try (0..<60).map { index in
            let message = random.peerMessage(index % RandomMessages.peerCases)
            return (try encoded([message]), [message])
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
            WireFrameDecoder<PeerMessage>(configuration: .peer)
        }
    }

    @Test func dripFedBytesProduceEachMessageOnceComplete() throws {
        let channel = try channel(for: ClientMessage.self, configuration: .client)
        let messages: [ClientMessage] = [
            .hello(Hello(nodeId: "panel-7", software: "test")),
            .login(LoginRequest(username: "ann", credential: .password("secret"), clientInstance: "i-1")),
            .heartbeat(Heartbeat(sequence: 1)),
            .logout,
        ]
        let bytes = try encoded(messages, configuration: .client)
        var received: [ClientMessage] = []
        for byte in bytes.readableBytesView {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            while let message = try channel.readInbound(as: ClientMessage.self) { received.append(message) }
        }
        #expect(received == messages)
        #expect(channel.isActive)
    }

    @Test func encoderWritesFramesTheDecoderReads() throws {
        let channel = try channel(for: AdminMessage.self, configuration: .admin)
        let message = AdminMessage.request(AdminRequest(requestId: 9, command: 3, body: ByteBuffer(string: "status")))
        try channel.writeOutbound(message)
        var frame = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(try FrameCodec<AdminMessage>(configuration: .admin).decode(from: &frame, allocator: channel.allocator) == message)
    }

    /// Reads the goodbye the server sent before closing, if any.
    func goodbye<M: WireMessage>(from channel: EmbeddedChannel, as: M.Type) throws -> Goodbye? {
        guard var frame = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
        let message = try FrameCodec<M>(configuration: .peer).decode(from: &frame, allocator: channel.allocator)
        let goodbyeMessage = M.goodbye(Goodbye(reason: .normal, detail: ""))
        guard let message, message.messageType == goodbyeMessage.messageType else { return nil }
        var payload = ByteBuffer()
        try message.writePayload(to: &payload)
        return try Goodbye(wire: &payload)
    }

    @Test(arguments: [
        ("wrong magic", [0x47, 0x45, 0x54, 0x20]),
        ("unknown version", [0x56, 0x43, 0x07, 0x00]),
        ("reserved flags", [0x56, 0x43, 0x01, 0x40]),
        ("length above cap", [0x56, 0x43, 0x01, 0x00, 0x01, 0x04, 0x7F, 0xFF, 0xFF, 0xFF]),
        ("unknown type", [0x56, 0x43, 0x01, 0x00, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00]),
        ("truncated payload", [0x56, 0x43, 0x01, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00]),
        ("bad utf-8", [0x56, 0x43, 0x01, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x09, 0x00, 0x01, 0xFF, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00]),
        ("corrupt deflate", [0x56, 0x43, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x0A, 0xFF, 0xFF, 0xFF, 0xFF]),
    ] as [(String, [UInt8])])
    func badInputGetsAGoodbyeAndAClosedConnection(name: String, bytes: [UInt8]) throws {
        let channel = try channel(for: ClientMessage.self, configuration: .client)
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        let goodbye = try #require(try goodbye(from: channel, as: ClientMessage.self), "\(name): no goodbye sent")
        #expect(goodbye.reason == (name == "unknown version" ? .unsupportedVersion : .protocolError))
        #expect(!goodbye.detail.isEmpty)
        #expect(!channel.isActive, "\(name): connection must be closed")
        #expect(try channel.readInbound(as: ClientMessage.self) == nil)
    }

    @Test func bytesAfterAnErrorAreIgnored() throws {
        let channel = try channel(for: ClientMessage.self, configuration: .client)
        try channel.writeInbound(ByteBuffer(bytes: [0x00, 0x00]))
        #expect(!channel.isActive)
        _ = try channel.readOutbound(as: ByteBuffer.self)
        // More data on a dead connection neither throws nor produces messages nor a second goodbye.
        _ = try? channel.writeInbound(try encoded([ClientMessage.heartbeat(Heartbeat(sequence: 1))], configuration: .client))
        #expect(try channel.readInbound(as: ClientMessage.self) == nil)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
    }

    @Test func connectionEndingInsideAFrameIsReported() throws {
        let errors = ErrorLog()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addWireHandlers(for: ClientMessage.self, configuration: .client) { errors.append($0) }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(bytes: [0x56, 0x43, 0x01, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x04, 0x00]))
        channel.pipeline.fireChannelInactive()
        #expect(errors.all == [.truncatedFrame(have: 11, need: 14)])
    }
}

final class ErrorLog: @unchecked Sendable {  // EmbeddedChannel runs on the test's thread.
    private(set) var all: [WireError] = []
    func append(_ error: WireError) { all.append(error) }
}

/// `close(after:)`: what ends a connection after an error, and what is left to NIO.
@Suite struct CloseAfterErrorTests {
    /// Records every close that reaches the front of the pipeline (where the socket, or a TLS
    /// handler, would act on it).
    final class CloseRecorder: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var closes = 0
        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            closes += 1
            context.close(mode: mode, promise: promise)
        }
    }

    final class ClosesAfterErrors: ChannelInboundHandler {
        typealias InboundIn = Any
        func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(after: error) }
    }

    /// A socket error leaves the close to NIO (which closes the channel itself); any other error
    /// closes through the pipeline.
    @Test func closeAfterAnError_leavesSocketErrorsToNIO() throws {
        let recorder = CloseRecorder()
        let channel = EmbeddedChannel(handlers: [recorder, ClosesAfterErrors()])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.pipeline.fireErrorCaught(IOError(errnoCode: ECONNRESET, reason: "read(descriptor:pointer:size:)"))
        #expect(recorder.closes == 0)
        #expect(channel.isActive)
        channel.pipeline.fireErrorCaught(WireError.truncatedFrame(have: 1, need: 2))
        #expect(recorder.closes == 1)
        #expect(!channel.isActive)
    }
}
