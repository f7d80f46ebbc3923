import NIOCore
import Testing
@testable import Wire

/// The bytes on the wire, exactly as docs/wire-protocol.md describes them.
@Suite struct FrameLayoutTests {
    let allocator = ByteBufferAllocator()

    @Test func heartbeatFrameMatchesTheDocumentedBytes() throws {
        var buffer = ByteBuffer()
        try FrameCodec<ClientMessage>(configuration: .client).encode(.heartbeat(Heartbeat(sequence: 0x0102_0304)), into: &buffer)
        #expect(Array(buffer.readableBytesView) == [0x56, 0x43, 0x01, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04])
    }

    @Test func loginFrameMatchesTheDocumentedBytes() throws {
        var buffer = ByteBuffer()
        let login = LoginRequest(username: "ann", credential: .password("pw"), clientInstance: "c1")
        try FrameCodec<ClientMessage>(configuration: .client).encode(.login(login), into: &buffer)
        let expected: [UInt8] = [
            0x56, 0x43, 0x01, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x0E,  // header, 14-byte payload
            0x00, 0x03, 0x61, 0x6E, 0x6E,  // username "ann"
            0x01, 0x00, 0x02, 0x70, 0x77,  // credential kind 1 (password), "pw"
            0x00, 0x02, 0x63, 0x31,  // clientInstance "c1"
        ]
        #expect(Array(buffer.readableBytesView) == expected)
    }

    @Test func largeCompressiblePayloadIsDeflatedAndFlagged() throws {
        let text = String(repeating: "operator ann talks on party line Fire-Ops; ", count: 200)
        let message = PeerMessage.licence(LicenceTransfer(text: text))
        let codec = FrameCodec<PeerMessage>(configuration: .peer)
        var buffer = ByteBuffer()
        try codec.encode(message, into: &buffer)
        let header = try #require(try buffer.peekFrameHeader(supported: 1...1))
        #expect(header.flags == .compressed)
        #expect(Int(header.length) < text.utf8.count / 5)
        // The compressed payload starts with the uncompressed length: 2-byte prefix + text.
        #expect(buffer.getInteger(at: FrameHeader.size, as: UInt32.self) == UInt32(2 + text.utf8.count))
        #expect(try codec.decode(from: &buffer, allocator: allocator) == message)
    }

    @Test func payloadBelowThresholdIsSentPlain() throws {
        var buffer = ByteBuffer()
        let message = PeerMessage.licence(LicenceTransfer(text: String(repeating: "a", count: 1000)))
        try FrameCodec<PeerMessage>(configuration: .peer).encode(message, into: &buffer)
        #expect(try buffer.peekFrameHeader(supported: 1...1)?.flags == [])
    }

    @Test func incompressiblePayloadIsSentPlain() throws {
        var generator = SystemRandomNumberGenerator()
        let noise = ByteBuffer(bytes: (0..<4000).map { _ in UInt8.random(in: 0...255, using: &generator) })
        var buffer = ByteBuffer()
        let message = PeerMessage.configSnapshot(
            ConfigSnapshot(epoch: 1, revision: 2, chain: .zero, totalLength: 4000, offset: 0, epochHistory: [], body: noise))
        try FrameCodec<PeerMessage>(configuration: .peer).encode(message, into: &buffer)
        #expect(try buffer.peekFrameHeader(supported: 1...1)?.flags == [])
        #expect(try FrameCodec<PeerMessage>(configuration: .peer).decode(from: &buffer, allocator: allocator) == message)
    }

    @Test func mediaIsNeverCompressed() throws {
        let silence = ByteBuffer(repeating: 0, count: 1920)
        var buffer = ByteBuffer()
        let message = ClientMessage.media(MediaFrame(streamId: 1, sequence: 2, timestamp: 3, audio: silence))
        try FrameCodec<ClientMessage>(configuration: .client).encode(message, into: &buffer)
        #expect(try buffer.peekFrameHeader(supported: 1...1)?.flags == [])
    }

    @Test func encodingAboveTheFrameLimitFailsAndLeavesTheBufferUntouched() throws {
        let configuration = WireConfiguration(maxFrameLength: 100, maxDecompressedLength: 10_000, compressionThreshold: 100_000)
        var buffer = ByteBuffer(string: "earlier")
        let message = PeerMessage.licence(LicenceTransfer(text: String(repeating: "x", count: 500)))
        #expect(throws: WireError.frameTooLarge(length: 502, limit: 100)) {
            try FrameCodec<PeerMessage>(configuration: configuration).encode(message, into: &buffer)
        }
        #expect(String(buffer: buffer) == "earlier")
    }

    @Test func stringLongerThanItsPrefixFailsToEncode() {
        var buffer = ByteBuffer()
        let message = ClientMessage.login(LoginRequest(username: String(repeating: "u", count: 70_000), credential: .password(""), clientInstance: ""))
        #expect(throws: WireError.fieldTooLong(field: "login.username", length: 70_000, limit: 65_535)) {
            try FrameCodec<ClientMessage>(configuration: .peer).encode(message, into: &buffer)
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test func goodbyeDetailIsClippedOnACharacterBoundary() throws {
        let goodbye = Goodbye(reason: .protocolError, detail: String(repeating: "ü", count: 600))
        var buffer = ByteBuffer()
        try goodbye.write(to: &buffer)
        let decoded = try Goodbye(wire: &buffer)
        #expect(decoded.detail == String(repeating: "ü", count: 512))
    }

    @Test func helloNegotiatesTheHighestSharedVersion() {
        #expect(Hello(versions: 1...3, nodeId: "a", software: "").negotiatedVersion(with: 1...2) == 2)
        #expect(Hello(versions: 2...3, nodeId: "a", software: "").negotiatedVersion(with: 1...1) == nil)
        #expect(Hello(versions: 1...1, nodeId: "a", software: "").negotiatedVersion(with: 1...1) == 1)
        var inverted = Hello(nodeId: "a", software: "")
        inverted.minVersion = 3
        inverted.maxVersion = 1
        #expect(inverted.negotiatedVersion(with: 1...3) == nil)
    }
}

/// Issue 10: what a client written from the documentation alone found.
@Suite struct SenderLimitTests {
    @Test func aSenderRefusesAPayloadTheReceiverWouldRefuseAfterInflating() throws {
        // 300 KiB of token compresses far below the 64 KiB frame limit, but inflates past the
        // receiver's 256 KiB cap: the sender must refuse it, with a typed error.
        let token = ByteBuffer(repeating: 0x41, count: 300 << 10)
        let message = ClientMessage.loginAccepted(
            LoginAccepted(sessionId: 1, epoch: 2, serverRole: .primary, alternateServer: nil, sessionToken: token, heartbeatIntervalMs: 1000))
        var buffer = ByteBuffer(string: "before")
        #expect(throws: WireError.decompressedTooLarge(length: (300 << 10) + 26, limit: 256 << 10)) {
            try FrameCodec<ClientMessage>(configuration: .client).encode(message, into: &buffer)
        }
        #expect(buffer == ByteBuffer(string: "before"), "nothing half-written")
    }

    /// The size raw deflate at level 1 gives `bytes`, with room to spare.
    func deflatedSize(_ bytes: [UInt8]) throws -> Int {
        let deflater = try #require(Deflater(level: 1))
        var output = [UInt8](repeating: 0, count: bytes.count * 2 + 64)
        return try #require(bytes.withUnsafeBytes { input in output.withUnsafeMutableBytes { deflater.compress(input, into: $0) } })
    }

    @Test func aPayloadThatDeflatesOneByteSmallerGoesCompressed() throws {
        // Random bytes do not compress (deflate adds a few bytes); each byte of a trailing run
        // saves about one. Lengthen the run until deflate plus its 4-byte length prefix is
        // exactly one byte below the plain payload.
        var generator = SystemRandomNumberGenerator()
        let codec = FrameCodec<PeerMessage>(configuration: .peer)
        var gains: [Int] = []
        for _ in 0..<20 {
            let noise = (0..<1_200).map { _ in UInt8.random(in: 0...255, using: &generator) }
            for run in 0..<64 {
                let body = noise + [UInt8](repeating: 0x61, count: run)
                let message = PeerMessage.configSnapshot(
                    ConfigSnapshot(epoch: 1, revision: 1, chain: .zero, totalLength: 0, offset: 0, epochHistory: [], body: ByteBuffer(bytes: body)))
                var plain = ByteBuffer()
                try message.writePayload(to: &plain)
                let gain = plain.readableBytes - 4 - (try deflatedSize(Array(plain.readableBytesView)))
                gains.append(gain)
                guard gain == 1 else { continue }
                var frame = ByteBuffer()
                try codec.encode(message, into: &frame)
                let header = try #require(try frame.peekFrameHeader(supported: 1...1))
                #expect(header.flags.contains(.compressed), "one byte smaller is smaller")
                #expect(Int(header.length) == plain.readableBytes - 1)
                #expect(try codec.decode(from: &frame, allocator: ByteBufferAllocator()) == message)
                return
            }
        }
        Issue.record("no payload deflating to exactly one byte less was found (gains seen: \(Set(gains).sorted().prefix(30)))")
    }
}
