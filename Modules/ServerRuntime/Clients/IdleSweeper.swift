import NIOConcurrencyHelpers
import NIOCore

/// Finds the client connections of one event loop that went silent, by looking at all of them
/// twice a second.
///
/// NIO's `IdleStateHandler` keeps a timer per connection, and NIO cancels a timer by scanning
/// the loop's whole timer queue: with 5,000 connections per loop, every session that ended (a
/// failover's redirect, a watch becoming a session) paid for a scan of 5,000 timers, and the
/// stall delayed heartbeat echoes past the clients' timeout. A sweep costs 10,000 comparisons
/// a second per 5,000 connections and nothing when a connection ends.
final class IdleSweeper {
    static let interval: TimeAmount = .milliseconds(500)
    private var connections: [ObjectIdentifier: ClientSessionHandler] = [:]
    private var task: RepeatedTask?
    /// The runtime's clock: silence is measured on it, so a test can drive it.
    private let clock: any RuntimeClock

    init(clock: any RuntimeClock) { self.clock = clock }

    /// On `loop`; sweeps it from then on.
    func start(on loop: EventLoop) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        task = loop.scheduleRepeatedTask(initialDelay: Self.interval, delay: Self.interval) { _ in bound.value.sweep() }
    }

    func add(_ handler: ClientSessionHandler) { connections[ObjectIdentifier(handler)] = handler }
    func remove(_ handler: ClientSessionHandler) { connections[ObjectIdentifier(handler)] = nil }
    var count: Int { connections.count }

    private func sweep() {
        guard !connections.isEmpty else { return }
        let now = clock.now
        // A check may close its connection, which removes it: iterate over a copy.
        for handler in Array(connections.values) { handler.checkIdle(at: now) }
    }
}

/// One sweeper per event loop, made on first use.
final class IdleSweepers: Sendable {
    private let sweepers = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<IdleSweeper>]>([:])

    /// On `loop`.
    func sweeper(for loop: EventLoop, clock: any RuntimeClock) -> IdleSweeper {
        loop.preconditionInEventLoop()
        return sweepers.withLockedValue { sweepers in
            if let bound = sweepers[ObjectIdentifier(loop)] { return bound.value }
            let sweeper = IdleSweeper(clock: clock)
            sweeper.start(on: loop)
            sweepers[ObjectIdentifier(loop)] = NIOLoopBound(sweeper, eventLoop: loop)
            return sweeper
        }
    }
}
