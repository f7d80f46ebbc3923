import NIOCore
import Testing
import PairModel
import Wire

/// A decoded value that is kept (a session token, a body) owns its bytes; only media audio,
/// used and dropped within the read, is a slice of the received buffer. A kept slice holds
/// the whole receive buffer (NIOSSL's 32 KiB) and makes its next read copy it.
@Suite struct DecodedBytesOwnershipTests {
    let codec = FrameCodec<ClientMessage>(configuration: .client)
    let token = ByteBuffer(bytes: (0..<48).map { UInt8($0) })

    /// Decodes one frame of `message` from a received buffer and says whether `bytes` of the
    /// decoded message lie inside that buffer's memory.
    func decodedSharesReceiveBuffer(_ message: ClientMessage, bytes: (ClientMessage) -> ByteBuffer?) throws -> Bool {
        var received = ByteBuffer()
        try codec.encode(message, into: &received)
        let receivedMemory = received.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress!)..<(UInt(bitPattern: $0.baseAddress!) + UInt($0.count)) }
        var reading = received
        let decoded = try #require(try codec.decode(from: &reading, allocator: ByteBufferAllocator()))
        #expect(decoded == message)
        let value = try #require(bytes(decoded))
        let at = value.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress!) }
        return withExtendedLifetime(received) { receivedMemory.contains(at) }
    }

    @Test func aSessionTokenOwnsItsBytes() throws {
        let accepted = ClientMessage.loginAccepted(
            LoginAccepted(sessionId: 7, epoch: 3, serverRole: .primary, alternateServer: nil, sessionToken: token, heartbeatIntervalMs: 1000))
        #expect(try !decodedSharesReceiveBuffer(accepted) { if case .loginAccepted(let a) = $0 { a.sessionToken } else { nil } })

        let login = ClientMessage.login(LoginRequest(username: "op", credential: .sessionToken(token), clientInstance: "panel-1"))
        #expect(try !decodedSharesReceiveBuffer(login) {
            if case .login(let request) = $0, case .sessionToken(let kept) = request.credential { kept } else { nil }
        })

        let watch = ClientMessage.watch(Watch(sessionToken: token, epoch: 3))
        #expect(try !decodedSharesReceiveBuffer(watch) { if case .watch(let w) = $0 { w.sessionToken } else { nil } })
    }

    @Test func mediaAudioIsASliceOfTheReceivedBuffer() throws {
        let frame = ClientMessage.media(MediaFrame(streamId: 1, sequence: 2, timestamp: 960, audio: ByteBuffer(repeating: 0x55, count: 80)))
        #expect(try decodedSharesReceiveBuffer(frame) { if case .media(let m) = $0 { m.audio } else { nil } })
    }
}
