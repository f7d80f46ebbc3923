import NIOCore
import NIOEmbedded
import Testing

@testable import ServerRuntime

/// The client port's TLS admission: a bounded number of handshakes run, the rest wait in
/// arrival order, each ticket is given back once, and a connection that left the line is
/// skipped when its turn comes.
@Suite struct HandshakeGateTests {
    final class ReadRecorder: ChannelOutboundHandler {
        typealias OutboundIn = Never
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    func channel() throws -> (EmbeddedChannel, ReadRecorder) {
        let recorder = ReadRecorder()
        let channel = EmbeddedChannel(handler: recorder)
        return (channel, recorder)
    }

    @Test func handshakesBeyondTheLimitWaitInOrderAndStartAsOthersFinish() throws {
        let gate = HandshakeGate(limit: 2, maximumWaiting: 2)
        let (a, _) = try channel()
        let (b, _) = try channel()
        let (c, cReads) = try channel()
        let (d, dReads) = try channel()
        let (e, _) = try channel()
        let ta = try #require(gate.enter(a))
        let tb = try #require(gate.enter(b))
        let tc = try #require(gate.enter(c))
        let td = try #require(gate.enter(d))
        #expect(gate.counts == (2, 2))
        #expect(gate.enter(e) == nil, "the line is full: refused at once")

        gate.leave(tc)  // c's client gave up while waiting
        #expect(gate.counts == (2, 2), "removed lazily")
        let before = dReads.reads
        gate.leave(ta)
        d.embeddedEventLoop.run()
        #expect(dReads.reads == before + 1, "d, next in line after c left, starts reading")
        #expect(cReads.reads == 0)
        #expect(gate.counts == (2, 0))

        gate.leave(tb)
        gate.leave(td)
        #expect(gate.counts == (0, 0))
        gate.leave(td)
        gate.leave(tc)
        #expect(gate.counts == (0, 0), "a ticket given back twice counts once")
        for channel in [a, b, c, d, e] { _ = try? channel.finish() }
    }
}
