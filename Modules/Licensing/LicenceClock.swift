import Foundation

/// Wall-clock time as licence checks may trust it: never earlier than the latest time this
/// server has seen. Setting the clock back must not revive an expired licence, so the
/// highest time observed is kept on disk and a clock behind it counts as that time (and is
/// reported, once per step back).
public struct LicenceClock: Sendable {
    public private(set) var highWater: Date
    /// The persisted mark; the file is rewritten when the mark moves past it by this much,
    /// so a busy server writes it at most about once a minute.
    public var persistEvery: TimeInterval = 60
    private var persisted: Date

    public init(highWater: Date = .distantPast) {
        self.highWater = highWater
        persisted = highWater
    }

    public struct Reading: Equatable, Sendable {
        /// The time to judge licences at.
        public var now: Date
        /// Set when the clock is behind the mark: for the log.
        public var warning: String?
        /// Set when the caller should write `highWater` to disk now.
        public var persist: Date?
    }

    public mutating func read(_ clock: Date) -> Reading {
        guard clock >= highWater else {
            let behind = Int(highWater.timeIntervalSince(clock))
            return Reading(
                now: highWater,
                warning: "the system clock (\(LicenceDate.format(clock))) is \(behind) s behind the latest time this server saw (\(LicenceDate.format(highWater))); licences are judged at the latest time")
        }
        highWater = clock
        guard clock.timeIntervalSince(persisted) >= persistEvery else { return Reading(now: clock) }
        persisted = clock
        return Reading(now: clock, persist: clock)
    }
}

/// The licence clock's mark on disk (`clock-high-water.txt`), replaced atomically.
public struct LicenceClockFile: Sendable {
    public let directory: URL
    var file: URL { directory.appendingPathComponent("clock-high-water.txt") }

    public init(directory: URL) { self.directory = directory }

    /// The stored mark; `.distantPast` when there is none or it cannot be read.
    public func load() -> Date {
        (try? String(contentsOf: file, encoding: .utf8)).flatMap { LicenceDate.parse($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            ?? .distantPast
    }

    public func save(_ date: Date) throws {
        try LicenceFileStore(directory: directory).writeAtomically(LicenceDate.format(date) + "\n", to: file)
    }
}
