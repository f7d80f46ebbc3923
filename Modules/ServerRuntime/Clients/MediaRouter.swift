import NIOConcurrencyHelpers
import NIOCore
import Wire

/// Who hears whom: the talk and listen keys pressed on every session, and where a talker's
/// media frames go. Sessions live on several event loops; the table is shared under one lock
/// taken for a moment per frame (the writes happen outside it).
final class MediaRouter: Sendable {
    private struct Table {
        var listeners: [UInt32: [UInt64: Channel]] = [:]
        var talkingTo: [UInt64: Set<KeyTarget>] = [:]
        var sessionsOfOperator: [UInt32: [UInt64: Channel]] = [:]
    }

    private let table = NIOLockedValueBox(Table())

    func joined(session: UInt64, operatorId: UInt32, channel: Channel) {
        table.withLockedValue { $0.sessionsOfOperator[operatorId, default: [:]][session] = channel }
    }

    func left(session: UInt64, operatorId: UInt32) {
        table.withLockedValue { table in
            table.sessionsOfOperator[operatorId]?[session] = nil
            table.talkingTo[session] = nil
            for line in Array(table.listeners.keys) {
                table.listeners[line]?[session] = nil
                if table.listeners[line]?.isEmpty == true { table.listeners[line] = nil }
            }
        }
    }

    func key(_ change: KeyChange, session: UInt64, channel: Channel) {
        table.withLockedValue { table in
            switch (change.action, change.target) {
            case (.listen, .partyLine(let line)):
                if change.pressed { table.listeners[line, default: [:]][session] = channel } else { table.listeners[line]?[session] = nil }
            case (.talk, let target):
                if change.pressed { table.talkingTo[session, default: []].insert(target) } else { table.talkingTo[session]?.remove(target) }
            case (.listen, .user):
                break  // a user is heard when that user talks to this one
            }
        }
    }

    /// The channels a frame from `session` goes to (never back to its sender).
    func recipients(of session: UInt64) -> [Channel] {
        table.withLockedValue { table in
            guard let targets = table.talkingTo[session], !targets.isEmpty else { return [] }
            var seen = Set<UInt64>()
            var channels: [Channel] = []
            for target in targets {
                let group: [UInt64: Channel]? =
                    switch target {
                    case .partyLine(let line): table.listeners[line]
                    case .user(let id): table.sessionsOfOperator[id]
                    }
                for (id, channel) in group ?? [:] where id != session && seen.insert(id).inserted {
                    channels.append(channel)
                }
            }
            return channels
        }
    }
}
