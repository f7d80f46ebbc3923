/// A point on a monotonic clock, as the shell reads it (NIO's `NIODeadline.now()` in the
/// server, a counter in the simulator). The state machines never read a clock themselves:
/// time is an input, which is what makes them testable and simulatable.
public struct MonotonicTime: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = MonotonicTime(nanoseconds: 0)

    public static func milliseconds(_ value: Int64) -> MonotonicTime { MonotonicTime(nanoseconds: value * 1_000_000) }

    public static func < (lhs: MonotonicTime, rhs: MonotonicTime) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: MonotonicTime, rhs: Duration) -> MonotonicTime {
        MonotonicTime(nanoseconds: lhs.nanoseconds + rhs.nanoseconds)
    }

    public static func - (lhs: MonotonicTime, rhs: Duration) -> MonotonicTime {
        MonotonicTime(nanoseconds: lhs.nanoseconds - rhs.nanoseconds)
    }

    public static func - (lhs: MonotonicTime, rhs: MonotonicTime) -> Duration {
        .nanoseconds(lhs.nanoseconds - rhs.nanoseconds)
    }

    public var description: String { "t+\(nanoseconds / 1_000_000)ms" }
}

extension Duration {
    /// Whole nanoseconds (durations here are far below the 292 years an Int64 holds).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    public var milliseconds: Int64 { nanoseconds / 1_000_000 }
}

extension Optional where Wrapped == MonotonicTime {
    /// The earlier of two optional deadlines.
    public func earliest(_ other: MonotonicTime?) -> MonotonicTime? {
        switch (self, other) {
        case (nil, let value), (let value, nil): value
        case (let lhs?, let rhs?): Swift.min(lhs, rhs)
        }
    }
}
