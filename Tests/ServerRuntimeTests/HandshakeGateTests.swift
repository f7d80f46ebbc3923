import NIOCore
import NIOEmbedded
import Testing

@testable import ServerRuntime

/// The client port's TLS admission: a bounded number of handshakes run, the rest wait in
/// arrival order, each ticket is given back once, and a connection that left the line is
/// skipped when its turn comes. A place is taken when the first bytes arrive (`enter`).
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
        let (c, _) = try channel()
        let (d, _) = try channel()
        let (e, _) = try channel()
        let (ta, tb, tc, td, te) = (
            HandshakeGate.Ticket(a, source: "a"), HandshakeGate.Ticket(b, source: "b"), HandshakeGate.Ticket(c, source: "c"),
            HandshakeGate.Ticket(d, source: "d"), HandshakeGate.Ticket(e, source: "e")
        )
        let turns = TurnRecorder()
        tc.onTurn = { turns.note("c") }
        td.onTurn = { turns.note("d") }
        #expect(gate.enter(ta) == true)
        #expect(gate.enter(tb) == true)
        #expect(gate.enter(tc) == false)
        #expect(gate.enter(td) == false)
        #expect(gate.counts == (2, 2))
        #expect(gate.enter(te) == nil, "the line is full: refused at once")
        #expect(gate.enter(ta) == true, "entering again changes nothing")
        #expect(gate.counts == (2, 2))

        gate.leave(tc)  // c's client gave up while waiting
        #expect(gate.counts == (2, 1), "counted out at once; skipped in the line when its turn comes")
        gate.leave(ta)
        d.embeddedEventLoop.run()
        #expect(turns.seen == ["d"], "d, next in line after c left, gets its turn; c never")
        #expect(gate.counts == (2, 0))

        gate.leave(tb)
        gate.leave(td)
        #expect(gate.counts == (0, 0))
        gate.leave(td)
        gate.leave(tc)
        #expect(gate.counts == (0, 0), "a ticket given back twice counts once")
        for channel in [a, b, c, d, e] { _ = try? channel.finish() }
    }

    /// Issue 24, 1: connections that never send a ClientHello take no place; a client that
    /// does, gets one at once.
    @Test func aConnectionThatSendsNothingHoldsNoPlace() throws {
        let gate = HandshakeGate(limit: 4)
        let idle = try (0..<100).map { _ in try channel().0 }
        let pipelines = try idle.map { channel -> HandshakeGate.Ticket in
            let ticket = HandshakeGate.Ticket(channel)
            try channel.pipeline.syncOperations.addHandler(HandshakeTurn(gate: gate, ticket: ticket, refuse: { _ in }))
            return ticket
        }
        #expect(gate.counts == (0, 0), "\(pipelines.count) connections, none has spoken")
        let (client, _) = try channel()
        let ticket = HandshakeGate.Ticket(client)
        try client.pipeline.syncOperations.addHandler(HandshakeTurn(gate: gate, ticket: ticket, refuse: { _ in }))
        try client.writeInbound(ByteBuffer(bytes: [0x16, 0x03, 0x01]))
        #expect(gate.counts == (1, 0))
        #expect(try client.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: [0x16, 0x03, 0x01]), "its hello goes on to TLS")
        for channel in idle + [client] { _ = try? channel.finish() }
    }

    /// A flood from one address runs a quarter of the handshakes at most, and a newcomer from
    /// another address is next in line, not behind the flood.
    @Test func aFloodFromOneSourceDoesNotQueueAheadOfOthers() throws {
        let gate = HandshakeGate(limit: 8)
        var flood: [HandshakeGate.Ticket] = []
        for _ in 0..<100 {
            let ticket = HandshakeGate.Ticket(try channel().0, source: "10.0.0.66")
            _ = gate.enter(ticket)
            flood.append(ticket)
        }
        #expect(gate.counts == (2, 98), "a quarter of the places for one source")
        let (newcomer, _) = try channel()
        let ticket = HandshakeGate.Ticket(newcomer, source: "10.0.0.5")
        #expect(gate.enter(ticket) == true, "a free place and its own share: it starts at once")
        // The flood's handshakes finish one by one: the flood keeps its share, no more.
        gate.leave(flood[0])
        #expect(gate.counts.running == 3)
        for ticket in flood { gate.leave(ticket) }
        gate.leave(ticket)
        #expect(gate.counts == (0, 0))
    }

    final class TurnRecorder: @unchecked Sendable {
        private(set) var seen: [String] = []
        func note(_ name: String) { seen.append(name) }
    }
}
