import Foundation

/// Failed administrator logins, per account and per source address: five failures for one
/// account within a minute lock that account out, twenty from one address (whatever names it
/// tries) lock that address out; a minute, doubling on each lock up to an hour. The address
/// gets more room because colleagues share a jump host: one mistyped password must not lock
/// every administrator there out. A pure value: the time is given.
struct LoginGuard: Sendable {
    static let failuresAllowed = 5
    static let failuresAllowedPerSource = 20
    static let window: TimeInterval = 60
    static let firstLock: TimeInterval = 60
    static let longestLock: TimeInterval = 3600

    private struct Record {
        var failures: [Date] = []
        var lockedUntil: Date?
        var locks = 0
    }

    private var records: [String: Record] = [:]

    private static func keys(source: String, account: String) -> [String] { ["source " + source, "account " + account.lowercased()] }

    /// Nil when the attempt may go on; otherwise how long the caller must wait.
    func refusal(source: String, account: String, at now: Date) -> TimeInterval? {
        let waits = Self.keys(source: source, account: account).compactMap { key -> TimeInterval? in
            guard let until = records[key]?.lockedUntil, until > now else { return nil }
            return until.timeIntervalSince(now)
        }
        return waits.max()
    }

    mutating func failed(source: String, account: String, at now: Date) {
        for key in Self.keys(source: source, account: account) {
            var record = records[key] ?? Record()
            record.failures = record.failures.filter { now.timeIntervalSince($0) < Self.window } + [now]
            let allowed = key.hasPrefix("source ") ? Self.failuresAllowedPerSource : Self.failuresAllowed
            if record.failures.count >= allowed {
                let lock = min(Self.firstLock * pow(2, Double(record.locks)), Self.longestLock)
                record.lockedUntil = now.addingTimeInterval(lock)
                record.locks += 1
                record.failures = []
            }
            records[key] = record
        }
        // Bounded memory under a spray of names: forget what no longer matters.
        if records.count > 10_000 {
            records = records.filter { $0.value.lockedUntil.map { $0 > now } ?? false || !$0.value.failures.isEmpty }
        }
    }

    /// A success clears the account's failures (not the source's: a source guessing many
    /// accounts stays suspect).
    mutating func succeeded(account: String) {
        records["account " + account.lowercased()] = nil
    }
}
