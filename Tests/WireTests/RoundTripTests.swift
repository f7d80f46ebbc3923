import NIOCore
import PropertyBased
import Testing
import PairModel
import Wire

/// Every message of every conversation survives encode → decode unchanged, compressed or not.
@Suite struct RoundTripTests {
    static let configurations: [WireConfiguration] = [
        .peer,
        // Compress everything that can be: exercises the deflate path on small payloads too.
        WireConfiguration(maxFrameLength: 1 << 20, maxDecompressedLength: 1 << 20, compressionThreshold: 0),
    ]

    func roundTrip<M: WireMessage>(_ message: M, _ configuration: WireConfiguration) throws -> M? {
        let codec = FrameCodec<M>(configuration: configuration)
        var buffer = ByteBuffer()
        try codec.encode(message, into: &buffer)
        let decoded = try codec.decode(from: &buffer, allocator: ByteBufferAllocator())
        #expect(buffer.readableBytes == 0, "decoding must consume the whole frame")
        return decoded
    }

    @Test(arguments: 0..<RandomMessages.clientCases)
    func clientMessages(caseIndex: Int) async throws {
        await propertyCheck(count: 150, input: randomMessages { $0.clientMessage(caseIndex) }) { message throws in
            for configuration in Self.configurations {
                #expect(try roundTrip(message, configuration) == message)
            }
        }
    }

    @Test(arguments: 0..<RandomMessages.peerCases)
    func peerMessages(caseIndex: Int) async throws {
        await propertyCheck(count: 150, input: randomMessages { $0.peerMessage(caseIndex) }) { message throws in
            for configuration in Self.configurations {
                #expect(try roundTrip(message, configuration) == message)
            }
        }
    }

    @Test(arguments: 0..<RandomMessages.adminCases)
    func adminMessages(caseIndex: Int) async throws {
        await propertyCheck(count: 150, input: randomMessages { $0.adminMessage(caseIndex) }) { message throws in
            for configuration in Self.configurations {
                #expect(try roundTrip(message, configuration) == message)
            }
        }
    }

    /// The case indices above reach every message type of every conversation.
    @Test func generatorsCoverEveryType() {
        var random = RandomMessages(rng: Xoshiro(seed: (7, 7, 7, 7)))
        let client = Set((0..<RandomMessages.clientCases).map { random.clientMessage($0).messageType })
        let peer = Set((0..<RandomMessages.peerCases).map { random.peerMessage($0).messageType })
        let admin = Set((0..<RandomMessages.adminCases).map { random.adminMessage($0).messageType })
        #expect(client.count == RandomMessages.clientCases)
        #expect(peer.count == RandomMessages.peerCases)
        #expect(admin.count == RandomMessages.adminCases)
    }

    /// A run of frames in one buffer decodes in order, with compressed and plain frames mixed.
    @Test func consecutiveFrames() throws {
        var random = RandomMessages(rng: Xoshiro(seed: (42, 42, 42, 42)))
        let messages = (0..<200).map { _ in random.peerMessage(Int.random(in: 0..<RandomMessages.peerCases, using: &random.rng)) }
        let codec = FrameCodec<PeerMessage>(configuration: .peer)
        var buffer = ByteBuffer()
        for message in messages { try codec.encode(message, into: &buffer) }
        var decoded: [PeerMessage] = []
        while let message = try codec.decode(from: &buffer, allocator: ByteBufferAllocator()) { decoded.append(message) }
        #expect(decoded == messages)
    }

    /// The watch's warning flag rides after the old fields: a watch without it is the old
    /// layout byte for byte, and the old layout reads as "no warnings wanted".
    @Test func watchWarningFlagKeepsTheOldLayout() throws {
        let token = ByteBuffer(string: "token")
        var old = ByteBuffer()
        try Watch(sessionToken: token, epoch: 9).write(to: &old)
        var flagged = ByteBuffer()
        try Watch(sessionToken: token, epoch: 9, wantsWarnings: true).write(to: &flagged)
        #expect(flagged.readableBytes == old.readableBytes + 1)
        #expect(flagged.getSlice(at: flagged.readerIndex, length: old.readableBytes) == old)
        var reading = old
        #expect(try Watch(wire: &reading) == Watch(sessionToken: token, epoch: 9, wantsWarnings: false))
        reading = flagged
        #expect(try Watch(wire: &reading).wantsWarnings)
    }
}
