import PairModel
import HealthMonitor
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import ClientRuntime

/// The shared coarse clock: callbacks run in deadline order, never before their deadline, and
/// a cancelled clock runs nothing more.
@Suite struct ClientTimersTests {
    static func now() -> MonotonicTime { MonotonicTime(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds)) }

    @Test func callbacksRunInDeadlineOrder_neverEarly() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let timers = ClientTimers(eventLoop: loop, resolution: .milliseconds(5))
        defer { timers.cancel() }
        let fired = NIOLockedValueBox<[(Int, MonotonicTime, MonotonicTime)]>([])
        let done = loop.makePromise(of: Void.self)
        try await loop.submit {
            let start = Self.now()
            for (name, offset) in [(3, 60), (1, 0), (2, 25), (4, 61)] {
                let deadline = start + .milliseconds(offset)
                timers.schedule(at: deadline) {
                    let count = fired.withLockedValue { $0.append((name, deadline, Self.now())); return $0.count }
                    if count == 4 { done.succeed() }
                }
            }
        }.get()
        let timeout = loop.scheduleTask(in: .seconds(5)) { done.fail(ChannelError.ioOnClosedChannel) }
        try await done.futureResult.get()
        timeout.cancel()
        let runs = fired.withLockedValue { $0 }
        #expect(runs.map(\.0) == [1, 2, 3, 4])
        for (name, deadline, at) in runs { #expect(at >= deadline, "callback \(name) ran before its deadline") }
    }

    @Test func aCancelledClockRunsNothing() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let timers = ClientTimers(eventLoop: loop, resolution: .milliseconds(5))
        let ran = NIOLockedValueBox(false)
        try await loop.submit {
            timers.schedule(at: Self.now() + .milliseconds(20)) { ran.withLockedValue { $0 = true } }
            timers.cancel()
        }.get()
        try await Task.sleep(for: .milliseconds(100))
        #expect(ran.withLockedValue { $0 } == false)
    }
}
