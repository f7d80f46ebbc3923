import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServerRuntime
import Testing
import PairModel
import Wire

/// A raw Wire connection that records what the server sends and whether it closed.
final class RawClient: @unchecked Sendable {
    let channel: Channel
    private let heard = NIOLockedValueBox<[ClientMessage]>([])
    private let closed = NIOLockedValueBox(false)

    init(_ server: Endpoint) async throws {
        let heard = heard
        let closed = closed
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addWireHandlers(for: ClientMessage.self, configuration: .client)
                    try channel.pipeline.syncOperations.addHandler(Recorder(heard: heard, closed: closed))
                }
            }
            .connect(host: server.host, port: Int(server.port)).get()
    }

    final class Recorder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ClientMessage
        let heard: NIOLockedValueBox<[ClientMessage]>
        let closed: NIOLockedValueBox<Bool>
        init(heard: NIOLockedValueBox<[ClientMessage]>, closed: NIOLockedValueBox<Bool>) {
            self.heard = heard
            self.closed = closed
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let message = unwrapInboundIn(data)
            heard.withLockedValue { $0.append(message) }
        }
        func channelInactive(context: ChannelHandlerContext) { closed.withLockedValue { $0 = true } }
    }

    func send(_ messages: ClientMessage...) async throws {
        for message in messages { try await channel.writeAndFlush(message) }
    }

    var messages: [ClientMessage] { heard.withLockedValue { $0 } }
    var isClosed: Bool { closed.withLockedValue { $0 } }
    var token: ByteBuffer? {
        for case .loginAccepted(let accepted) in messages { return accepted.sessionToken }
        return nil
    }

    deinit { channel.close(promise: nil) }
}

/// The client port keeps no silent session and no silent watcher, and a watcher hears of its
/// server's activation.
@Suite(.serialized) struct SessionLivenessTests {
    @Test func aSessionThatFallsSilentIsLost_butAWatcherMaySayNothingLonger() async throws {
        let pair = try InProcessPair()
        try await pair.start()
        let silent = try await RawClient(pair.primary.clientAddress)
        try await silent.send(
            .hello(Hello(nodeId: "quiet", software: "test")),
            .login(LoginRequest(username: "op1", credential: .password(InProcessPair.password), clientInstance: "quiet")))
        #expect(await eventually { silent.token != nil }, "\(silent.messages)")
        #expect(await eventually { await pair.primary.status()?.clientsLoggedIn == 1 })
        // A watcher on the secondary with the session's token.
        let watcher = try await RawClient(pair.secondary.clientAddress)
        try await watcher.send(.hello(Hello(nodeId: "w", software: "test")), .watch(Watch(sessionToken: silent.token!, epoch: 1)))
        // The session's timeout is 1.5 s here (500 ms x 3): the sweep ends it soon after.
        #expect(await eventually(.seconds(5)) { silent.isClosed })
        #expect(await eventually { await pair.primary.status()?.clientsLoggedIn == 0 })
        #expect(!watcher.isClosed, "a watcher is allowed 30 s of silence")
        #expect(!watcher.messages.contains { if case .goodbye = $0 { true } else { false } })
        await pair.shutdown()
    }

    @Test func aWatcherHearsTheActivation_andABadTokenIsRefused() async throws {
        let pair = try InProcessPair()
        try await pair.start()
        let client = RecordingClient([pair.primary.clientAddress], username: "op2")
        #expect(await client.waitLoggedIn(to: pair.primary.clientAddress))
        let token = try #require(client.connection.token)

        let forged = try await RawClient(pair.secondary.clientAddress)
        var bad = token
        bad.setInteger(bad.getInteger(at: bad.writerIndex - 1, as: UInt8.self)! ^ 0xFF, at: bad.writerIndex - 1)
        try await forged.send(.hello(Hello(nodeId: "f", software: "test")), .watch(Watch(sessionToken: bad, epoch: 1)))
        #expect(await eventually(.seconds(5)) { forged.isClosed })
        #expect(forged.messages.contains { if case .goodbye(let goodbye) = $0 { goodbye.reason == .authenticationFailed } else { false } })

        let watcher = try await RawClient(pair.secondary.clientAddress)
        try await watcher.send(.hello(Hello(nodeId: "w", software: "test")), .watch(Watch(sessionToken: token, epoch: 1)))
        try await Task.sleep(for: .milliseconds(200))
        #expect(!watcher.messages.contains { if case .activated = $0 { true } else { false } }, "a standby announces nothing")
        await pair.primary.stopAbruptly()
        #expect(await pair.secondary.waitForState(.active, timeout: .seconds(10)))
        #expect(await eventually(.seconds(5)) { watcher.messages.contains { if case .activated = $0 { true } else { false } } })
        let announced = watcher.messages.compactMap { if case .activated(let a) = $0 { a.epoch } else { nil } }
        #expect(announced.count == 1 && announced[0] > 1, "\(announced)")
        // The library's own client moved (over its watch connection or a new one).
        #expect(await client.waitLoggedIn(to: pair.secondary.clientAddress))
        await pair.shutdown()
    }

    /// A closed link means the peer's process ended and its clients saw their connections close
    /// too: the announcement waits `announcementDelayAfterClose`, for those that saw nothing.
    @Test func afterAClosedLinkTheAnnouncementWaits_andStillComes() async throws {
        let pair = try InProcessPair()
        pair.timings.announcementDelayAfterClose = .seconds(3)
        try await pair.start()
        let client = RecordingClient([pair.primary.clientAddress], username: "op3")
        #expect(await client.waitLoggedIn(to: pair.primary.clientAddress))
        let token = try #require(client.connection.token)
        client.connection.stop()
        let watcher = try await RawClient(pair.secondary.clientAddress)
        try await watcher.send(.hello(Hello(nodeId: "w", software: "test")), .watch(Watch(sessionToken: token, epoch: 1)))
        #expect(await eventually { await pair.secondary.report()?.clientsWatching == 1 })

        await pair.primary.stopAbruptly()
        #expect(await pair.secondary.waitForState(.active, timeout: .seconds(10)))
        let activeAt = ContinuousClock.now
        let heard = { watcher.messages.contains { if case .activated = $0 { true } else { false } } }
        #expect(!heard(), "announced at once after a closed link")
        #expect(await eventually(.seconds(10)) { heard() })
        #expect(ContinuousClock.now - activeAt >= .seconds(1.5), "the announcement came \(ContinuousClock.now - activeAt) after the activation")
        await pair.shutdown()
    }
}
