import NIOCore
import Testing
@testable import Wire

/// Every kind of bad input yields a typed error, never a crash, a hang or unbounded memory.
@Suite struct BadInputTests {
    let allocator = ByteBufferAllocator()
    let client = FrameCodec<ClientMessage>(configuration: .client)
    let peer = FrameCodec<PeerMessage>(configuration: .peer)

    func frame(version: UInt8 = 1, flags: UInt8 = 0, type: UInt16, payload: [UInt8], length: UInt32? = nil) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(FrameHeader.magic)
        buffer.writeInteger(version)
        buffer.writeInteger(flags)
        buffer.writeInteger(type)
        buffer.writeInteger(length ?? UInt32(payload.count))
        buffer.writeBytes(payload)
        return buffer
    }

    func decodeClient(_ buffer: ByteBuffer) throws(WireError) -> ClientMessage? {
        var buffer = buffer
        return try client.decode(from: &buffer, allocator: allocator)
    }

    func decodePeer(_ buffer: ByteBuffer, codec: FrameCodec<PeerMessage>? = nil) throws(WireError) -> PeerMessage? {
        var buffer = buffer
        return try (codec ?? peer).decode(from: &buffer, allocator: allocator)
    }

    /// A compressed licence frame whose payload inflates to 20 000 bytes (2-byte prefix + text).
    func compressedLicenceFrame() throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try peer.encode(.licence(LicenceTransfer(text: String(repeating: "Fire-Ops ", count: 2222))), into: &buffer)
        #expect(buffer.getInteger(at: 3, as: UInt8.self) == FrameFlags.compressed.rawValue)
        return buffer
    }

    @Test func wrongMagicFailsOnTheFirstTwoBytes() {
        #expect(throws: WireError.badMagic(0x4745)) { try decodeClient(ByteBuffer(string: "GE")) }
        #expect(throws: WireError.badMagic(0x4745)) { try decodeClient(ByteBuffer(string: "GET / HTTP/1.1\r\n")) }
    }

    @Test func unknownVersionIsRefusedNamingWhatIsSupported() {
        #expect(throws: WireError.unsupportedVersion(2, supported: 1...1)) {
            try decodeClient(frame(version: 2, type: 0x0104, payload: [0, 0, 0, 1]))
        }
        #expect(throws: WireError.unsupportedVersion(0, supported: 1...1)) { try decodeClient(frame(version: 0, type: 0x0104, payload: [])) }
    }

    @Test func reservedFlagsAreRefused() {
        #expect(throws: WireError.reservedFlags(0x82)) { try decodeClient(frame(flags: 0x82, type: 0x0104, payload: [0, 0, 0, 1])) }
    }

    @Test func lengthAboveTheCapIsRefusedBeforeThePayloadArrives() {
        // Only the header is here: the decoder must not wait for (or buffer) 4 GiB.
        let header = frame(type: 0x0104, payload: [], length: UInt32.max)
        #expect(throws: WireError.frameTooLarge(length: Int(UInt32.max), limit: 64 << 10)) { try decodeClient(header) }
    }

    @Test func truncatedFrameIsIncompleteNotAnError() throws {
        let whole = frame(type: 0x0104, payload: [0, 0, 0, 9])
        for cut in 0..<whole.readableBytes {
            var partial = whole.getSlice(at: 0, length: cut)!
            #expect(try client.decode(from: &partial, allocator: allocator) == nil)
            #expect(partial.readableBytes == cut, "an incomplete frame must not be consumed")
        }
    }

    @Test func payloadShorterThanItsFieldsIsATypedError() {
        #expect(throws: WireError.truncatedPayload(field: "heartbeat.sequence")) {
            try decodeClient(frame(type: 0x0104, payload: [0, 0, 1]))
        }
        // A string whose length prefix runs past the payload.
        #expect(throws: WireError.truncatedPayload(field: "login.username")) {
            try decodeClient(frame(type: 0x0101, payload: [0x00, 0x10, 0x61]))
        }
        // A byte string announcing 4 GiB inside a 20-byte payload.
        #expect(throws: WireError.truncatedPayload(field: "media.audio")) {
            try decodeClient(frame(type: 0x0106, payload: [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4]))
        }
    }

    @Test func bytesAfterTheKnownFieldsAreIgnoredForForwardCompatibility() throws {
        // A newer peer may append fields to a message; an older one reads what it knows.
        #expect(try decodeClient(frame(type: 0x0104, payload: [0, 0, 0, 7, 0xAA, 0xBB])) == .heartbeat(Heartbeat(sequence: 7)))
    }

    @Test func unknownTypeIsAnErrorUnlessMarkedIgnorable() throws {
        #expect(throws: WireError.unknownMessageType(MessageType(0x0199))) { try decodeClient(frame(type: 0x0199, payload: [])) }
        // A peer-link type on a client connection is unknown there too.
        #expect(throws: WireError.unknownMessageType(PeerMessage.Types.licence)) {
            try decodeClient(frame(type: 0x0203, payload: [0, 0]))
        }
        var stream = frame(type: 0x8123, payload: [1, 2, 3])
        stream.writeImmutableBuffer(frame(type: 0x0104, payload: [0, 0, 0, 5]))
        #expect(try client.decode(from: &stream, allocator: allocator) == .heartbeat(Heartbeat(sequence: 5)))
        #expect(stream.readableBytes == 0)
    }

    @Test func invalidUTF8IsRefusedNotRepaired() {
        for bad: [UInt8] in [[0xC3, 0x28], [0xFF], [0xED, 0xA0, 0x80], [0xE2, 0x82]] {
            let payload: [UInt8] = [0, UInt8(bad.count)] + bad + [1, 0, 0, 0, 0]
            #expect(throws: WireError.invalidUTF8(field: "login.username")) { try decodeClient(frame(type: 0x0101, payload: payload)) }
        }
    }

    @Test func outOfRangeCodesAreRefused() {
        #expect(throws: WireError.invalidValue(field: "login.credentialKind", value: 9)) {
            try decodeClient(frame(type: 0x0101, payload: [0, 1, 0x61, 9]))
        }
        #expect(throws: WireError.invalidValue(field: "keyChange.pressed", value: 2)) {
            try decodeClient(frame(type: 0x0105, payload: [1, 1, 0, 0, 0, 7, 2]))
        }
        #expect(throws: WireError.invalidValue(field: "loginAccepted.serverRole", value: 0)) {
            try decodeClient(frame(type: 0x0102, payload: [UInt8](repeating: 0, count: 17)))
        }
    }

    @Test func countsThatCannotFitAreRefusedBeforeAnyAllocation() throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32.max)
        buffer.writeBytes([1, 2, 3, 4])
        #expect(throws: WireError.countTooLarge(field: "items", count: UInt32.max, available: 4)) {
            try buffer.readWireCount("items", minimumElementSize: 1)
        }
        var fits = ByteBuffer()
        fits.writeInteger(UInt32(2))
        fits.writeBytes([0, 0, 0, 0, 0, 0, 0, 0])
        #expect(try fits.readWireCount("items", minimumElementSize: 4) == 2)
    }

    // MARK: Compression

    @Test func declaredSizeAboveTheCapIsRefusedBeforeInflating() throws {
        let small = FrameCodec<PeerMessage>(configuration: WireConfiguration(maxFrameLength: 1 << 20, maxDecompressedLength: 10_000))
        #expect(throws: WireError.decompressedTooLarge(length: 20_000, limit: 10_000)) {
            try decodePeer(try compressedLicenceFrame(), codec: small)
        }
    }

    @Test func bombThatLiesAboutItsSizeStopsAtTheDeclaredSize() throws {
        // Declares fewer bytes than it inflates to (20 000); the second lie is within the
        // allocator's rounding of the output buffer, so only an exact cap catches it.
        for declared: UInt32 in [100, 19_990] {
            var bomb = try compressedLicenceFrame()
            bomb.setInteger(declared, at: FrameHeader.size)
            #expect(throws: WireError.corruptCompressedData("inflates past its declared \(declared) bytes")) { try decodePeer(bomb) }
        }
    }

    @Test func declaredSizeBeyondDeflatesMaximumRatioIsRefused() throws {
        let payload: [UInt8] = [0x00, 0x10, 0x00, 0x00, 0x03, 0x00]  // declares 1 MiB from 2 bytes
        #expect(throws: WireError.corruptCompressedData("declares 1048576 bytes, more than 2 compressed bytes can hold")) {
            try decodePeer(frame(flags: 1, type: 0x0203, payload: payload))
        }
    }

    @Test func corruptDeflateDataIsRefused() throws {
        // Block type 3 is reserved in RFC 1951.
        #expect(throws: WireError.corruptCompressedData("invalid block type")) {
            try decodePeer(frame(flags: 1, type: 0x0203, payload: [0, 0, 0, 10, 0xFF, 0xFF, 0xFF, 0xFF]))
        }
    }

    @Test func truncatedDeflateStreamIsRefused() throws {
        let whole = try compressedLicenceFrame()
        let length = Int(whole.getInteger(at: 6, as: UInt32.self)!)
        let cut = whole.getSlice(at: 0, length: FrameHeader.size + length - 8)!
        var shortened = ByteBuffer()
        shortened.writeImmutableBuffer(cut)
        shortened.setInteger(UInt32(length - 8), at: 6)
        #expect(throws: WireError.corruptCompressedData("stream ends before its final block")) { try decodePeer(shortened) }
    }

    @Test func bytesAfterTheDeflateStreamAreRefused() throws {
        let whole = try compressedLicenceFrame()
        let length = Int(whole.getInteger(at: 6, as: UInt32.self)!)
        var padded = whole
        padded.writeBytes([0, 0, 0])
        padded.setInteger(UInt32(length + 3), at: 6)
        #expect(throws: WireError.corruptCompressedData("bytes after the end of the stream")) { try decodePeer(padded) }
    }

    @Test func compressedPayloadWithoutItsLengthPrefixIsRefused() {
        #expect(throws: WireError.truncatedPayload(field: "compressed.length")) {
            try decodePeer(frame(flags: 1, type: 0x0203, payload: [0, 0]))
        }
    }

    @Test func streamShorterThanItsDeclaredSizeIsRefused() throws {
        var frame = try compressedLicenceFrame()
        let declared = frame.getInteger(at: FrameHeader.size, as: UInt32.self)!
        frame.setInteger(declared + 10, at: FrameHeader.size)
        #expect(throws: WireError.corruptCompressedData("inflates to \(declared) bytes but declares \(declared + 10)")) {
            try decodePeer(frame)
        }
    }

    /// After every kind of failure the per-thread zlib streams still work.
    @Test func zlibStateRecoversAfterErrors() throws {
        _ = try? decodePeer(frame(flags: 1, type: 0x0203, payload: [0, 0, 0, 10, 0xFF, 0xFF, 0xFF, 0xFF]))
        var bomb = try compressedLicenceFrame()
        bomb.setInteger(UInt32(100), at: FrameHeader.size)
        _ = try? decodePeer(bomb)
        let good = try compressedLicenceFrame()
        #expect(try decodePeer(good) != nil)
    }
}
