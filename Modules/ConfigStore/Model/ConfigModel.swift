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
    public var passwordHash: String
    public var role: AdminRole

    public init(username: String, passwordHash: String, role: AdminRole) {
        self.username = username
        self.passwordHash = passwordHash
        self.role = role
    }
}

/// The whole system configuration at one revision. Small (thousands of entries), so it is
/// kept in memory for reads and validation; SQLite holds the durable copy.
public struct SystemConfiguration: Equatable, Sendable {
    /// Keyed by lower-cased name: names are unique regardless of case.
    public internal(set) var operators: [String: Operator] = [:]
    public internal(set) var partyLines: [String: PartyLine] = [:]
    /// Keyed by lower-cased operator username, sorted by slot.
    public internal(set) var keys: [String: [PanelKey]] = [:]
    public internal(set) var admins: [String: AdminAccount] = [:]
    public internal(set) var settings: [String: String] = [:]

    public init() {}

    public func `operator`(_ username: String) -> Operator? { operators[username.lowercased()] }
    public func partyLine(_ name: String) -> PartyLine? { partyLines[name.lowercased()] }
    public func keys(of username: String) -> [PanelKey] { keys[username.lowercased()] ?? [] }
    public func admin(_ username: String) -> AdminAccount? { admins[username.lowercased()] }

    public var sortedOperators: [Operator] { operators.values.sorted { $0.username.lowercased() < $1.username.lowercased() } }
    public var sortedPartyLines: [PartyLine] { partyLines.values.sorted { $0.name.lowercased() < $1.name.lowercased() } }
    public var sortedAdmins: [AdminAccount] { admins.values.sorted { $0.username.lowercased() < $1.username.lowercased() } }
}
