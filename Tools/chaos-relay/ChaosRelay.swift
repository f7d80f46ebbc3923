import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The chaos suite's stand-in for `tc netem`, which this machine's kernel lacks: a TCP relay
/// on the peer link that passes bytes through, delays them (with jitter, order kept), or
/// holds them (a stall: what a lost segment costs TCP until it is retransmitted). The mode
/// comes from a control file the suite rewrites: `pass`, `delay MS JITTER_MS` or `stall`.
/// With `--capture`, it also records every byte it passes (the end-to-end test that looks for
/// readable configuration on the peer link).
@main
struct ChaosRelay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos-relay", abstract: "A TCP relay that delays or stalls what it passes (the chaos suite's peer-link faults).")

    @Option(help: "host:port to listen on (port 0: any; the bound address is printed).") var listen: String
    @Option(help: "host:port to relay to.") var to: String
    @Option(help: "The control file: 'pass', 'delay MS JITTER_MS' or 'stall' (read every 20 ms; absent: pass).") var control: String
    @Option(help: "Append every byte relayed, both ways, to this file.") var capture: String?

    func run() async throws {
        guard let (listenHost, listenPort) = Self.split(listen), let (toHost, toPort) = Self.split(to) else {
            throw ValidationError("--listen and --to are host:port")
        }
        let shaping = Shaping(file: control)
        let recorder: FileHandle? = try capture.map { path in
            FileManager.default.createFile(atPath: path, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError("--capture: cannot write \(path)") }
            return handle
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(20)) { _ in shaping.refresh() }
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop)
                    .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .connect(host: toHost, port: toPort)
                    .flatMap { outbound in
                        let there = Direction(shaping: shaping, to: outbound, recorder: recorder)
                        let back = Direction(shaping: shaping, to: inbound, recorder: recorder)
                        return inbound.pipeline.addHandler(there).flatMap { outbound.pipeline.addHandler(back) }
                            .flatMap { inbound.setOption(.autoRead, value: true) }
                    }
            }
            .bind(host: listenHost, port: listenPort).get()
        FileHandle.standardOutput.write(Data("{\"relay\":\"\(listenHost):\(server.localAddress?.port ?? 0)\"}\n".utf8))
        try await server.closeFuture.get()
    }

    static func split(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        return (String(text[..<colon]), port)
    }
}

/// The current mode, from the control file.
final class Shaping: Sendable {
    enum Mode: Equatable, Sendable {
        case pass
        case delay(milliseconds: Int64, jitter: Int64)
        case stall
    }

    let file: String
    private let mode = NIOLockedValueBox(Mode.pass)

    init(file: String) { self.file = file }

    var current: Mode { mode.withLockedValue { $0 } }

    func refresh() {
        let words = ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "pass").split(whereSeparator: \.isWhitespace)
        let next: Mode
        switch words.first {
        case "delay": next = .delay(milliseconds: words.dropFirst().first.flatMap { Int64($0) } ?? 0, jitter: words.dropFirst(2).first.flatMap { Int64($0) } ?? 0)
        case "stall": next = .stall
        default: next = .pass
        }
        mode.withLockedValue { $0 = next }
    }
}

/// One direction of a relayed connection: what is read on this channel is written to `to`,
/// each chunk when it is due (never before an earlier chunk), none while stalled.
final class Direction: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let shaping: Shaping
    let to: Channel
    /// Shared by both directions of every connection, all on the relay's one loop.
    let recorder: FileHandle?
    private var queue: [(due: NIODeadline, bytes: ByteBuffer)] = []
    private var lastDue = NIODeadline.now()
    private var pump: RepeatedTask?

    init(shaping: Shaping, to: Channel, recorder: FileHandle?) {
        self.shaping = shaping
        self.to = to
        self.recorder = recorder
    }

    func handlerAdded(context: ChannelHandlerContext) {
        pump = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(2), delay: .milliseconds(2)) { [self] _ in drain() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var due = NIODeadline.now()
        if case .delay(let milliseconds, let jitter) = shaping.current {
            due = due + .milliseconds(milliseconds + (jitter > 0 ? Int64.random(in: -jitter...jitter) : 0))
        }
        due = max(due, lastDue)  // bytes of one connection never overtake each other
        lastDue = due
        let bytes = unwrapInboundIn(data)
        recorder?.write(Data(bytes.readableBytesView))
        queue.append((due, bytes))
        drain()
    }

    private func drain() {
        guard shaping.current != .stall else { return }
        let now = NIODeadline.now()
        var wrote = false
        while let first = queue.first, first.due <= now {
            queue.removeFirst()
            to.write(first.bytes, promise: nil)
            wrote = true
        }
        if wrote { to.flush() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pump?.cancel()
        drain()
        to.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
