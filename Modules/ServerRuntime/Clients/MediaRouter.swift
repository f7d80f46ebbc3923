import NIOConcurrencyHelpers
import NIOCore
import PairModel
import Wire

/// Where a session's media goes: the frame encoder of its channel, handed bytes that were
/// framed once for every recipient (the encoder's own context writes past it, to the socket).
struct MediaOutlet: Sendable {
    let channel: Channel
    let encoder: NIOLoopBound<ChannelHandlerContext>

    /// Made on the channel's event loop, once its Wire handlers are in place.
    init?(channel: Channel) {
        typealias Encoder = MessageToByteHandler<WireFrameEncoder<ClientMessage>>
        guard let context = try? channel.pipeline.syncOperations.context(handlerType: Encoder.self) else { return nil }
        self.channel = channel
        encoder = NIOLoopBound(context, eventLoop: channel.eventLoop)
    }

    /// On the channel's loop. A client that does not keep up loses frames, never the server's
    /// memory: live audio that waited behind a full buffer is useless anyway.
    func write(_ frame: ByteBuffer) {
        guard channel.isWritable else { return }
        encoder.value.writeAndFlush(NIOAny(frame), promise: nil)
    }
}

/// Who hears whom: the talk and listen keys pressed on every session, and where a talker's
/// media frames go. Sessions live on several event loops; the table is shared under one lock
/// taken for a moment per frame (the writes happen outside it).
final class MediaRouter: Sendable {
    private struct Table {
        var listeners: [UInt32: [UInt64: MediaOutlet]] = [:]
        var linesOf: [UInt64: Set<UInt32>] = [:]
        var talkingTo: [UInt64: Set<KeyTarget>] = [:]
        var sessionsOfOperator: [UInt32: [UInt64: MediaOutlet]] = [:]
    }

    private let table = NIOLockedValueBox(Table())

    func joined(session: UInt64, operatorId: UInt32, outlet: MediaOutlet) {
        table.withLockedValue { $0.sessionsOfOperator[operatorId, default: [:]][session] = outlet }
    }

    func left(session: UInt64, operatorId: UInt32) {
        table.withLockedValue { table in
            table.sessionsOfOperator[operatorId]?[session] = nil
            if table.sessionsOfOperator[operatorId]?.isEmpty == true { table.sessionsOfOperator[operatorId] = nil }
            table.talkingTo[session] = nil
            for line in table.linesOf.removeValue(forKey: session) ?? [] {
                table.listeners[line]?[session] = nil
                if table.listeners[line]?.isEmpty == true { table.listeners[line] = nil }
            }
        }
    }

    func key(_ change: KeyChange, session: UInt64, outlet: MediaOutlet) {
        table.withLockedValue { table in
            switch (change.action, change.target) {
            case (.listen, .partyLine(let line)):
                if change.pressed {
                    table.listeners[line, default: [:]][session] = outlet
                    table.linesOf[session, default: []].insert(line)
                } else {
                    table.listeners[line]?[session] = nil
                    table.linesOf[session]?.remove(line)
                }
            case (.talk, let target):
                if change.pressed { table.talkingTo[session, default: []].insert(target) } else { table.talkingTo[session]?.remove(target) }
            case (.listen, .user):
                break  // a user is heard when that user talks to this one
            }
        }
    }

    /// Where a frame from `session` goes (never back to its sender).
    func recipients(of session: UInt64) -> [MediaOutlet] {
        table.withLockedValue { table in
            guard let targets = table.talkingTo[session], !targets.isEmpty else { return [] }
            var seen = Set<UInt64>()
            var outlets: [MediaOutlet] = []
            for target in targets {
                let group: [UInt64: MediaOutlet]? =
                    switch target {
                    case .partyLine(let line): table.listeners[line]
                    case .user(let id): table.sessionsOfOperator[id]
                    }
                for (id, outlet) in group ?? [:] where id != session && seen.insert(id).inserted {
                    outlets.append(outlet)
                }
            }
            return outlets
        }
    }

    /// Sends one framed media message to `outlets`, from the sender's loop `here`: one task per
    /// other event loop rather than one per recipient (at 50 frames a second per talker, the
    /// cross-thread hand-offs were most of the server's work).
    static func send(_ frame: ByteBuffer, to outlets: [MediaOutlet], from here: EventLoop) {
        var elsewhere: [ObjectIdentifier: (EventLoop, [MediaOutlet])] = [:]
        for outlet in outlets {
            let loop = outlet.channel.eventLoop
            if loop === here {
                outlet.write(frame)
            } else {
                elsewhere[ObjectIdentifier(loop), default: (loop, [])].1.append(outlet)
            }
        }
        for (loop, batch) in elsewhere.values {
            loop.execute { for outlet in batch { outlet.write(frame) } }
        }
    }
}
