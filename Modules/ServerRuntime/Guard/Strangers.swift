import Logging
import PairModel
import NIOConcurrencyHelpers
import NIOCore
import PairModel
import Wire

/// The connections of one port that have not authenticated yet, counted per source and in
/// all, with the deadlines `PortLimits` sets. `admit` runs in the child channel's initializer,
/// before any byte is read; the session handler calls `ConnectionTicket.authenticated()` when
/// its peer has proved who it is, and from then on the connection is no stranger.
final class Strangers: Sendable {
    let port: String
    let limits: PortLimits
    let refusals: RefusalLog
    /// Deadlines are measured on the runtime's clock.
    let clock: any RuntimeClock
    private let counts = NIOLockedValueBox((perSource: [String: Int](), total: 0))
    private let sweepers = NIOLockedValueBox([ObjectIdentifier: NIOLoopBound<StrangerSweeper>]())

    init(port: String, limits: PortLimits, refusals: RefusalLog, clock: any RuntimeClock = SystemClock()) {
        self.port = port
        self.limits = limits
        self.refusals = refusals
        self.clock = clock
    }

    /// On the channel's loop, in its initializer: its ticket (and the guard handler is added
    /// first in the pipeline), or nil when over a cap (the channel is then closed).
    func admit(_ channel: Channel, limits frameLimits: FrameLimits? = nil) throws -> ConnectionTicket? {
        let source = sourceKey(channel.remoteAddress)
        let refusal: String? = counts.withLockedValue { counts in
            if counts.total >= limits.total { return "\(limits.total) connections are already logging in on this port" }
            let mine = counts.perSource[source, default: 0]
            if mine >= limits.perSource { return "\(limits.perSource) connections from this address are already logging in" }
            counts.perSource[source] = mine + 1
            counts.total += 1
            return nil
        }
        if let refusal {
            refusals.refused(port: port, source: source, reason: "over_cap", detail: refusal)
            channel.close(promise: nil)
            return nil
        }
        let ticket = ConnectionTicket(strangers: self, source: source, channel: channel, frameLimits: frameLimits, at: clock.now)
        try channel.pipeline.syncOperations.addHandler(StrangerGuard(ticket: ticket))
        sweeper(for: channel.eventLoop).add(ticket)
        return ticket
    }

    fileprivate func leave(_ source: String) {
        counts.withLockedValue { counts in
            counts.total -= 1
            let left = counts.perSource[source, default: 1] - 1
            counts.perSource[source] = left > 0 ? left : nil
        }
    }

    var count: (total: Int, sources: Int) { counts.withLockedValue { ($0.total, $0.perSource.count) } }

    private func sweeper(for loop: EventLoop) -> StrangerSweeper {
        sweepers.withLockedValue { sweepers in
            if let bound = sweepers[ObjectIdentifier(loop)] { return bound.value }
            let sweeper = StrangerSweeper(loop: loop)
            sweepers[ObjectIdentifier(loop)] = NIOLoopBound(sweeper, eventLoop: loop)
            return sweeper
        }
    }
}

/// One connection's standing on its port, shared by its handlers on its event loop.
final class ConnectionTicket: @unchecked Sendable {
    let strangers: Strangers
    let source: String
    let acceptedAt: MonotonicTime
    private(set) var firstBytesAt: MonotonicTime?
    private(set) var isAuthenticated = false
    private var left = false
    weak var channel: Channel?
    /// Raised after authentication (nil: the port's limits never change).
    let frameLimits: FrameLimits?

    init(strangers: Strangers, source: String, channel: Channel, frameLimits: FrameLimits?, at now: MonotonicTime) {
        acceptedAt = now
        self.strangers = strangers
        self.source = source
        self.channel = channel
        self.frameLimits = frameLimits
    }

    func receivedBytes() {
        if firstBytesAt == nil { firstBytesAt = strangers.clock.now }
    }

    /// The peer proved who it is: it leaves the strangers' count and gets the port's full
    /// frame limits.
    func authenticated() {
        guard !isAuthenticated else { return }
        isAuthenticated = true
        frameLimits?.authenticated()
        release()
    }

    func release() {
        guard !left else { return }
        left = true
        strangers.leave(source)
    }

    /// Why this stranger must go now, if it must.
    func overdue(at now: MonotonicTime) -> String? {
        guard !isAuthenticated, !left else { return nil }
        let limits = strangers.limits
        if let first = limits.firstBytes, firstBytesAt == nil, now - acceptedAt >= first {
            return "sent nothing within \(first)"
        }
        if now - acceptedAt >= limits.authentication {
            return "did not authenticate within \(limits.authentication)"
        }
        return nil
    }
}

/// First in the pipeline: notes the first bytes, and gives the connection's place back when it
/// closes before authenticating.
final class StrangerGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let ticket: ConnectionTicket

    init(ticket: ConnectionTicket) { self.ticket = ticket }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        ticket.receivedBytes()
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ticket.release()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticket.release()
    }
}

/// Closes the strangers of one event loop that missed a deadline, looking at all of them four
/// times a second (a timer per connection costs a scan of the loop's timer queue to cancel:
/// see IdleSweeper).
final class StrangerSweeper {
    static let interval: TimeAmount = .milliseconds(250)
    private var tickets: [ObjectIdentifier: ConnectionTicket] = [:]
    private var task: RepeatedTask?

    init(loop: EventLoop) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        task = loop.scheduleRepeatedTask(initialDelay: Self.interval, delay: Self.interval) { _ in bound.value.sweep() }
    }

    func add(_ ticket: ConnectionTicket) { tickets[ObjectIdentifier(ticket)] = ticket }

    private func sweep() {
        guard !tickets.isEmpty else { return }
        let now = tickets.first?.value.strangers.clock.now ?? .zero
        for (key, ticket) in tickets {
            guard let channel = ticket.channel, channel.isActive, !ticket.isAuthenticated else {
                tickets[key] = nil
                continue
            }
            guard let why = ticket.overdue(at: now) else { continue }
            tickets[key] = nil
            ticket.strangers.refusals.refused(port: ticket.strangers.port, source: ticket.source, reason: "deadline", detail: why)
            ticket.release()
            channel.close(promise: nil)
        }
    }
}
