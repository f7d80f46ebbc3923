import ConfigModel
import ConfigStore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import PairModel
import Wire

/// A logged-in client: which channel, which operator. The control loop reaches every session
/// through the registry (to redirect them, to end a disabled operator's sessions).
final class ClientSessionRef: Sendable {
    let id: UInt64
    let username: String
    let operatorId: UInt32
    let channel: Channel
    let loggedInAt: Date
    /// The session token chain it logged in with (or began).
    let chain: SessionTokens.Chain

    init(id: UInt64, username: String, operatorId: UInt32, channel: Channel, loggedInAt: Date = Date(), chain: SessionTokens.Chain) {
        self.id = id
        self.username = username
        self.operatorId = operatorId
        self.channel = channel
        self.loggedInAt = loggedInAt
        self.chain = chain
    }

    /// Its chain's key among revoked sessions.
    var chainKey: String { RevokedSession.key(username: username, issuedAtMs: chain.issuedAtMs) }

    /// The record that stops its token chain from logging in again.
    func revocation(at now: Date) -> RevokedSession {
        RevokedSession(
            username: username, issuedAtMs: chain.issuedAtMs, expiresAtMs: chain.expiresAtMs,
            revokedAtMs: UInt64(max(0, now.timeIntervalSince1970 * 1000)))
    }

    /// Ends any client connection (a session or a watch) with `goodbye`, on its loop.
    static func end(_ channel: Channel, _ goodbye: Goodbye) {
        channel.eventLoop.execute {
            channel.triggerUserOutboundEvent(SessionCommand.end(goodbye), promise: nil)
        }
    }

    /// Tells the client to move to `target` and ends the session as a deliberate departure.
    func redirect(to target: Endpoint?, reason: RedirectReason, epoch: UInt64) {
        channel.eventLoop.execute {
            self.channel.triggerUserOutboundEvent(SessionCommand.depart(redirect: target.map { Redirect(target: $0, reason: reason, epoch: epoch) }), promise: nil)
        }
    }

    func end(_ goodbye: Goodbye) {
        channel.eventLoop.execute {
            self.channel.triggerUserOutboundEvent(SessionCommand.end(goodbye), promise: nil)
        }
    }
}

/// What the runtime asks a session's handler to do, on its own event loop.
enum SessionCommand: Sendable {
    /// Leave deliberately: send the redirect (if any), then close. Not a loss.
    case depart(redirect: Redirect?)
    /// Close with this goodbye. Not a loss.
    case end(Goodbye)
}

/// Every logged-in session on this server, across event loops.
final class SessionRegistry: Sendable {
    private let sessions = NIOLockedValueBox([UInt64: ClientSessionRef]())
    private let nextId = NIOLockedValueBox(UInt64(0))

    func makeId() -> UInt64 { nextId.withLockedValue { $0 += 1; return $0 } }

    func add(_ session: ClientSessionRef) { sessions.withLockedValue { $0[session.id] = session } }
    func remove(_ id: UInt64) { sessions.withLockedValue { _ = $0.removeValue(forKey: id) } }
    var all: [ClientSessionRef] { sessions.withLockedValue { Array($0.values) } }
    func session(_ id: UInt64) -> ClientSessionRef? { sessions.withLockedValue { $0[id] } }
    var count: Int { sessions.withLockedValue { $0.count } }
    func sessions(of operatorIds: Set<UInt32>) -> [ClientSessionRef] {
        sessions.withLockedValue { $0.values.filter { operatorIds.contains($0.operatorId) } }
    }
}
