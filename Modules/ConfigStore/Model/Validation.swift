import Foundation

/// The rules every change must keep. `applying` returns the configuration after the change,
/// and the change as it will be recorded (new ids filled in), or throws what is wrong.
extension SystemConfiguration {
    /// - Parameters:
    ///   - assigningIds: true for a new write (ids of new entries are minted here); false
    ///     when the change already carries its ids (a recorded change, an import).
    ///   - checkingFormat: false only when replaying a record another server validated.
    public func applying(_ change: ConfigChange, assigningIds: Bool = true, checkingFormat: Bool = true) throws(ConfigError)
        -> (SystemConfiguration, ConfigChange)
    {
        var next = self
        let recorded = try next.apply(change, assigningIds: assigningIds, checkingFormat: checkingFormat)
        return (next, recorded)
    }

    /// Applies a change in place (no copy of the whole configuration, so a batch of thousands
    /// stays linear). Every check comes before the first mutation: on error nothing changed.
    ///
    /// A replayed record (`checkingFormat: false`) skips the format checks of names, texts and
    /// hashes: the server that wrote it ran them, and they are most of the cost of applying a
    /// catch-up. The referential rules (targets exist, nothing in use is removed) always run,
    /// because they are what keeps a replica consistent.
    @discardableResult
    public mutating func apply(_ change: ConfigChange, assigningIds: Bool = true, checkingFormat: Bool = true) throws(ConfigError)
        -> ConfigChange
    {
        var recorded = change
        switch change {
        case .putOperator(var value):
            if checkingFormat { try Self.check([
                Self.name(value.username, "operator username"),
                Self.text(value.displayName, "display name of '\(value.username)'", limit: 100),
                PasswordHasher.isHash(value.passwordHash) ? nil : "the password of operator '\(value.username)' is not a stored hash",
            ]) }
            if assigningIds {
                value.id = self.operator(value.username)?.id ?? nextId(operators.values.map(\.id) + partyLines.values.map(\.id))
            }
            self.operators[value.username.lowercased()] = value
            recorded = .putOperator(value)
        case .removeOperator(let username):
            guard let existing = self.operator(username) else { throw .notFound("operator '\(username)'") }
            let users = keysUsing(.operator(existing.username)).filter { $0.owner.lowercased() != username.lowercased() }
            guard users.isEmpty else {
                throw .inUse("operator '\(existing.username)' is the target of keys: \(Self.list(users)); change those keys first")
            }
            self.operators[username.lowercased()] = nil
            self.keys[username.lowercased()] = nil
        case .putPartyLine(var value):
            if checkingFormat { try Self.check([Self.text(value.name, "party line name", limit: 64)]) }
            if assigningIds {
                value.id = partyLine(value.name)?.id ?? nextId(operators.values.map(\.id) + partyLines.values.map(\.id))
            }
            self.partyLines[value.name.lowercased()] = value
            recorded = .putPartyLine(value)
        case .removePartyLine(let name):
            guard let existing = partyLine(name) else { throw .notFound("party line '\(name)'") }
            let users = keysUsing(.partyLine(existing.name))
            guard users.isEmpty else {
                throw .inUse("party line '\(existing.name)' is used by keys: \(Self.list(users)); change those keys first")
            }
            self.partyLines[name.lowercased()] = nil
        case .setKeys(let username, let panel):
            guard let owner = self.operator(username) else { throw .notFound("operator '\(username)'") }
            try Self.check(panelProblems(panel, owner: owner.username))
            self.keys[username.lowercased()] = panel.isEmpty ? nil : panel.sorted { $0.slot < $1.slot }
        case .putAdmin(let value):
            if checkingFormat { try Self.check([
                Self.name(value.username, "admin username"),
                PasswordHasher.isHash(value.passwordHash) ? nil : "the password of admin '\(value.username)' is not a stored hash",
            ]) }
            self.admins[value.username.lowercased()] = value
        case .removeAdmin(let username):
            guard let existing = admin(username) else { throw .notFound("admin '\(username)'") }
            if existing.role == .admin, admins.values.filter({ $0.role == .admin }).count == 1 {
                throw .inUse("admin '\(existing.username)' is the last account with the admin role; create another first")
            }
            self.admins[username.lowercased()] = nil
        case .setSetting(let key, let value):
            if checkingFormat { try Self.check([Self.settingKey(key), Self.text(value, "value of setting '\(key)'", limit: 1024, allowEmpty: true)]) }
            self.settings[key] = value
        case .removeSetting(let key):
            guard settings[key] != nil else { throw .notFound("setting '\(key)'") }
            self.settings[key] = nil
        }
        return recorded
    }

    func nextId(_ taken: [UInt32]) -> UInt32 { (taken.max() ?? 0) + 1 }

    /// Keys (of any operator) bound to `target`, as (owner, slot).
    func keysUsing(_ target: KeyBinding) -> [(owner: String, slot: Int)] {
        var found: [(String, Int)] = []
        for (owner, panel) in keys.sorted(by: { $0.key < $1.key }) {
            for key in panel where Self.sameTarget(key.target, target) {
                found.append((operators[owner]?.username ?? owner, key.slot))
            }
        }
        return found
    }

    static func sameTarget(_ a: KeyBinding, _ b: KeyBinding) -> Bool {
        switch (a, b) {
        case (.partyLine(let x), .partyLine(let y)), (.operator(let x), .operator(let y)): x.lowercased() == y.lowercased()
        default: false
        }
    }

    func panelProblems(_ panel: [PanelKey], owner: String) -> [String?] {
        var problems: [String?] = []
        var slots = Set<Int>()
        for key in panel {
            let label = "key \(key.slot) of '\(owner)'"
            if !(1...64).contains(key.slot) { problems.append("\(label): slot must be 1 to 64") }
            if !slots.insert(key.slot).inserted { problems.append("\(label): slot \(key.slot) is used twice") }
            if !key.talk && !key.listen { problems.append("\(label): a key must talk, listen or both") }
            switch key.target {
            case .partyLine(let name) where partyLine(name) == nil:
                problems.append("\(label): party line '\(name)' does not exist")
            case .operator(let name) where self.operator(name) == nil:
                problems.append("\(label): operator '\(name)' does not exist")
            case .operator(let name) where name.lowercased() == owner.lowercased():
                problems.append("\(label): a key cannot call its own operator")
            default: break
            }
        }
        return problems
    }

    static func check(_ problems: [String?]) throws(ConfigError) {
        let found = problems.compactMap { $0 }
        if !found.isEmpty { throw .invalid(found) }
    }

    static func list(_ keys: [(owner: String, slot: Int)]) -> String {
        keys.map { "\($0.owner) key \($0.slot)" }.joined(separator: ", ")
    }

    /// Names are identifiers: letters, digits, '.', '_', '-', 1 to 64.
    static func name(_ value: String, _ what: String) -> String? {
        let ok = (1...64).contains(value.count) && value.unicodeScalars.allSatisfy {
            $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0))
        }
        return ok ? nil : "\(what) '\(value)' must be 1 to 64 letters, digits, '.', '_' or '-'"
    }

    static func text(_ value: String, _ what: String, limit: Int, allowEmpty: Bool = false) -> String? {
        if value.isEmpty && !allowEmpty { return "\(what) must not be empty" }
        if value.count > limit { return "\(what) is longer than \(limit) characters" }
        if value.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) {
            return "\(what) must not contain control characters"
        }
        return nil
    }

    static func settingKey(_ key: String) -> String? {
        let ok = (1...64).contains(key.count) && key.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
        }
        return ok ? nil : "setting name '\(key)' must be 1 to 64 lower-case letters, digits, '.', '_' or '-'"
    }
}
