import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PairModel
import Wire

/// A client port that follows a script instead of a policy: it accepts every login (or refuses
/// each with "not the active server"), echoes heartbeats, and plays one talker's media to every
/// session (50 frames a second), or says nothing at all (silent: a hung server). The
/// simulator's figures are checked against what it did.
final class ScriptedServer: Sendable {
    enum Mode: Sendable { case accepting, refusing, silent }

    private struct State {
        var mode: Mode
        var alternate: Endpoint?
        var sessions: [Channel] = []
    }

    let endpoint: Endpoint
    private let state: NIOLockedValueBox<State>
    private let listener: Channel
    private let talker: RepeatedTask

    init(mode: Mode) async throws {
        let state = NIOLockedValueBox(State(mode: mode))
        listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addWireHandlers(for: ClientMessage.self, configuration: .client)
                    try channel.pipeline.syncOperations.addHandler(Session(state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        endpoint = Endpoint(host: "127.0.0.1", port: UInt16(listener.localAddress!.port!))
        self.state = state
        let sequence = NIOLockedValueBox<UInt32>(0)
        talker = MultiThreadedEventLoopGroup.singleton.next().scheduleRepeatedTask(initialDelay: .milliseconds(20), delay: .milliseconds(20)) { _ in
            let next = sequence.withLockedValue { $0 &+= 1; return $0 }
            let frame = ClientMessage.media(
                MediaFrame(streamId: 99, sequence: next, timestamp: next &* 960, audio: ByteBuffer(repeating: 7, count: 80)))
            for session in state.withLockedValue({ $0.sessions }) { session.writeAndFlush(frame, promise: nil) }
        }
    }

    func set(_ mode: Mode, alternate: Endpoint?) {
        state.withLockedValue {
            $0.mode = mode
            $0.alternate = alternate
        }
    }

    var sessions: Int { state.withLockedValue { $0.sessions.count { $0.isActive } } }

    /// Every session cut and nothing listening any more: connections are refused.
    func goDown() async {
        talker.cancel()
        let sessions = state.withLockedValue { state in
            defer { state.sessions = [] }
            return state.sessions
        }
        try? await listener.close()
        for session in sessions { try? await session.close() }
    }

    private final class Session: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ClientMessage
        typealias OutboundOut = ClientMessage
        let state: NIOLockedValueBox<State>

        init(state: NIOLockedValueBox<State>) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if state.withLockedValue({ $0.mode }) == .silent { return }
            switch unwrapInboundIn(data) {
            case .hello:
                context.writeAndFlush(wrapOutboundOut(.hello(Hello(nodeId: "scripted", software: "test"))), promise: nil)
            case .login:
                let (mode, alternate) = state.withLockedValue { ($0.mode, $0.alternate) }
                guard mode == .accepting else {
                    let refused = LoginRefused(reason: .notActiveServer, detail: "scripted", alternateServer: alternate, epoch: 1)
                    context.writeAndFlush(wrapOutboundOut(.loginRefused(refused))).whenComplete { _ in context.close(promise: nil) }
                    return
                }
                state.withLockedValue { $0.sessions.append(context.channel) }
                let accepted = LoginAccepted(
                    sessionId: 1, epoch: 1, serverRole: .primary, alternateServer: alternate, sessionToken: ByteBuffer(string: "t"),
                    heartbeatIntervalMs: 1000)
                context.writeAndFlush(wrapOutboundOut(.loginAccepted(accepted)), promise: nil)
            case .heartbeat(let beat):
                context.writeAndFlush(wrapOutboundOut(.heartbeat(beat)), promise: nil)
            default:
                break
            }
        }
    }
}
