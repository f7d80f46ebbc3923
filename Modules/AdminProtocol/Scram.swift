import Crypto
import CryptoExtras
import Foundation

/// What a server stores for an administrator: SCRAM-SHA-256's verifier (RFC 5802, RFC 7677),
/// in PostgreSQL's text form `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
/// It cannot log in by itself: a proof needs ClientKey, of which it holds only the hash.
public struct ScramVerifier: Equatable, Sendable {
    public static let prefix = "SCRAM-SHA-256$"
    /// PBKDF2 rounds for new passwords (RFC 7677 asks for at least 4096).
    public static let defaultIterations = 100_000

    public var iterations: Int
    public var salt: [UInt8]
    public var storedKey: [UInt8]
    public var serverKey: [UInt8]

    /// A new verifier for `password`, with a random 16-byte salt.
    public init(password: String, iterations: Int = ScramVerifier.defaultIterations) throws {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        try self.init(password: password, salt: salt, iterations: iterations)
    }

    public init(password: String, salt: [UInt8], iterations: Int) throws {
        let salted = try Scram.saltedPassword(password, salt: salt, iterations: iterations)
        let clientKey = Scram.hmac(salted, "Client Key")
        self.iterations = iterations
        self.salt = salt
        storedKey = Array(SHA256.hash(data: clientKey))
        serverKey = Scram.hmac(salted, "Server Key")
    }

    init(iterations: Int, salt: [UInt8], storedKey: [UInt8], serverKey: [UInt8]) {
        self.iterations = iterations
        self.salt = salt
        self.storedKey = storedKey
        self.serverKey = serverKey
    }

    /// Parses the stored text; nil when it is not a SCRAM-SHA-256 verifier.
    public init?(_ text: String) {
        guard text.hasPrefix(Self.prefix) else { return nil }
        let parts = text.dropFirst(Self.prefix.count).split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let head = parts[0].split(separator: ":", omittingEmptySubsequences: false)
        let keys = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        guard head.count == 2, keys.count == 2, let iterations = Int(head[0]), (4096...10_000_000).contains(iterations),
            let salt = Data(base64Encoded: String(head[1])), !salt.isEmpty,
            let stored = Data(base64Encoded: String(keys[0])), stored.count == 32,
            let server = Data(base64Encoded: String(keys[1])), server.count == 32
        else { return nil }
        self.init(iterations: iterations, salt: Array(salt), storedKey: Array(stored), serverKey: Array(server))
    }

    public var text: String {
        Self.prefix + "\(iterations):\(Data(salt).base64EncodedString())$\(Data(storedKey).base64EncodedString()):\(Data(serverKey).base64EncodedString())"
    }
}

/// The computations both sides share.
public enum Scram {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case badPassword
        case badNonce
        case badProof
        case badServerSignature
        case badParameters(String)

        public var description: String {
            switch self {
            case .badPassword: "the password cannot be used (it is empty)"
            case .badNonce: "the server's nonce does not extend the client's"
            case .badProof: "wrong user name or password"
            case .badServerSignature: "the server could not prove it knows this account: it is not the server it claims to be"
            case .badParameters(let text): "bad authentication parameters: \(text)"
            }
        }
    }

    static func saltedPassword(_ password: String, salt: [UInt8], iterations: Int) throws -> [UInt8] {
        // RFC 7677 asks for SASLprep; we take the UTF-8 of the NFC form, which agrees with it
        // for every password without control or unassigned characters.
        let normalized = password.precomposedStringWithCanonicalMapping
        guard !normalized.isEmpty, iterations >= 1 else { throw Failure.badPassword }
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(normalized.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations)
        return key.withUnsafeBytes { Array($0) }
    }

    static func hmac(_ key: [UInt8], _ text: String) -> [UInt8] { hmac(key, Array(text.utf8)) }

    static func hmac(_ key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
    }

    /// RFC 5802's AuthMessage, in its text form, from the exchanged fields.
    public static func authMessage(username: String, clientNonce: String, nonce: String, salt: [UInt8], iterations: Int) -> String {
        let user = username.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
        return "n=\(user),r=\(clientNonce),r=\(nonce),s=\(Data(salt).base64EncodedString()),i=\(iterations),c=biws,r=\(nonce)"
    }

    /// 24 random bytes, base64: printable, no comma.
    public static func makeNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<24).map { _ in UInt8.random(in: .min ... .max, using: &generator) }).base64EncodedString()
    }

    static func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] { zip(a, b).map { $0 ^ $1 } }

    /// Constant time for equal lengths: a proof's check must not tell how much of it matched.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// The client's side of one exchange.
public struct ScramClient: Sendable {
    public let username: String
    public let clientNonce: String
    private let password: String
    private var expectedServerSignature: [UInt8]?

    public init(username: String, password: String, clientNonce: String = Scram.makeNonce()) {
        self.username = username
        self.password = password
        self.clientNonce = clientNonce
    }

    /// The proof for the server's challenge.
    public mutating func proof(nonce: String, salt: [UInt8], iterations: Int) throws -> [UInt8] {
        guard nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count else { throw Scram.Failure.badNonce }
        guard (4096...10_000_000).contains(iterations), !salt.isEmpty else {
            throw Scram.Failure.badParameters("\(iterations) iterations, \(salt.count) bytes of salt")
        }
        let salted = try Scram.saltedPassword(password, salt: salt, iterations: iterations)
        let clientKey = Scram.hmac(salted, "Client Key")
        let storedKey = Array(SHA256.hash(data: clientKey))
        let message = Scram.authMessage(username: username, clientNonce: clientNonce, nonce: nonce, salt: salt, iterations: iterations)
        let signature = Scram.hmac(storedKey, message)
        expectedServerSignature = Scram.hmac(Scram.hmac(salted, "Server Key"), message)
        return Scram.xor(clientKey, signature)
    }

    /// Checks the server's final signature: the server knew the verifier.
    public func verify(serverSignature: [UInt8]) throws {
        guard let expected = expectedServerSignature, Scram.equal(expected, serverSignature) else {
            throw Scram.Failure.badServerSignature
        }
    }
}

/// The server's side of one exchange.
public struct ScramServer: Sendable {
    public let username: String
    public let clientNonce: String
    public let nonce: String
    private let verifier: ScramVerifier

    /// `verifier` nil (an unknown user, or an account without a SCRAM verifier): a decoy whose
    /// salt is derived from the name, so the challenge looks the same and the proof fails.
    public init(username: String, clientNonce: String, verifier: ScramVerifier?, decoyKey: [UInt8], serverNonce: String = Scram.makeNonce()) {
        self.username = username
        self.clientNonce = clientNonce
        nonce = clientNonce + serverNonce
        if let verifier {
            self.verifier = verifier
        } else {
            let salt = Array(Scram.hmac(decoyKey, "decoy salt " + username).prefix(16))
            let unguessable = Scram.hmac(decoyKey, Scram.makeNonce())
            self.verifier = ScramVerifier(iterations: ScramVerifier.defaultIterations, salt: salt, storedKey: unguessable, serverKey: unguessable)
        }
    }

    public var salt: [UInt8] { verifier.salt }
    public var iterations: Int { verifier.iterations }

    /// Checks the client's proof; the server's signature when it is right.
    public func check(proof: [UInt8]) -> Result<[UInt8], Scram.Failure> {
        let message = Scram.authMessage(username: username, clientNonce: clientNonce, nonce: nonce, salt: verifier.salt, iterations: verifier.iterations)
        let signature = Scram.hmac(verifier.storedKey, message)
        guard proof.count == 32 else { return .failure(.badProof) }
        let clientKey = Scram.xor(proof, signature)
        guard Scram.equal(Array(SHA256.hash(data: clientKey)), verifier.storedKey) else { return .failure(.badProof) }
        return .success(Scram.hmac(verifier.serverKey, message))
    }
}
