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

/// The ports of a server, as the transport knows them.
public enum ServerPort: String, Sendable { case clients = "client", admin, peer }

/// What stands between the socket and the Wire handlers of every connection (TLS, or not): the
/// seam a test substitutes to see which connections the runtime makes.
public protocol ConnectionSecuring: Sendable {
    /// For an accepted connection, on its event loop, before the Wire handlers.
    func addAccepted(_ port: ServerPort, to channel: Channel) throws
    /// For the primary's connection to its secondary.
    func addDialing(to channel: Channel, address: String, logger: Logger) throws
}

/// Puts the transport's handlers in front of the Wire handlers of every connection, and logs
/// why a connection was refused before any byte of Wire was read.
struct ServerTransport: ConnectionSecuring {
    typealias Port = ServerPort

    let tls: TransportSettings?
    let refusals: RefusalLog
    /// Shared by every loop's client connections (nil without TLS on the client port).
    let gate: HandshakeGate?

    init(tls: TransportSettings?, refusals: RefusalLog) {
        self.tls = tls
        self.refusals = refusals
        gate = tls.flatMap { $0.clientsUseTLS ? HandshakeGate(limit: $0.handshakeLimit) : nil }
    }

    func usesTLS(_ port: Port) -> Bool {
        guard let tls else { return false }
        return port != .clients || tls.clientsUseTLS
    }

    /// For an accepted connection, on its event loop.
    func addAccepted(_ port: Port, to channel: Channel) throws {
        let source = sourceKey(channel.remoteAddress)
        let refusals = refusals
        let operations = channel.pipeline.syncOperations
        let level: Logger.Level = port == .clients ? .notice : .warning
        // Logged once per source and kind a minute, counted always (RefusalLog).
        let refusal = { (kind: String) -> @Sendable (String) -> Void in
            { why in refusals.refused(port: port.rawValue, source: source, reason: kind, detail: why, level: level) }
        }
        guard usesTLS(port), let tls else {
            try operations.addHandler(TransportSniffer(expecting: .plaintext, refuse: refusal("wrong_transport")))
            return
        }
        let loaded = tls.contexts.current
        try operations.addHandler(TransportSniffer(expecting: .tls, refuse: refusal("wrong_transport")))
        let refuseHandshake = refusal("tls_handshake")
        if port == .peer {
            let check = try PeerCertificateCheck(authorityPEM: loaded.authorityPEM, expectedName: tls.peerName)
            let refuseCertificate = refusal("peer_certificate")
            try operations.addHandler(
                NIOSSLServerHandler(
                    context: loaded.peerAccepting, customVerificationCallback: check.callback(report: { refuseCertificate("peer certificate: \($0)") }),
                    configuration: .init()))
        } else {
            if port == .clients, let gate {
                let ticket = HandshakeGate.Ticket(channel, source: source)
                try operations.addHandler(HandshakeTurn(gate: gate, ticket: ticket, refuse: refusal("handshake_queue_full")))
                try operations.addHandler(NIOSSLServerHandler(context: loaded.serving))
                // After the TLS handler: it sees the handshake's completion.
                try operations.addHandler(HandshakeDone(gate: gate, ticket: ticket))
            } else {
                try operations.addHandler(NIOSSLServerHandler(context: loaded.serving))
            }
        }
        try operations.addHandler(HandshakeFailureLogger(report: { refuseHandshake("TLS handshake failed: \($0)") }))
    }

    /// For the primary's connection to its secondary (no gate: one connection at a time).
    func addDialing(to channel: Channel, address: String, logger: Logger) throws {
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
/// once; later ones wait, unread, in arrival order, and start as earlier ones finish.
///
/// A place is taken when the ClientHello arrives, not at the connect: 400 connections that
/// never sent one held every place, and real clients waited behind them (token logins took
/// 2-3 s instead of 44 ms). A connection that sends nothing is closed by the port's first-bytes
/// deadline (`PortLimits`) without ever holding a place.
///
/// Fair between sources: one source runs at most a quarter of the handshakes, and its waiting
/// ones take turns with other sources' (round robin), so a flood from one address does not
/// queue ahead of everyone else.
final class HandshakeGate: Sendable {
    /// One connection's place: waiting, running, or done. Only touched under the gate's lock.
    final class Ticket: @unchecked Sendable {
        enum Stage { case outside, waiting, running, done }
        fileprivate var stage: Stage = .outside
        let channel: Channel
        let source: String
        /// Run on the channel's loop when a waiting ticket's turn comes.
        var onTurn: (@Sendable () -> Void)?
        init(_ channel: Channel, source: String? = nil) {
            self.channel = channel
            self.source = source ?? sourceKey(channel.remoteAddress)
        }
    }

    private struct State {
        var running = 0
        var runningPerSource: [String: Int] = [:]
        var waiting: [String: Deque<Ticket>] = [:]
        /// Sources with waiting tickets, in turn order.
        var turns = Deque<String>()
        var waitingCount = 0
    }

    let limit: Int
    let perSource: Int
    private let state = NIOLockedValueBox(State())
    /// Beyond this many waiting, a connection is closed at once (the client retries later).
    let maximumWaiting: Int

    init(limit: Int, maximumWaiting: Int = 65_536) {
        self.limit = max(1, limit)
        perSource = max(1, limit / 4)
        self.maximumWaiting = maximumWaiting
    }

    /// The first bytes of `ticket`'s handshake arrived: true when it may start now, false when
    /// it waits its turn (`onTurn` runs then), nil when the line is full.
    func enter(_ ticket: Ticket) -> Bool? {
        state.withLockedValue { state in
            guard ticket.stage == .outside else { return ticket.stage == .running }
            let source = ticket.source
            if state.running < limit, state.runningPerSource[source, default: 0] < perSource {
                state.running += 1
                state.runningPerSource[source, default: 0] += 1
                ticket.stage = .running
                return true
            }
            guard state.waitingCount < maximumWaiting else {
                ticket.stage = .done
                return nil
            }
            ticket.stage = .waiting
            if state.waiting[source] == nil { state.turns.append(source) }
            state.waiting[source, default: []].append(ticket)
            state.waitingCount += 1
            return false
        }
    }

    /// The handshake finished, or the connection ended: exactly once per ticket counts.
    func leave(_ ticket: Ticket) {
        let next: [Ticket] = state.withLockedValue { state in
            let wasRunning = ticket.stage == .running
            let wasWaiting = ticket.stage == .waiting
            ticket.stage = .done
            if wasWaiting { state.waitingCount -= 1 }  // skipped when its turn comes
            guard wasRunning else { return [] }
            state.running -= 1
            let left = state.runningPerSource[ticket.source, default: 1] - 1
            state.runningPerSource[ticket.source] = left > 0 ? left : nil
            return Self.grant(&state, limit: limit, perSource: perSource)
        }
        for ticket in next {
            guard let onTurn = ticket.onTurn else { continue }
            ticket.channel.eventLoop.execute(onTurn)
        }
    }

    /// Starts waiting tickets while places are free, one source at a time in turn.
    private static func grant(_ state: inout State, limit: Int, perSource: Int) -> [Ticket] {
        var granted: [Ticket] = []
        var passes = state.turns.count
        while state.running < limit, passes > 0, let source = state.turns.popFirst() {
            passes -= 1
            guard var line = state.waiting[source] else { continue }
            while let first = line.first, first.stage != .waiting { line.removeFirst() }
            guard let candidate = line.first else {
                state.waiting[source] = nil
                continue
            }
            if state.runningPerSource[source, default: 0] < perSource {
                line.removeFirst()
                candidate.stage = .running
                state.running += 1
                state.runningPerSource[source, default: 0] += 1
                state.waitingCount -= 1
                granted.append(candidate)
                passes = state.turns.count + 1  // a place was used: every source gets a look again
            }
            state.waiting[source] = line.isEmpty ? nil : line
            if !line.isEmpty { state.turns.append(source) }
        }
        return granted
    }

    var counts: (running: Int, waiting: Int) { state.withLockedValue { ($0.running, $0.waitingCount) } }
}

/// Before the TLS handler: takes the connection's place in the gate when its first bytes (the
/// ClientHello) arrive, and holds them, with reading paused, until its turn comes.
final class HandshakeTurn: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let gate: HandshakeGate
    let ticket: HandshakeGate.Ticket
    let refuse: @Sendable (String) -> Void
    private var held: [NIOAny] = []
    private var waiting = false
    private var started = false

    init(gate: HandshakeGate, ticket: HandshakeGate.Ticket, refuse: @escaping @Sendable (String) -> Void) {
        self.gate = gate
        self.ticket = ticket
        self.refuse = refuse
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        ticket.onTurn = { bound.value.0.turnCame(context: bound.value.1) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if started {
            context.fireChannelRead(data)
            return
        }
        if waiting {
            held.append(data)
            return
        }
        switch gate.enter(ticket) {
        case true?:
            started = true
            context.fireChannelRead(data)
        case false?:
            waiting = true
            held.append(data)
            context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
        case nil:
            refuse("\(gate.maximumWaiting) connections already wait for a TLS handshake")
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if started { context.fireChannelReadComplete() }
    }

    private func turnCame(context: ChannelHandlerContext) {
        guard waiting, context.channel.isActive else { return }
        waiting = false
        started = true
        let bytes = held
        held = []
        for data in bytes { context.fireChannelRead(data) }
        context.fireChannelReadComplete()
        context.channel.setOption(.autoRead, value: true).whenFailure { _ in }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        held = []
        gate.leave(ticket)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticket.onTurn = nil
        gate.leave(ticket)
    }
}

/// After the TLS handler: gives the connection's place back when its handshake completes.
final class HandshakeDone: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let gate: HandshakeGate
    let ticket: HandshakeGate.Ticket

    init(gate: HandshakeGate, ticket: HandshakeGate.Ticket) {
        self.gate = gate
        self.ticket = ticket
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            gate.leave(ticket)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
}
