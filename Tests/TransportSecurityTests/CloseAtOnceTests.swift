import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@testable import TransportSecurity

/// A client that gives up on a server does not wait for that server's TLS goodbye.
@Suite struct CloseAtOnceTests {
    /// Reads the first message, then nothing more: a server that no longer answers (stopped,
    /// or hung), so a close_notify sent to it is never answered.
    final class StopsReading: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            context.fireChannelRead(data)
        }
    }

    /// Whether the channel's close completes within `limit` (NIOSSL's own close ends by its
    /// shutdown timeout at the latest, so this never waits longer than that).
    func closes(_ channel: Channel, within limit: Duration, by close: @escaping @Sendable (Channel) -> Void) async -> Bool {
        let started = ContinuousClock.now
        channel.eventLoop.execute { close(channel) }
        try? await channel.closeFuture.get()
        let took = ContinuousClock.now - started
        return took < limit
    }

    @Test func closeAtOnce_doesNotWaitForAServerThatNoLongerAnswers() async throws {
        let test = try HandshakeTests()
        defer { try? FileManager.default.removeItem(at: test.directory) }
        let server = try test.contexts(name: "vcom-primary")
        let viaCA = try ClientTLS(trust: .authority(file: test.directory.appendingPathComponent("ca.pem").path))
        try await withEcho({ _ in [NIOSSLServerHandler(context: server.current.serving), StopsReading()] }) { port in
            let promise = group.next().makePromise(of: String.self)
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([try viaCA.makeHandler(host: "127.0.0.1"), FirstReply(promise)])
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            channel.writeAndFlush(ByteBuffer(string: "ping"), promise: nil)
            #expect(try await promise.futureResult.get() == "ping")
            // NIOSSL's own close would keep the socket for its 5 s shutdown timeout here.
            #expect(await closes(channel, within: .seconds(3)) { ClientTLS.closeAtOnce($0) })
        }
    }
}
