import PairModel
import HealthMonitor
import NIOCore

/// One coarse clock for the many connections a program runs on one event loop.
///
/// Each `ClientConnection` otherwise keeps a timer of its own on the loop, and NIO cancels a
/// timer by searching its whole queue: with 5,000 connections per loop, every reconnect after a
/// failover paid for a scan of 5,000 timers (a connect's own timeout is cancelled as soon as it
/// connects). Here deadlines land in slots of `resolution` and one repeating task runs the due
/// slots, so NIO's queue stays short. A deadline may fire up to one resolution late, never
/// early; a callback that is no longer wanted still runs (connection ticks are harmless).
public final class ClientTimers: Sendable {
    public let eventLoop: EventLoop
    public let resolution: Duration
    private let slots: NIOLoopBoundBox<Slots>
    private let task: RepeatedTask

    private final class Slots {
        var pending: [Int64: [() -> Void]] = [:]
        var done: Int64 = .min  // every slot up to this one has run
    }

    /// Made on any thread; used from `eventLoop` only.
    public init(eventLoop: EventLoop, resolution: Duration = .milliseconds(10)) {
        self.eventLoop = eventLoop
        self.resolution = resolution
        let slots = NIOLoopBoundBox.makeBoxSendingValue(Slots(), eventLoop: eventLoop)
        self.slots = slots
        let width = resolution.nanoseconds
        task = eventLoop.scheduleRepeatedTask(initialDelay: .nanoseconds(width), delay: .nanoseconds(width)) { _ in
            let now = Int64(NIODeadline.now().uptimeNanoseconds) / width
            let box = slots.value
            guard !box.pending.isEmpty else {
                box.done = now
                return
            }
            // Usually one slot is due; after a stall, every slot that passed, in order.
            for slot in box.pending.keys.filter({ $0 <= now }).sorted() {
                for callback in box.pending.removeValue(forKey: slot) ?? [] { callback() }
            }
            box.done = now
        }
    }

    /// Runs `body` on the loop at `deadline` (or up to one resolution after it).
    public func schedule(at deadline: MonotonicTime, _ body: @escaping () -> Void) {
        eventLoop.preconditionInEventLoop()
        let box = slots.value
        let slot = max(deadline.nanoseconds / resolution.nanoseconds + 1, box.done + 1)
        box.pending[slot, default: []].append(body)
    }

    /// Stops the clock; pending callbacks never run.
    public func cancel() {
        task.cancel()
    }
}
