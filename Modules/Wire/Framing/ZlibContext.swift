import NIOPosix

/// The zlib streams and scratch space of one thread.
///
/// Frames are encoded and decoded on their channel's event loop, and an event loop is one
/// thread, so a per-thread context gives one deflate state per event loop instead of one per
/// connection. Nothing compresses across frames, so sharing a stream between connections
/// leaks no data from one to another: the stream is reset before every frame.
final class ZlibContext: @unchecked Sendable {  // Only ever touched by the thread that owns it.
    private static let perThread = ThreadSpecificVariable<ZlibContext>()

    static var current: ZlibContext {
        if let context = perThread.currentValue { return context }
        let context = ZlibContext()
        perThread.currentValue = context
        return context
    }

    private var deflater: Deflater?
    private lazy var inflater: Inflater? = Inflater()
    private var scratch = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// Scratch space above this is released after use, so one large snapshot does not pin
    /// megabytes per thread for the life of the process.
    private static let scratchKeepLimit = 256 * 1024

    deinit { scratch.deallocate() }

    func deflater(level: Int32) -> Deflater? {
        if let deflater, deflater.level == level { return deflater }
        deflater = Deflater(level: level)
        return deflater
    }

    func withInflater<Result>(_ body: (Inflater?) -> Result) -> Result { body(inflater) }

    func withScratch<Result>(capacity: Int, _ body: (UnsafeMutableRawBufferPointer) -> Result) -> Result {
        if scratch.count < capacity {
            scratch.deallocate()
            scratch = .allocate(byteCount: capacity, alignment: 8)
        }
        defer {
            if scratch.count > Self.scratchKeepLimit {
                scratch.deallocate()
                scratch = UnsafeMutableRawBufferPointer(start: nil, count: 0)
            }
        }
        return body(UnsafeMutableRawBufferPointer(rebasing: scratch[..<capacity]))
    }
}
