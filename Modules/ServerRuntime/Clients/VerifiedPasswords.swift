import Crypto
import Foundation
import NIOConcurrencyHelpers

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
}
