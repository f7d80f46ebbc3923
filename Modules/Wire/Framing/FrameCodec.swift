import NIOCore

/// Turns messages into frames and frames into messages, with no I/O of its own: the NIO
/// handlers, the fuzz target and the benchmarks all call this one implementation.
public struct FrameCodec<Message: WireMessage>: Sendable {
    public var configuration: WireConfiguration
    /// The version written into outgoing headers (negotiated by the hello exchange).
    public var version: UInt8
    public var supportedVersions: ClosedRange<UInt8>

    public init(
        configuration: WireConfiguration, version: UInt8 = WireProtocol.currentVersion,
        supportedVersions: ClosedRange<UInt8> = WireProtocol.supportedVersions
    ) {
        self.configuration = configuration
        self.version = version
        self.supportedVersions = supportedVersions
    }

    // MARK: Encoding

    /// Appends one frame to `buffer`. On error `buffer` is left as it was.
    public func encode(_ message: Message, into buffer: inout ByteBuffer) throws(WireError) {
        let headerIndex = buffer.writerIndex
        let payloadIndex = headerIndex + FrameHeader.size
        buffer.writeRepeatingByte(0, count: FrameHeader.size)
        do {
            try message.writePayload(to: &buffer)
        } catch {
            buffer.moveWriterIndex(to: headerIndex)
            throw error
        }
        var flags: FrameFlags = []
        let plainLength = buffer.writerIndex - payloadIndex
        // Send only what the receiver accepts: it caps the payload after inflation too, and a
        // payload that compresses below the frame limit (a 300 KiB token shrinks to 1.4 KiB)
        // would be refused there.
        guard plainLength <= configuration.maxDecompressedLength else {
            buffer.moveWriterIndex(to: headerIndex)
            throw .decompressedTooLarge(length: plainLength, limit: configuration.maxDecompressedLength)
        }
        if plainLength >= configuration.compressionThreshold, message.isCompressible,
            deflatePayload(in: &buffer, at: payloadIndex, length: plainLength)
        {
            flags.insert(.compressed)
        }
        let length = buffer.writerIndex - payloadIndex
        guard length <= configuration.maxFrameLength else {
            buffer.moveWriterIndex(to: headerIndex)
            throw .frameTooLarge(length: length, limit: configuration.maxFrameLength)
        }
        buffer.setFrameHeader(
            FrameHeader(version: version, flags: flags, type: message.messageType, length: UInt32(length)),
            at: headerIndex)
    }

    /// Replaces the plain payload with its compressed form when that is smaller (by at least
    /// one byte, length prefix included).
    private func deflatePayload(in buffer: inout ByteBuffer, at payloadIndex: Int, length: Int) -> Bool {
        let context = ZlibContext.current
        guard let deflater = context.deflater(level: configuration.compressionLevel) else { return false }
        let lengthPrefix = MemoryLayout<UInt32>.size
        // The largest compressed size worth sending. deflate is given one byte more: a single
        // Z_FINISH that exactly fills its buffer reports Z_OK, not Z_STREAM_END, so a stream
        // that fits the budget to the byte needs that spare byte to say it ended.
        let budget = length - lengthPrefix - 1
        guard budget > 0, length <= Int(UInt32.max) else { return false }
        return context.withScratch(capacity: budget + 1) { scratch in
            let compressedLength = buffer.withUnsafeReadableBytes { readable in
                let offset = payloadIndex - buffer.readerIndex
                return deflater.compress(UnsafeRawBufferPointer(rebasing: readable[offset..<(offset + length)]), into: scratch)
            }
            guard let compressedLength, compressedLength <= budget else { return false }
            buffer.moveWriterIndex(to: payloadIndex)
            buffer.writeInteger(UInt32(length))
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[..<compressedLength]))
            return true
        }
    }

    // MARK: Decoding

    /// Decodes the next message at the front of `buffer`, or returns nil when the buffer
    /// does not yet hold a whole frame (nothing is consumed then). Frames of unknown
    /// ignorable types are consumed and skipped.
    public func decode(from buffer: inout ByteBuffer, allocator: ByteBufferAllocator) throws(WireError) -> Message? {
        while let header = try buffer.peekFrameHeader(supported: supportedVersions) {
            let length = Int(header.length)
            // A plain payload is already its decompressed self, so both limits apply to it.
            let limit =
                header.flags.contains(.compressed)
                ? configuration.maxFrameLength
                : min(configuration.maxFrameLength, configuration.maxDecompressedLength)
            guard length <= limit else { throw .frameTooLarge(length: length, limit: limit) }
            guard buffer.readableBytes >= FrameHeader.size + length else { return nil }
            buffer.moveReaderIndex(forwardBy: FrameHeader.size)
            var payload = buffer.readSlice(length: length)!  // Length checked just above.
            if header.flags.contains(.compressed) {
                payload = try inflate(payload, allocator: allocator)
            }
            do {
                return try Message(type: header.type, payload: &payload)
            } catch .unknownMessageType(let type) where type.isIgnorable {
                continue
            }
        }
        return nil
    }

    /// The largest expansion deflate can achieve is about 1032:1; a declared size beyond
    /// that is a lie, refused before any memory is reserved for it.
    static var maximumDeflateRatio: Int { 1032 }

    private func inflate(_ compressed: ByteBuffer, allocator: ByteBufferAllocator) throws(WireError) -> ByteBuffer {
        var input = compressed
        let declared = Int(try input.readWireInteger("compressed.length", as: UInt32.self))
        guard declared <= configuration.maxDecompressedLength else {
            throw .decompressedTooLarge(length: declared, limit: configuration.maxDecompressedLength)
        }
        guard declared <= input.readableBytes * Self.maximumDeflateRatio + 64 else {
            throw .corruptCompressedData("declares \(declared) bytes, more than \(input.readableBytes) compressed bytes can hold")
        }
        var output = allocator.buffer(capacity: declared)
        let outcome = ZlibContext.current.withInflater { inflater -> Inflater.Outcome in
            guard let inflater else { return .corrupt("zlib could not allocate its state") }
            return input.withUnsafeReadableBytes { source in
                var result = Inflater.Outcome.corrupt("no output")
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: declared) { target in
                    // Never offer zlib more room than declared, whatever capacity the allocator gave.
                    result = inflater.decompress(source, into: UnsafeMutableRawBufferPointer(rebasing: target[..<declared]))
                    if case .complete(let produced) = result { return produced }
                    return 0
                }
                return result
            }
        }
        switch outcome {
        case .complete(let produced) where produced == declared:
            return output
        case .complete(let produced):
            throw .corruptCompressedData("inflates to \(produced) bytes but declares \(declared)")
        case .overflow:
            throw .corruptCompressedData("inflates past its declared \(declared) bytes")
        case .corrupt(let detail):
            throw .corruptCompressedData(detail)
        }
    }
}
