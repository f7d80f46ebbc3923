import Foundation

/// Failed password checks, counted per (account, source) and per source, never per account
/// alone: a stranger guessing from one address cannot lock an operator or an administrator
/// out of their own address (the design brief: throttles key on account and source). A pure
/// value: the caller gives the time and keeps it under a lock.
///
/// Five failures for one account from one source within a minute lock that pair; twenty from
/// one source, whatever names it tries, lock the source. A lock lasts a minute, doubling with
/// each lock up to an hour. A lock is checked before the password is (an attempt during a lock
/// costs no hash and reveals nothing), so parallel attempts cannot each get a guess in, and a
/// correct password during a lock is refused like any other.
public struct LoginThrottle: Sendable {
    public struct Rules: Sendable, Equatable {
        public var failuresPerAccountAndSource = 5
        public var failuresPerSource = 20
        public var window: TimeInterval = 60
        public var firstLock: TimeInterval = 60
        public var longestLock: TimeInterval = 3600

        public init(failuresPerAccountAndSource: Int = 5, failuresPerSource: Int = 20) {
            self.failuresPerAccountAndSource = max(1, failuresPerAccountAndSource)
            self.failuresPerSource = max(1, failuresPerSource)
        }
    }

    let rules: Rules
    private struct Record {
        var failures: [Date] = []
        var lockedUntil: Date?
        var locks = 0
    }

    private var records: [String: Record] = [:]
    /// Records kept at most; beyond, those neither locked nor recently failed are forgotten.
    static let capacity = 20_000

    init(rules: Rules = Rules()) { self.rules = rules }

    private static func keys(account: String, source: String) -> [String] {
        ["source " + source, "account " + account.lowercased() + " from " + source]
    }

    /// Nil when the attempt may go on; otherwise how long the caller must wait.
    func refusal(account: String, source: String, at now: Date) -> TimeInterval? {
        Self.keys(account: account, source: source).compactMap { key -> TimeInterval? in
            guard let until = records[key]?.lockedUntil, until > now else { return nil }
            return until.timeIntervalSince(now)
        }.max()
    }

    /// A failed check; true when it locked the pair or the source.
    @discardableResult
    mutating func failed(account: String, source: String, at now: Date) -> Bool {
        var locked = false
        for key in Self.keys(account: account, source: source) {
            var record = records[key] ?? Record()
            record.failures = record.failures.filter { now.timeIntervalSince($0) < rules.window } + [now]
            let allowed = key.hasPrefix("source ") ? rules.failuresPerSource : rules.failuresPerAccountAndSource
            if record.failures.count >= allowed {
                let lock = min(rules.firstLock * pow(2, Double(min(record.locks, 20))), rules.longestLock)
                record.lockedUntil = now.addingTimeInterval(lock)
                record.locks += 1
                record.failures = []
                locked = true
            }
            records[key] = record
        }
        if records.count > Self.capacity {
            records = records.filter { $0.value.lockedUntil.map { $0 > now } ?? false || !$0.value.failures.isEmpty }
        }
        return locked
    }

    /// A correct password (never during a lock): that pair's failures are forgotten. The
    /// source's are not: a source guessing many accounts stays suspect.
    mutating func succeeded(account: String, source: String) {
        records["account " + account.lowercased() + " from " + source]?.failures = []
    }
}
