import ConfigModel
import ConfigStore
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Passwords this process has already verified against a stored hash, for a while: a login
/// with the same password against the same stored hash skips scrypt.
///
/// Why: one verification costs about 56 ms, and two threads give no speed-up, so a site of
/// 10,000 panels starting at once would wait ten minutes; after a failover the session tokens
/// spare that, but not at a cold start. What it costs: each entry is a SHA-256 over a random
/// per-process salt, the stored hash and the password, kept in memory only, at most 65,536 of
/// them, each for 15 minutes; a changed password has another stored hash and misses.
final class VerifiedPasswords: Sendable {
    private let salt: [UInt8]
    private let entries = NIOLockedValueBox([[UInt8]: Date]())
    let capacity: Int
    let lifetime: TimeInterval

    init(capacity: Int = 65_536, lifetime: TimeInterval = 900) {
        var generator = SystemRandomNumberGenerator()
        salt = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        self.capacity = capacity
        self.lifetime = lifetime
    }

    private func key(_ password: String, _ stored: String) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: salt)
        hasher.update(data: Array(stored.utf8))
        hasher.update(data: [0])
        hasher.update(data: Array(password.utf8))
        return Array(hasher.finalize())
    }

    func contains(_ password: String, against stored: String, at now: Date) -> Bool {
        let key = key(password, stored)
        return entries.withLockedValue { entries in
            guard let until = entries[key] else { return false }
            if until > now { return true }
            entries[key] = nil
            return false
        }
    }

    func remember(_ password: String, against stored: String, at now: Date) {
        let key = key(password, stored)
        entries.withLockedValue { entries in
            if entries.count >= capacity { entries = entries.filter { $0.value > now } }
            if entries.count >= capacity { entries.removeAll() }
            entries[key] = now.addingTimeInterval(lifetime)
        }
    }

    private let inFlight = NIOLockedValueBox([[UInt8]: EventLoopFuture<Bool>]())

    /// Whether `password` matches `stored`: from memory when it matched before, otherwise by
    /// one check that `schedule` runs (on the hashing threads, through `PasswordChecks`),
    /// shared by every login asking the same question meanwhile. Without that, 2,000 panels
    /// logging in at once with one password all missed the memory (the first scrypt had not
    /// finished) and queued 2,000 scrypts: a minute of two saturated cores, during which
    /// heartbeats went unanswered. Nil when `schedule` refused the check (the queue is full).
    func verify(
        _ password: String, against stored: String, at now: Date, on loop: EventLoop,
        check: @escaping @Sendable (String, String) -> Bool = { PasswordHasher.verify($0, against: $1) },
        schedule: (@escaping @Sendable () -> Bool) -> EventLoopFuture<Bool>?
    ) -> EventLoopFuture<Bool>? {
        if contains(password, against: stored, at: now) { return loop.makeSucceededFuture(true) }
        let key = key(password, stored)
        if let running = inFlight.withLockedValue({ $0[key] }) { return running.hop(to: loop) }
        guard let future = schedule({ check(password, stored) }) else { return nil }
        let shared = inFlight.withLockedValue { running -> EventLoopFuture<Bool>? in
            if let earlier = running[key] { return earlier }  // another login got there first
            running[key] = future
            return nil
        }
        if let shared { return shared.hop(to: loop) }
        future.whenComplete { result in
            if case .success(true) = result { self.remember(password, against: stored, at: now) }
            self.inFlight.withLockedValue { $0[key] = nil }
        }
        return future
    }

    /// The same, on `pool` directly (no queue).
    func verify(
        _ password: String, against stored: String, at now: Date, pool: NIOThreadPool, on loop: EventLoop,
        check: @escaping @Sendable (String, String) -> Bool = { PasswordHasher.verify($0, against: $1) }
    ) -> EventLoopFuture<Bool> {
        verify(password, against: stored, at: now, on: loop, check: check) { work in pool.runIfActive(eventLoop: loop, work) }!
    }
}
