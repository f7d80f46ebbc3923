import Benchmark
import NIOCore
import Wire
import ZlibBaseline

/// A configuration snapshot as the peer link carries it: tens of KiB of structured text
/// (operators, party lines, panel keys), the kind of payload Wire compresses.
func realisticSnapshotText() -> String {
    var text = ""
    let lines = ["Fire-Ops", "Police-Dispatch", "EMS-North", "EMS-South", "Command", "Logistics", "Tower", "Maintenance"]
    for id in 0..<180 {
        text += "operator id=\(id) user=op\(id).\(lines[id % lines.count].lowercased()) display=\"Operator \(id)\" enabled=true\n"
        for slot in 0..<4 {
            let line = lines[(id + slot) % lines.count]
            text += "  key operator=\(id) slot=\(slot) \(slot % 2 == 0 ? "talk+listen" : "listen") partyline=\(line) \(slot == 0 ? "latching" : "momentary")\n"
        }
    }
    return text
}

let allocator = ByteBufferAllocator()
let clientCodec = FrameCodec<ClientMessage>(configuration: .client)
let peerCodec = FrameCodec<PeerMessage>(configuration: .peer)
let plainPeerCodec = FrameCodec<PeerMessage>(
    configuration: WireConfiguration(maxFrameLength: 16 << 20, maxDecompressedLength: 64 << 20, compressionThreshold: .max))

func encoded<M: WireMessage>(_ message: M, _ codec: FrameCodec<M>) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: 256)
    try! codec.encode(message, into: &buffer)
    return buffer
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 100,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )

    // 20 ms of Opus-sized audio: the frame a server decodes 50 times a second per talker.
    let media = ClientMessage.media(MediaFrame(streamId: 7, sequence: 1, timestamp: 960, audio: ByteBuffer(repeating: 0x55, count: 160)))
    let mediaFrame = encoded(media, clientCodec)

    Benchmark("small frame decode (media, 160 B)") { benchmark in
        for _ in benchmark.scaledIterations {
            var input = mediaFrame
            blackHole(try clientCodec.decode(from: &input, allocator: allocator))
        }
    }

    // Output buffers and the zlib baseline are made once, outside the measured closures, as
    // a connection's would be: samples measure the per-frame work only.
    nonisolated(unsafe) var smallOutput = allocator.buffer(capacity: 256)
    Benchmark("small frame encode (media, 160 B)") { benchmark in
        for _ in benchmark.scaledIterations {
            smallOutput.clear()
            try clientCodec.encode(media, into: &smallOutput)
            blackHole(smallOutput.readableBytes)
        }
    }


    var generator = SystemRandomNumberGenerator()
    let noise = ByteBuffer(bytes: (0..<65_536).map { _ in UInt8.random(in: 0...255, using: &generator) })
    let largePlain = PeerMessage.configSnapshot(
        ConfigSnapshot(epoch: 1, revision: 1, chain: .zero, totalLength: UInt64(noise.readableBytes), offset: 0, epochHistory: [], body: noise))
    let largePlainFrame = encoded(largePlain, peerCodec)

    Benchmark("large frame decode (64 KiB, plain)", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            var input = largePlainFrame
            blackHole(try peerCodec.decode(from: &input, allocator: allocator))
        }
    }

    nonisolated(unsafe) var largeOutput = allocator.buffer(capacity: 70_000)
    // Incompressible on purpose: measures the cost of trying deflate and falling back to plain.
    Benchmark("large frame encode (64 KiB, plain)", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            largeOutput.clear()
            try peerCodec.encode(largePlain, into: &largeOutput)
            blackHole(largeOutput.readableBytes)
        }
    }

    let snapshot = PeerMessage.configSnapshot(
        ConfigSnapshot(
            epoch: 3, revision: 4242, chain: .zero, totalLength: 0, offset: 0, epochHistory: [], body: ByteBuffer(string: realisticSnapshotText())))
    let snapshotFrame = encoded(snapshot, peerCodec)
    // The exact bytes Wire deflates: the snapshot's plain payload.
    var plainPayload = encoded(snapshot, plainPeerCodec)
    plainPayload.moveReaderIndex(forwardBy: 10)
    let payloadBytes = Array(plainPayload.readableBytesView)

    nonisolated(unsafe) var snapshotOutput = allocator.buffer(capacity: payloadBytes.count)
    Benchmark("snapshot encode (compressed, \(payloadBytes.count / 1024) KiB)", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            snapshotOutput.clear()
            try peerCodec.encode(snapshot, into: &snapshotOutput)
            blackHole(snapshotOutput.readableBytes)
        }
    }

    nonisolated(unsafe) let baseline = zlib_baseline_create(WireConfiguration.peer.compressionLevel)!
    nonisolated(unsafe) var baselineOutput = [UInt8](repeating: 0, count: payloadBytes.count)
    Benchmark("bare zlib compress (same bytes)", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            let size = payloadBytes.withUnsafeBytes { input in
                baselineOutput.withUnsafeMutableBytes { out in
                    zlib_baseline_compress(baseline, input.baseAddress, input.count, out.baseAddress, out.count)
                }
            }
            precondition(size > 0)
            blackHole(size)
        }
    }

    // What Wire adds to every connection: its three channel handlers. Bytes allocated to
    // create them (they hold no zlib state and no buffer while idle).
    Benchmark("handlers per connection", configuration: .init(metrics: [.mallocBytesCount, .mallocCountTotal], scalingFactor: .one)) {
        benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(MessageToByteHandler(WireFrameEncoder<ClientMessage>(configuration: .client)))
            blackHole(ByteToMessageHandler(WireFrameDecoder<ClientMessage>(configuration: .client)))
            blackHole(WireErrorHandler<ClientMessage>())
        }
    }

    Benchmark("snapshot decode (compressed)", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            var input = snapshotFrame
            blackHole(try peerCodec.decode(from: &input, allocator: allocator))
        }
    }
}
