import NIOCore
import NIOEmbedded
import Testing
import PairModel
import Wire

@testable import ServerRuntime

/// The relay: who hears a talker, framed bytes that decode as the frame sent, and a listener
/// that stopped reading loses frames instead of queueing them.
@Suite struct MediaRouterTests {
    private func session() throws -> (EmbeddedChannel, MediaOutlet) {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addWireHandlers(for: ClientMessage.self, configuration: .client)
        return (channel, try #require(MediaOutlet(channel: channel)))
    }

    private func received(_ channel: EmbeddedChannel) throws -> [ClientMessage] {
        let codec = FrameCodec<ClientMessage>(configuration: .client)
        var messages: [ClientMessage] = []
        while var bytes = try channel.readOutbound(as: ByteBuffer.self) {
            while let message = try codec.decode(from: &bytes, allocator: channel.allocator) { messages.append(message) }
        }
        return messages
    }

    private func press(_ router: MediaRouter, _ action: KeyAction, _ target: KeyTarget, session: UInt64, _ outlet: MediaOutlet, pressed: Bool = true) {
        router.key(KeyChange(action: action, target: target, pressed: pressed), session: session, outlet: outlet)
    }

    @Test func aTalkerIsHeardByTheLinesListenersOnly_onceEach_andNeverByItself() throws {
        let router = MediaRouter()
        let (_, talker) = try session()
        let (listenerChannel, listener) = try session()
        let (otherChannel, other) = try session()
        press(router, .listen, .partyLine(7), session: 1, talker)
        press(router, .talk, .partyLine(7), session: 1, talker)
        press(router, .talk, .user(20), session: 1, talker)
        press(router, .listen, .partyLine(7), session: 2, listener)
        router.joined(session: 2, operatorId: 20, outlet: listener)  // heard twice over: once
        press(router, .listen, .partyLine(8), session: 3, other)

        let outlets = router.recipients(of: 1)
        #expect(outlets.count == 1)
        #expect(outlets.first?.channel === listenerChannel)

        let frame = MediaFrame(streamId: 1, sequence: 9, timestamp: 8640, audio: ByteBuffer(repeating: 0x55, count: 80))
        var bytes = ByteBuffer()
        try FrameCodec<ClientMessage>(configuration: .client).encode(.media(frame), into: &bytes)
        MediaRouter.send(bytes, to: outlets, from: listenerChannel.eventLoop)
        #expect(try received(listenerChannel) == [.media(frame)])
        #expect(try received(otherChannel).isEmpty)
    }

    @Test func aSessionThatLeftOrReleasedItsKeyHearsNothingMore() throws {
        let router = MediaRouter()
        let (_, talker) = try session()
        let (_, first) = try session()
        let (_, second) = try session()
        press(router, .talk, .partyLine(7), session: 1, talker)
        press(router, .listen, .partyLine(7), session: 2, first)
        press(router, .listen, .partyLine(7), session: 3, second)
        #expect(router.recipients(of: 1).count == 2)
        router.left(session: 2, operatorId: 20)
        press(router, .listen, .partyLine(7), session: 3, second, pressed: false)
        #expect(router.recipients(of: 1).isEmpty)
        press(router, .talk, .partyLine(7), session: 1, talker, pressed: false)
        press(router, .listen, .partyLine(7), session: 3, second)
        #expect(router.recipients(of: 1).isEmpty, "a released talk key sends nothing")
    }

    @Test func aListenerThatIsNotWritableLosesTheFrame() throws {
        let (channel, outlet) = try session()
        channel.isWritable = false
        var bytes = ByteBuffer()
        try FrameCodec<ClientMessage>(configuration: .client).encode(
            .media(MediaFrame(streamId: 1, sequence: 1, timestamp: 0, audio: ByteBuffer(repeating: 1, count: 80))), into: &bytes)
        outlet.write(bytes)
        #expect(try received(channel).isEmpty)
        channel.isWritable = true
        outlet.write(bytes)
        #expect(try received(channel).count == 1)
    }
}
