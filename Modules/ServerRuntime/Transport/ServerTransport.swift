import DequeModule
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS
import TransportSecurity

/// TLS for the server's ports (docs/security.md).
public struct TransportSettings: Sendable {
    /// The certificate, key and pair CA; reloaded when the files change.
    public var contexts: ServerTLSContexts
    /// The name the peer's certificate must carry (the primary's id on the secondary).
    public var peerName: String
    /// Off only on a closed network: the client port then speaks Wire in clear (the peer and
    /// admin ports never do while TLS is configured).
    public var clientsUseTLS = true
    /// How often the certificate files are checked for a renewal.
    public var reloadInterval: Duration = .seconds(10)
    /// TLS handshakes in progress at once on the client port; later connections wait their
    /// turn unread (see HandshakeGate).
    public var handshakeLimit = 128

    public init(contexts: ServerTLSContexts, peerName: String) {
        self.contexts = contexts
        self.peerName = peerName
    }
}

/// Puts the transport's handlers in front of the Wire handlers of every connection, and logs
/// why a connection was refused before any byte of Wire was read.
struct ServerTransport: Sendable {
    enum Port: String, Sendable { case clients = "client", admin, peer }

    let tls: TransportSettings?
    let logger: Logger
    /// Shared by every loop's client connections (nil without TLS on the client port).
    let gate: HandshakeGate?

    init(tls: TransportSettings?, logger: Logger) {
        self.tls = tls
        self.logger = logger
        gate = tls.flatMap { $0.clientsUseTLS ? HandshakeGate(limit: $0.handshakeLimit) : nil }
    }

    func usesTLS(_ port: Port) -> Bool {
        guard let tls else { return false }
        return port != .clients || tls.clientsUseTLS
    }

    /// For an accepted connection, on its event loop.
    func addAccepted(_ port: Port, to channel: Channel) throws {
        let remote = channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "an unknown address"
        let logger = logger
        let operations = channel.pipeline.syncOperations
        let level: Logger.Level = port == .clients ? .notice : .warning
        let refuse: @Sendable (String) -> Void = { why in logger.log(level: level, "\(port.rawValue) port: \(remote) refused: \(why)") }
        guard usesTLS(port), let tls else {
            try operations.addHandler(TransportSniffer(expecting: .plaintext, refuse: refuse))
            return
        }
        let loaded = tls.contexts.current
        try operations.addHandler(TransportSniffer(expecting: .tls, refuse: refuse))
        if port == .peer {
            let check = try PeerCertificateCheck(authorityPEM: loaded.authorityPEM, expectedName: tls.peerName)
            try operations.addHandler(
                NIOSSLServerHandler(
                    context: loaded.peerAccepting, customVerificationCallback: check.callback(report: { refuse("peer certificate: \($0)") }),
                    configuration: .init()))
        } else {
            if port == .clients, let gate {
                guard let ticket = gate.enter(channel) else {
                    refuse("\(gate.maximumWaiting) connections already wait for a TLS handshake")
                    channel.close(promise: nil)
                    return
                }
                try operations.addHandler(NIOSSLServerHandler(context: loaded.serving))
                // After the TLS handler: it sees the handshake's completion.
                try operations.addHandler(HandshakeSlot(gate: gate, ticket: ticket))
            } else {
                try operations.addHandler(NIOSSLServerHandler(context: loaded.serving))
            }
        }
        try operations.addHandler(HandshakeFailureLogger(report: { refuse("TLS handshake failed: \($0)") }))
    }

    /// For the primary's connection to its secondary (no gate: one connection at a time).
    static func addDialing(_ tls: TransportSettings?, logger: Logger, to channel: Channel, address: String) throws {
        guard let tls else { return }
        let loaded = tls.contexts.current
        let check = try PeerCertificateCheck(authorityPEM: loaded.authorityPEM, expectedName: tls.peerName)
        let refuse: @Sendable (String) -> Void = { why in logger.warning("peer link to \(address) refused: \(why)") }
        let operations = channel.pipeline.syncOperations
        try operations.addHandler(
            NIOSSLClientHandler(
                context: loaded.peerDialing, serverHostname: nil,
                customVerificationCallback: check.callback(report: { refuse("peer certificate: \($0)") }), configuration: .init()))
        try operations.addHandler(HandshakeFailureLogger(report: { refuse("TLS handshake failed: \($0)") }))
    }
}

/// Logs a TLS failure once with the channel's reason (BoringSSL's error or the alert the other
/// side sent: "certificate expired", "unknown CA", ...), then passes it on.
final class HandshakeFailureLogger: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let report: (String) -> Void
    private var reported = false

    init(report: @escaping (String) -> Void) { self.report = report }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A connection closed mid-handshake (a port scan, a refused plaintext client, a health
        // check, a client that gave up waiting in a storm) is not worth a line of its own: in
        // a login storm there were tens of thousands of them.
        if case NIOSSLError.uncleanShutdown = error {
            context.fireErrorCaught(error)
            return
        }
        if "\(error)".contains("EOF during handshake") {
            context.fireErrorCaught(error)
            return
        }
        if !reported, error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            reported = true
            report("\(error)")
        }
        context.fireErrorCaught(error)
    }
}

/// Admission for TLS handshakes on the client port. A handshake costs milliseconds of CPU on
/// both ends; when thousands of clients connect at once (a cold start of the pair, a network
/// that comes back) and every handshake is started, each takes longer than the clients' 3 s
/// greeting timeout, the clients abandon them and retry, and nobody gets in: measured, 10,000
/// clients at 2,000 a second logged in nobody for 30 s. So at most `limit` handshakes run at
/// once; later connections wait, unread, in arrival order, and start as earlier ones finish.
final class HandshakeGate: Sendable {
    /// One connection's place: waiting, running, or done. Only touched under the gate's lock.
    final class Ticket: @unchecked Sendable {
        enum Stage { case waiting, running, done }
        fileprivate var stage: Stage = .waiting
        let channel: Channel
        init(_ channel: Channel) { self.channel = channel }
    }

    let limit: Int
    private let state = NIOLockedValueBox((running: 0, waiting: Deque<Ticket>()))
    /// Beyond this many waiting, a connection is closed at once (the client retries later).
    let maximumWaiting: Int

    init(limit: Int, maximumWaiting: Int = 65_536) {
        self.limit = max(1, limit)
        self.maximumWaiting = maximumWaiting
    }

    /// On the channel's loop, before its first read: its ticket, or nil when refused.
    func enter(_ channel: Channel) -> Ticket? {
        let ticket = Ticket(channel)
        let admitted: Bool? = state.withLockedValue { state in
            if state.running < limit {
                state.running += 1
                ticket.stage = .running
                return true
            }
            guard state.waiting.count < maximumWaiting else { return nil }
            state.waiting.append(ticket)
            return false
        }
        guard let admitted else { return nil }
        if !admitted { try? channel.syncOptions?.setOption(.autoRead, value: false) }
        return ticket
    }

    /// The handshake finished, or the connection ended: exactly once per ticket.
    func leave(_ ticket: Ticket) {
        let next: Ticket? = state.withLockedValue { state in
            let wasRunning = ticket.stage == .running
            ticket.stage = .done
            guard wasRunning else { return nil }  // a waiting one is skipped when its turn comes
            state.running -= 1
            while let candidate = state.waiting.popFirst() {
                guard candidate.stage == .waiting else { continue }
                candidate.stage = .running
                state.running += 1
                return candidate
            }
            return nil
        }
        guard let next else { return }
        let channel = next.channel
        channel.setOption(.autoRead, value: true).whenComplete { _ in channel.read() }
    }

    var counts: (running: Int, waiting: Int) { state.withLockedValue { ($0.running, $0.waiting.count) } }
}

/// Holds the connection's ticket until its handshake completes or it closes, then hands it
/// back exactly once.
final class HandshakeSlot: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let gate: HandshakeGate
    private var ticket: HandshakeGate.Ticket?

    init(gate: HandshakeGate, ticket: HandshakeGate.Ticket) {
        self.gate = gate
        self.ticket = ticket
    }

    private func release() {
        guard let ticket else { return }
        self.ticket = nil
        gate.leave(ticket)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            release()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }
}
