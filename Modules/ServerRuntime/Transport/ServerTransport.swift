import Logging
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
            try operations.addHandler(NIOSSLServerHandler(context: loaded.serving))
        }
        try operations.addHandler(HandshakeFailureLogger(report: { refuse("TLS handshake failed: \($0)") }))
    }

    /// For the primary's connection to its secondary.
    func addDialing(to channel: Channel, address: String) throws {
        guard let tls else { return }
        let logger = logger
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
        // check) is not worth a line of its own.
        if case NIOSSLError.uncleanShutdown = error {
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
