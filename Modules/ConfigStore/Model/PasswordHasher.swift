import Crypto
import CryptoExtras
import Foundation

/// Salted slow password hashes (scrypt, from swift-crypto), stored as
/// `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt base64>$<hash base64>`.
///
/// A hash costs tens of milliseconds by design. Logins after a failover use session tokens
/// instead, so ten thousand clients reconnecting never pay it all at once.
public struct PasswordHasher: Sendable {
    /// log2 of scrypt's N. 14 (16 MiB, tens of ms) by default; tests may go lower.
    public var logRounds: Int
    public var blockSize = 8
    public var parallelism = 1

    public init(logRounds: Int = 14) {
        self.logRounds = logRounds
    }

    public func hash(_ password: String) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255, using: &generator) }
        let derived = try Self.derive(password, salt: salt, logRounds: logRounds, blockSize: blockSize, parallelism: parallelism)
        return "$scrypt$ln=\(logRounds),r=\(blockSize),p=\(parallelism)$\(Data(salt).base64EncodedString())$\(derived.base64EncodedString())"
    }

    /// Checks a password against a stored hash, in time independent of where they differ.
    public static func verify(_ password: String, against stored: String) -> Bool {
        guard let parsed = parse(stored),
            let derived = try? derive(password, salt: parsed.salt, logRounds: parsed.logRounds, blockSize: parsed.blockSize, parallelism: parsed.parallelism)
        else { return false }
        guard derived.count == parsed.hash.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(derived, parsed.hash) { difference |= a ^ b }
        return difference == 0
    }

    public static func isHash(_ stored: String) -> Bool { parse(stored) != nil }

    static func parse(_ stored: String) -> (logRounds: Int, blockSize: Int, parallelism: Int, salt: [UInt8], hash: Data)? {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "scrypt" else { return nil }
        var parameters: [String: Int] = [:]
        for pair in parts[2].split(separator: ",") {
            let kv = pair.split(separator: "=")
            guard kv.count == 2, let value = Int(kv[1]) else { return nil }
            parameters[String(kv[0])] = value
        }
        guard let ln = parameters["ln"], let r = parameters["r"], let p = parameters["p"],
            (1...20).contains(ln), (1...32).contains(r), (1...16).contains(p),
            let salt = Data(base64Encoded: String(parts[3])), salt.count >= 8,
            let hash = Data(base64Encoded: String(parts[4])), hash.count == 32
        else { return nil }
        return (ln, r, p, Array(salt), hash)
    }

    static func derive(_ password: String, salt: [UInt8], logRounds: Int, blockSize: Int, parallelism: Int) throws -> Data {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: 1 << logRounds, blockSize: blockSize,
            parallelism: parallelism)
        return key.withUnsafeBytes { Data($0) }
    }
}
