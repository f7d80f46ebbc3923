import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing
import TransportSecurity
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// What the attacks of issue 24 need beyond a well-behaved client: connections from another
/// loopback address (the throttles count per source; 127.0.0.2 is a stranger, 127.0.0.1 the
/// legitimate user), raw sockets that say nothing or too much, and Wire conversations over TLS
/// that the client library would never hold.
enum Attacker {
    static let stranger = "127.0.0.2"

    /// A blocking TCP connection from `source`; nil when it cannot connect.
    static func connect(_ endpoint: Endpoint, from source: String = stranger) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = endpoint.port.bigEndian
        inet_pton(AF_INET, endpoint.host, &address.sin_addr)
        let ok = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0 && withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
        guard ok else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Whether the server closed `fd` (EOF or a reset) within `timeout`; what it sent is read
    /// and dropped.
    static func closedByServer(_ fd: Int32, within timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = max(1, Int32((deadline - ContinuousClock.now).milliseconds))
            guard poll(&poller, 1, left) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) { return true }
        }
        return false
    }

    /// `count` connections from `source` that never send a byte. The caller closes them.
    static func idleConnections(_ count: Int, to endpoint: Endpoint, from source: String = stranger) -> [Int32] {
        (0..<count).compactMap { _ in connect(endpoint, from: source) }
    }

    static func closeAll(_ fds: [Int32]) { for fd in fds { close(fd) } }
}

extension Duration {
    fileprivate var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// One Wire conversation with a server port, over TLS (trusting the test CA) or in clear, from
/// a chosen source address; frames are sent and read one by one, with a deadline on each read.
final class WireConversation<Message: WireMessage>: @unchecked Sendable {
    let channel: NIOAsyncChannel<Message, Message>
    private let outbound: NIOAsyncChannelOutboundWriter<Message>
    private let lock = NSLock()
    /// Frames read so far, then nil once the connection ended.
    private var received: [Message?] = []
    private var reader: Task<Void, Never>?

    static func open(
        _ endpoint: Endpoint, tls: ClientTLS? = PairFiles.clientTLS, from source: String = Attacker.stranger,
        configuration: WireConfiguration
    ) async throws -> WireConversation {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(to: try SocketAddress(ipAddress: source, port: 0))
            .connectTimeout(.seconds(5))
            .connect(host: endpoint.host, port: Int(endpoint.port)) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try tls.makeHandler(host: endpoint.host)) }
                    try channel.pipeline.syncOperations.addWireHandlers(for: Message.self, configuration: configuration)
                    return try NIOAsyncChannel<Message, Message>(wrappingChannelSynchronously: channel)
                }
            }
        return WireConversation(channel)
    }

    private init(_ channel: NIOAsyncChannel<Message, Message>) {
        self.channel = channel
        outbound = channel.outbound
        let inbound = channel.inbound
        reader = Task { [weak self] in
            do {
                for try await message in inbound { self?.append(message) }
            } catch {}
            self?.append(nil)
        }
    }

    private func append(_ message: Message?) {
        lock.lock()
        received.append(message)
        lock.unlock()
    }

    private func take() -> Message?? {
        lock.lock()
        defer { lock.unlock() }
        guard let first = received.first else { return .none }
        if first != nil { received.removeFirst() }
        return .some(first)
    }

    func send(_ message: Message) async throws { try await outbound.write(message) }

    /// Raw bytes on the connection, below Wire (a forged header, a partial frame).
    func sendRaw(_ bytes: [UInt8]) async throws {
        try await channel.channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// The next frame; nil when the connection closed or errored; throws `Timeout` after `timeout`.
    func next(timeout: Duration = .seconds(10)) async throws -> Message? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let taken = take() { return taken }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw Timeout()
    }

    /// Whether the server closed the connection within `timeout` (frames before the close are skipped).
    func closedByServer(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            do {
                if try await next(timeout: deadline - ContinuousClock.now) == nil { return true }
            } catch {
                return false
            }
        }
        return false
    }

    struct Timeout: Error {}

    func close() {
        outbound.finish()
        channel.channel.close(promise: nil)
        reader?.cancel()
    }

    deinit {
        outbound.finish()
        channel.channel.close(promise: nil)
    }
}

/// The client port's conversations.
extension WireConversation where Message == ClientMessage {
    /// Hello, then a login; the server's answer to it (accepted, refused, a goodbye, or nil).
    static func login(
        _ endpoint: Endpoint, username: String, credential: Credential, from source: String = Attacker.stranger,
        timeout: Duration = .seconds(10)
    ) async throws -> (answer: ClientMessage?, conversation: WireConversation) {
        let conversation = try await open(endpoint, from: source, configuration: .client)
        try await conversation.send(.hello(Hello(nodeId: "attack", software: "attack")))
        try await conversation.send(.login(LoginRequest(username: username, credential: credential, clientInstance: "attack")))
        while true {
            guard let message = try await conversation.next(timeout: timeout) else { return (nil, conversation) }
            switch message {
            case .hello: continue
            default: return (message, conversation)
            }
        }
    }
}

extension ClientMessage {
    var token: ByteBuffer? { if case .loginAccepted(let accepted) = self { accepted.sessionToken } else { nil } }
    var refusal: RefusalReason? { if case .loginRefused(let refused) = self { refused.reason } else { nil } }
    var isAccepted: Bool { token != nil }
}

/// A TLS connection below Wire: raw bytes out, and whether the server closed it. Trusts any
/// server; presents `identity` when given (a would-be primary at the peer port).
final class RawTLS: @unchecked Sendable {
    let channel: Channel
    private let collector: Collector

    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private let lock = NSLock()
        private var bytes: [UInt8] = []
        private var ended = false
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            lock.lock()
            bytes += buffer.readableBytesView
            lock.unlock()
        }
        func channelInactive(context: ChannelHandlerContext) {
            lock.lock()
            ended = true
            lock.unlock()
        }
        func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
        var state: (bytes: [UInt8], ended: Bool) {
            lock.lock()
            defer { lock.unlock() }
            return (bytes, ended)
        }
    }

    static func open(_ endpoint: Endpoint, presenting identity: IssuedIdentity? = nil, from source: String = Attacker.stranger) async throws -> RawTLS {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.certificateVerification = .none
        if let identity {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificatePEM.utf8)).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.privateKeyPEM.utf8), format: .pem))
        }
        let context = try NIOSSLContext(configuration: configuration)
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(to: try SocketAddress(ipAddress: source, port: 0))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: endpoint.host, port: Int(endpoint.port)).get()
        return RawTLS(channel: channel, collector: collector)
    }

    private init(channel: Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    func send(_ bytes: [UInt8]) async throws { try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get() }

    /// Whether the server closed the connection within `timeout`.
    func closedByServer(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if collector.state.ended { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return collector.state.ended
    }

    var received: [UInt8] { collector.state.bytes }

    func close() { channel.close(promise: nil) }
}

/// Frames below the codec: what a well-behaved sender never writes.
enum RawFrame {
    /// A frame header announcing `length` payload bytes of `type`.
    static func header(type: MessageType, length: UInt32, compressed: Bool = false) -> [UInt8] {
        [0x56, 0x43, 1, compressed ? 1 : 0, UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xFF)]
            + withUnsafeBytes(of: length.bigEndian, Array.init)
    }

    /// A whole frame of `type` holding a compressed payload that inflates to `inflated` zero
    /// bytes (a decompression bomb when large).
    static func bomb(type: MessageType, inflated: Int) throws -> [UInt8] {
        let zeros = [UInt8](repeating: 0, count: inflated)
        let deflated = try deflate(zeros)
        let payload = withUnsafeBytes(of: UInt32(inflated).bigEndian, Array.init) + deflated
        return header(type: type, length: UInt32(payload.count), compressed: true) + payload
    }

    /// Raw DEFLATE of `bytes`, with the system's zlib through Python (a separate implementation).
    static func deflate(_ bytes: [UInt8]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import sys,zlib; c=zlib.compressobj(9, zlib.DEFLATED, -15); sys.stdout.buffer.write(c.compress(sys.stdin.buffer.read())+c.flush())"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(bytes))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Array(data)
    }
}
