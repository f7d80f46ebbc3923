import NIOCore

/// The first handler of an accepted connection: looks at the first bytes and refuses a client
/// that speaks the wrong transport, with a reason an operator understands ("a plaintext client
/// on a TLS port") instead of a decoder or BoringSSL error. Removes itself after the first read.
public final class TransportSniffer: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    public enum Expectation: Sendable { case tls, plaintext }

    let expectation: Expectation
    let refuse: (String) -> Void

    /// `refuse` hears the reason before the connection is closed.
    public init(expecting expectation: Expectation, refuse: @escaping (String) -> Void) {
        self.expectation = expectation
        self.refuse = refuse
    }

    /// A TLS record of type handshake (22) with major version 3: every ClientHello starts so.
    public static func looksLikeTLS(_ first: UInt8, _ second: UInt8?) -> Bool {
        first == 0x16 && (second == nil || second == 0x03)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else {
            context.fireChannelRead(data)
            return
        }
        let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
        let tls = Self.looksLikeTLS(first, second)
        switch (expectation, tls) {
        case (.tls, false):
            refuse("a plaintext client on a TLS port (first bytes \(String(format: "%02x", first)) are not a TLS handshake)")
            context.close(promise: nil)
        case (.plaintext, true):
            refuse("a TLS client on a plaintext port (this port has TLS switched off)")
            context.close(promise: nil)
        default:
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
