import Crypto
import CryptoExtras
import Foundation

/// Salted slow password hashes (scrypt, from swift-crypto), stored as
/// `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt base64>$<hash base64>`.
///
/// A hash costs tens of milliseconds by design. Logins after a failover use session tokens
/// instead, so ten thousand clients reconnecting never pay it all at once.
///
/// Stored hashes arrive from imports, admin writes and replication, so their parameters are
/// bounded on every path in (`Bounds`): a hostile `ln=20,r=32,p=16` took 544 s and 4.2 GB for
/// one login, and a weak one would make a stolen database cheap to crack.
public struct PasswordHasher: Sendable {
    /// log2 of scrypt's N. 14 (16 MiB, about 56 ms here) by default.
    public var logRounds: Int
    public var blockSize = 8
    public var parallelism = 1

    /// What a stored hash may cost. Memory is scrypt's 128·r·N bytes; work is N·r·p.
    public enum Bounds {
        /// Below the default (N = 2^14, r = 8: 16 MiB) a hash is refused as too weak.
        public static let minimumMemory = 16 << 20
        /// 64 MiB: four concurrent logins stay within a quarter of a small server's memory.
        public static let maximumMemory = 64 << 20
        /// Four times the default's work: about 225 ms per verification on a 2-core machine.
        public static let maximumWork = (1 << 14) * 8 * 4
        public static let saltBytes = 8...64
        public static let hashBytes = 32
    }

    public init(logRounds: Int = 14) {
        self.logRounds = logRounds
    }

    public func hash(_ password: String) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255, using: &generator) }
        let stored = "$scrypt$ln=\(logRounds),r=\(blockSize),p=\(parallelism)$\(Data(salt).base64EncodedString())$"
        guard Self.costProblem(logRounds: logRounds, blockSize: blockSize, parallelism: parallelism) == nil else {
            throw CostOutOfBounds(detail: Self.costProblem(logRounds: logRounds, blockSize: blockSize, parallelism: parallelism)!)
        }
        let derived = try Self.derive(password, salt: salt, logRounds: logRounds, blockSize: blockSize, parallelism: parallelism)
        return stored + derived.base64EncodedString()
    }

    public struct CostOutOfBounds: Error, CustomStringConvertible {
        public var detail: String
        public var description: String { detail }
    }

    /// Checks a password against a stored hash, in time independent of where they differ.
    /// A hash outside the bounds never matches (and costs nothing).
    public static func verify(_ password: String, against stored: String) -> Bool {
        guard case .success(let parsed) = parse(stored),
            let derived = try? derive(password, salt: parsed.salt, logRounds: parsed.logRounds, blockSize: parsed.blockSize, parallelism: parsed.parallelism)
        else { return false }
        guard derived.count == parsed.hash.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(derived, parsed.hash) { difference |= a ^ b }
        return difference == 0
    }

    public static func isHash(_ stored: String) -> Bool {
        if case .success = parse(stored) { return true }
        return false
    }

    /// Why `stored` is not an acceptable stored hash for `owner`, or nil when it is.
    public static func problem(with stored: String, of owner: String) -> String? {
        switch parse(stored) {
        case .success: nil
        case .failure(.notAHash): "the password of \(owner) is not a stored hash"
        case .failure(.cost(let detail)): "the password hash of \(owner) \(detail)"
        }
    }

    struct Parsed {
        var logRounds: Int
        var blockSize: Int
        var parallelism: Int
        var salt: [UInt8]
        var hash: Data
    }

    enum ParseFailure: Error {
        case notAHash
        case cost(String)
    }

    static func parse(_ stored: String) -> Result<Parsed, ParseFailure> {
        guard stored.utf8.count <= 256 else { return .failure(.notAHash) }
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "scrypt" else { return .failure(.notAHash) }
        var parameters: [String: Int] = [:]
        for pair in parts[2].split(separator: ",") {
            let kv = pair.split(separator: "=")
            guard kv.count == 2, let value = Int(kv[1]), parameters[String(kv[0])] == nil else { return .failure(.notAHash) }
            parameters[String(kv[0])] = value
        }
        guard parameters.count == 3, let ln = parameters["ln"], let r = parameters["r"], let p = parameters["p"],
            let salt = Data(base64Encoded: String(parts[3])), Bounds.saltBytes.contains(salt.count),
            let hash = Data(base64Encoded: String(parts[4])), hash.count == Bounds.hashBytes
        else { return .failure(.notAHash) }
        if let problem = costProblem(logRounds: ln, blockSize: r, parallelism: p) { return .failure(.cost(problem)) }
        return .success(Parsed(logRounds: ln, blockSize: r, parallelism: p, salt: Array(salt), hash: hash))
    }

    /// Nil when scrypt(N = 2^logRounds, r, p) is within `Bounds`.
    static func costProblem(logRounds: Int, blockSize: Int, parallelism: Int) -> String? {
        guard (1...30).contains(logRounds), (1...64).contains(blockSize), (1...64).contains(parallelism) else {
            return "has scrypt parameters out of range (ln=\(logRounds), r=\(blockSize), p=\(parallelism))"
        }
        let memory = 128 * blockSize << logRounds
        let work = (1 << logRounds) * blockSize * parallelism
        if memory < Bounds.minimumMemory {
            return "is too weak (scrypt ln=\(logRounds), r=\(blockSize) uses \(memory >> 10) KiB; at least \(Bounds.minimumMemory >> 20) MiB is required)"
        }
        if memory > Bounds.maximumMemory || work > Bounds.maximumWork {
            return "costs too much to verify (scrypt ln=\(logRounds), r=\(blockSize), p=\(parallelism); at most \(Bounds.maximumMemory >> 20) MiB and 4 times the default work)"
        }
        return nil
    }

    static func derive(_ password: String, salt: [UInt8], logRounds: Int, blockSize: Int, parallelism: Int) throws -> Data {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: 1 << logRounds, blockSize: blockSize,
            parallelism: parallelism)
        return key.withUnsafeBytes { Data($0) }
    }
}
