import Foundation
import HashTreeCollections
import PairModel
import Wire

/// An operator: a person at an intercom panel.
public struct Operator: Equatable, Sendable, Codable {
    /// Stable number clients use on the wire (key targets); assigned by the store.
    public var id: UInt32
    public var username: String
    public var displayName: String
    /// A salted slow hash (`PasswordHasher`), never the password.
    public var passwordHash: String
    public var enabled: Bool

    public init(id: UInt32 = 0, username: String, displayName: String, passwordHash: String, enabled: Bool = true) {
        self.id = id
        self.username = username
        self.displayName = displayName
        self.passwordHash = passwordHash
        self.enabled = enabled
    }
}

/// A named group channel.
public struct PartyLine: Equatable, Sendable, Codable {
    public var id: UInt32
    public var name: String

    public init(id: UInt32 = 0, name: String) {
        self.id = id
        self.name = name
    }
}

/// What a panel key talks or listens to.
public enum KeyBinding: Equatable, Sendable, Hashable {
    case partyLine(String)
    case `operator`(String)
}

/// One key on an operator's panel.
public struct PanelKey: Equatable, Sendable {
    /// Position on the panel, 1 to 64.
    public var slot: Int
    public var talk: Bool
    public var listen: Bool
    public var target: KeyBinding
    /// Latching keys stay on when released; momentary ones only while held.
    public var latching: Bool

    public init(slot: Int, talk: Bool, listen: Bool, target: KeyBinding, latching: Bool) {
        self.slot = slot
        self.talk = talk
        self.listen = listen
        self.target = target
        self.latching = latching
    }
}

/// An account of the System Administration tool.
public struct AdminAccount: Equatable, Sendable {
    public var username: String
    /// A SCRAM-SHA-256 verifier (`SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey`, what the
    /// admin port's login needs), or an scrypt hash from before the admin port existed (such an
    /// account cannot log in until it is given a new password).
    public var passwordHash: String
    public var role: AdminRole

    public init(username: String, passwordHash: String, role: AdminRole) {
        self.username = username
        self.passwordHash = passwordHash
        self.role = role
    }
}

extension AdminAccount {
    /// Nil when `stored` is a SCRAM-SHA-256 verifier in PostgreSQL's form or an scrypt hash;
    /// the reason otherwise. (AdminProtocol computes and checks verifiers; this only checks the
    /// shape, so a replicated or imported account cannot hold a password in clear.)
    public static func verifierProblem(_ stored: String, of owner: String) -> String? {
        let prefix = "SCRAM-SHA-256$"
        guard stored.hasPrefix(prefix) else { return PasswordHasher.problem(with: stored, of: owner) }
        let parts = stored.dropFirst(prefix.count).split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return "the password verifier of \(owner) is malformed" }
        let head = parts[0].split(separator: ":", omittingEmptySubsequences: false)
        let keys = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        guard head.count == 2, let rounds = Int(head[0]), keys.count == 2,
            Data(base64Encoded: String(head[1])).map({ !$0.isEmpty }) == true,
            keys.allSatisfy({ Data(base64Encoded: String($0))?.count == 32 })
        else { return "the password verifier of \(owner) is malformed" }
        guard (4096...10_000_000).contains(rounds) else { return "the password verifier of \(owner) has \(rounds) rounds (4096 to 10,000,000)" }
        return nil
    }
}

/// A session that may no longer log in with its token: the chain of tokens that began with
/// `username`'s password login at `issuedAtMs` (a renewed token keeps its chain's issue and
/// expiry times). Written when an administrator kicks the session or the client logs out, and
/// replicated, so neither server takes the token again, a failover included. Kept until the
/// chain would have expired anyway.
public struct RevokedSession: Equatable, Sendable, Hashable {
    public var username: String
    public var issuedAtMs: UInt64
    public var expiresAtMs: UInt64
    /// When it was revoked: entries expired by then are dropped as this one is recorded.
    public var revokedAtMs: UInt64

    public init(username: String, issuedAtMs: UInt64, expiresAtMs: UInt64, revokedAtMs: UInt64) {
        self.username = username
        self.issuedAtMs = issuedAtMs
        self.expiresAtMs = expiresAtMs
        self.revokedAtMs = revokedAtMs
    }

    /// Its key in `SystemConfiguration.revokedSessions`.
    public var key: String { Self.key(username: username, issuedAtMs: issuedAtMs) }
    public static func key(username: String, issuedAtMs: UInt64) -> String { "\(nameKey(username)) \(issuedAtMs)" }
}

/// The whole system configuration at one revision, kept in memory for reads and validation
/// (SQLite holds the durable copy).
///
/// The tables are persistent hash tries (swift-collections' `TreeDictionary`): a write copies
/// only the path to the entries it touches, never a whole table, so its cost does not grow
/// with the configuration (a plain `Dictionary` copied all of it on every write, 187 ms per
/// write at a million settings).
public struct SystemConfiguration: Sendable {
    /// Keyed by `nameKey(username)`: names are unique regardless of case and of Unicode
    /// spelling (NFC and NFD of "Café" are one name).
    public package(set) var operators: TreeDictionary<String, Operator> = [:]
    public package(set) var partyLines: TreeDictionary<String, PartyLine> = [:]
    /// Keyed by `nameKey` of the operator's username, sorted by slot.
    public package(set) var keys: TreeDictionary<String, [PanelKey]> = [:]
    public package(set) var admins: TreeDictionary<String, AdminAccount> = [:]
    public package(set) var settings: TreeDictionary<String, String> = [:]
    /// Session token chains that no longer log in, by `RevokedSession.key`.
    public package(set) var revokedSessions: TreeDictionary<String, RevokedSession> = [:]

    // Derived indexes, kept up to date by `setPanel` and rebuilt after bulk loads; they are not
    // part of the configuration's value (see `==`).
    /// Panel keys in all panels (bounded by `ConfigLimits.panelKeys`).
    var keyCount = 0
    /// How many keys point at each target, so removing an entry checks "still in use" in
    /// constant time; the list of users is only built for the error message.
    var references: TreeDictionary<TargetKey, Int> = [:]
    /// The highest entry number ever handed out here: new ids continue above it without a
    /// scan of every id (creating 40,000 operators in one write was quadratic).
    package var idHighWater: UInt32 = 0

    enum TargetKey: Hashable, Sendable {
        case partyLine(String)
        case `operator`(String)

        init(_ binding: KeyBinding) {
            switch binding {
            case .partyLine(let name): self = .partyLine(nameKey(name))
            case .operator(let name): self = .operator(nameKey(name))
            }
        }
    }

    public init() {}

    public func `operator`(_ username: String) -> Operator? { operators[nameKey(username)] }
    public func partyLine(_ name: String) -> PartyLine? { partyLines[nameKey(name)] }
    public func keys(of username: String) -> [PanelKey] { keys[nameKey(username)] ?? [] }
    public func admin(_ username: String) -> AdminAccount? { admins[nameKey(username)] }
    /// Whether the token chain of `username` begun at `issuedAtMs` was revoked.
    public func isRevoked(username: String, issuedAtMs: UInt64) -> Bool {
        revokedSessions[RevokedSession.key(username: username, issuedAtMs: issuedAtMs)] != nil
    }
    /// Total panel keys over all operators.
    public var panelKeyCount: Int { keyCount }

    public var sortedOperators: [Operator] { operators.values.sorted { nameKey($0.username) < nameKey($1.username) } }
    public var sortedPartyLines: [PartyLine] { partyLines.values.sorted { nameKey($0.name) < nameKey($1.name) } }
    public var sortedAdmins: [AdminAccount] { admins.values.sorted { nameKey($0.username) < nameKey($1.username) } }

    /// Replaces one operator's panel (nil or empty: no keys), keeping the indexes in step.
    mutating func setPanel(_ owner: String, _ panel: [PanelKey]?) {
        let key = nameKey(owner)
        if let old = keys[key] {
            keyCount -= old.count
            for entry in old { release(TargetKey(entry.target)) }
        }
        let new = (panel?.isEmpty ?? true) ? nil : panel
        keys[key] = new
        for entry in new ?? [] { references[TargetKey(entry.target), default: 0] += 1 }
        keyCount += new?.count ?? 0
    }

    private mutating func release(_ target: TargetKey) {
        let remaining = (references[target] ?? 1) - 1
        references[target] = remaining > 0 ? remaining : nil
    }

    /// Recomputes the derived indexes after the tables were filled directly.
    package mutating func rebuildIndexes(idFloor: UInt32 = 0) {
        keyCount = 0
        references = [:]
        for panel in keys.values {
            keyCount += panel.count
            for entry in panel { references[TargetKey(entry.target), default: 0] += 1 }
        }
        idHighWater = max(idFloor, operators.values.map(\.id).max() ?? 0, partyLines.values.map(\.id).max() ?? 0)
    }
}

extension SystemConfiguration: Equatable {
    /// The configuration's content; the derived indexes follow from it.
    public static func == (lhs: SystemConfiguration, rhs: SystemConfiguration) -> Bool {
        lhs.operators == rhs.operators && lhs.partyLines == rhs.partyLines && lhs.keys == rhs.keys && lhs.admins == rhs.admins
            && lhs.settings == rhs.settings && lhs.revokedSessions == rhs.revokedSessions
    }
}

/// The key a name is stored and compared under: Unicode NFC, then lower case. SQLite
/// compares keys byte for byte, so two spellings of one name must become the same bytes
/// before they reach it.
public func nameKey(_ name: String) -> String {
    // ASCII (nearly every name) is its own NFC: skip Foundation's normalization, which costs
    // microseconds a string and was a third of a 100,000-record catch-up.
    if name.utf8.allSatisfy({ $0 < 0x80 }) { return name.lowercased() }
    return unicodeNFC(unicodeNFC(name).lowercased())
}

/// Unicode NFC, with ASCII passed through as is.
func unicodeNFC(_ text: String) -> String {
    text.utf8.allSatisfy({ $0 < 0x80 }) ? text : text.precomposedStringWithCanonicalMapping
}
