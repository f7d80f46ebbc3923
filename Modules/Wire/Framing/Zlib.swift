import CZlib

/// A raw-DEFLATE (RFC 1951) compressor that is reset and reused for every frame.
///
/// One instance lives per thread (see `ZlibContext`), never per connection: zlib's deflate
/// state is about 256 KiB and a server holds thousands of connections.
final class Deflater {
    private let stream: UnsafeMutablePointer<z_stream>
    let level: Int32

    init?(level: Int32) {
        self.level = level
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // windowBits -15: raw deflate, 32 KiB window; memLevel 8: zlib's default.
        guard vcom_deflateInit2(stream, level, -15, 8) == Z_OK else {
            stream.deallocate()
            return nil
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses all of `input` into `output`. Returns the compressed size, or nil when
    /// the result does not fit in `output` (the caller sizes `output` below the input size,
    /// so nil means compression would not pay off).
    func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        guard deflateReset(stream) == Z_OK, let inBase = input.baseAddress, let outBase = output.baseAddress else {
            return nil
        }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: inBase.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        stream.pointee.next_out = outBase.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = uInt(output.count)
        let status = deflate(stream, Z_FINISH)
        return status == Z_STREAM_END ? output.count - Int(stream.pointee.avail_out) : nil
    }
}

/// A raw-DEFLATE decompressor, reset for every frame, one per thread.
final class Inflater {
    enum Outcome: Equatable {
        case complete(produced: Int)
        /// The stream wants to produce more than the output can take.
        case overflow
        case corrupt(String)
    }

    private let stream: UnsafeMutablePointer<z_stream>

    init?() {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard vcom_inflateInit2(stream, -15) == Z_OK else {
            stream.deallocate()
            return nil
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Inflates `input` into exactly `output`; never writes past it. The whole input must
    /// be one complete stream: trailing bytes or a missing end are corruption.
    func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Outcome {
        guard inflateReset(stream) == Z_OK else { return .corrupt("inflate reset failed") }
        guard let inBase = input.baseAddress else { return .corrupt("empty compressed stream") }
        var spare: UInt8 = 0
        return withUnsafeMutablePointer(to: &spare) { sparePointer in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: inBase.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(input.count)
            stream.pointee.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self) ?? sparePointer
            stream.pointee.avail_out = uInt(output.count)
            var status = inflate(stream, Z_FINISH)
            let produced = output.count - Int(stream.pointee.avail_out)
            if status != Z_STREAM_END && stream.pointee.avail_out == 0 && (status == Z_OK || status == Z_BUF_ERROR) {
                // Output is full but the stream has not reported its end (the end-of-block
                // code may still sit in zlib's bit buffer). One byte of spare room tells a
                // stream that ends exactly here from one that would inflate past its size.
                stream.pointee.next_out = sparePointer
                stream.pointee.avail_out = 1
                status = inflate(stream, Z_FINISH)
                if stream.pointee.avail_out == 0 { return .overflow }
            }
            switch status {
            case Z_STREAM_END:
                guard stream.pointee.avail_in == 0 else { return .corrupt("bytes after the end of the stream") }
                return .complete(produced: produced)
            case Z_BUF_ERROR, Z_OK:
                return .corrupt("stream ends before its final block")
            case Z_DATA_ERROR:
                return .corrupt(stream.pointee.msg.map { String(cString: $0) } ?? "invalid deflate data")
            default:
                return .corrupt("inflate failed with status \(status)")
            }
        }
    }
}
