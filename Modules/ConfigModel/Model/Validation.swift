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
    /// Names and texts are brought to Unicode NFC first, on every path in (writes, imports,
    /// replicated records): two spellings of "Café" are one party line, on disk too.
    ///
    /// A replayed record (`checkingFormat: false`) skips the format checks of names and texts:
    /// the server that wrote it ran them, and they are most of the cost of applying a catch-up.
    /// The referential rules (targets exist, nothing in use is removed), the limits and the
    /// bounds of password hashes always run: they keep a replica consistent and no replicated
    /// value can make this server trap or spend minutes on one login.
    @discardableResult
    public mutating func apply(_ change: ConfigChange, assigningIds: Bool = true, checkingFormat: Bool = true) throws(ConfigError)
        -> ConfigChange
    {
        let change = change.normalized
        var recorded = change
        switch change {
        case .putOperator(var value):
            if checkingFormat { try Self.check([
                Self.name(value.username, "operator username"),
                Self.text(value.displayName, "display name of '\(value.username)'", limit: ConfigLimits.displayName),
            ]) }
            let existing = self.operator(value.username)
            if existing?.passwordHash != value.passwordHash {  // an unchanged hash was checked when it came in
                try Self.check([PasswordHasher.problem(with: value.passwordHash, of: "operator '\(value.username)'")])
            }
            if existing == nil { try Self.within(operators.count, ConfigLimits.operators, "operators") }
            if assigningIds {
                if let id = existing?.id { value.id = id } else { value.id = try allocateId() }
            } else {
                idHighWater = max(idHighWater, value.id)
            }
            self.operators[nameKey(value.username)] = value
            recorded = .putOperator(value)
        case .removeOperator(let username):
            guard let existing = self.operator(username) else { throw .notFound("operator '\(username)'") }
            let ownCalls = keys(of: username).filter { Self.sameTarget($0.target, .operator(existing.username)) }.count
            if (references[.operator(nameKey(username))] ?? 0) > ownCalls {
                let users = keysUsing(.operator(existing.username)).filter { nameKey($0.owner) != nameKey(username) }
                throw .inUse("operator '\(existing.username)' is the target of keys: \(Self.list(users)); change those keys first")
            }
            setPanel(username, nil)
            self.operators[nameKey(username)] = nil
        case .putPartyLine(var value):
            if checkingFormat { try Self.check([Self.text(value.name, "party line name", limit: ConfigLimits.partyLineName)]) }
            let existing = partyLine(value.name)
            if existing == nil { try Self.within(partyLines.count, ConfigLimits.partyLines, "party lines") }
            if assigningIds {
                if let id = existing?.id { value.id = id } else { value.id = try allocateId() }
            } else {
                idHighWater = max(idHighWater, value.id)
            }
            self.partyLines[nameKey(value.name)] = value
            recorded = .putPartyLine(value)
        case .removePartyLine(let name):
            guard let existing = partyLine(name) else { throw .notFound("party line '\(name)'") }
            if references[.partyLine(nameKey(name))] != nil {
                throw .inUse("party line '\(existing.name)' is used by keys: \(Self.list(keysUsing(.partyLine(existing.name)))); change those keys first")
            }
            self.partyLines[nameKey(name)] = nil
        case .setKeys(let username, let panel):
            guard let owner = self.operator(username) else { throw .notFound("operator '\(username)'") }
            try Self.check(panelProblems(panel, owner: owner.username))
            let added = panel.count - keys(of: username).count
            if added > 0 && keyCount + added > ConfigLimits.panelKeys {
                throw .invalid(["the configuration holds \(keyCount) panel keys; \(added) more would pass the limit of \(ConfigLimits.panelKeys)"])
            }
            setPanel(username, panel.sorted { $0.slot < $1.slot })
        case .putAdmin(let value):
            if checkingFormat { try Self.check([Self.name(value.username, "admin username")]) }
            let existing = admin(value.username)
            if existing?.passwordHash != value.passwordHash {
                try Self.check([AdminAccount.verifierProblem(value.passwordHash, of: "admin '\(value.username)'")])
            }
            if existing == nil { try Self.within(admins.count, ConfigLimits.admins, "admin accounts") }
            if let existing, existing.role == .admin, value.role != .admin, adminCount == 1 {
                throw .inUse("admin '\(existing.username)' is the last account with the admin role; give another account that role first")
            }
            self.admins[nameKey(value.username)] = value
        case .removeAdmin(let username):
            guard let existing = admin(username) else { throw .notFound("admin '\(username)'") }
            if existing.role == .admin, adminCount == 1 {
                throw .inUse("admin '\(existing.username)' is the last account with the admin role; create another first")
            }
            self.admins[nameKey(username)] = nil
        case .setSetting(let key, let value):
            if checkingFormat {
                try Self.check([Self.settingKey(key), Self.text(value, "value of setting '\(key)'", limit: ConfigLimits.settingValue, allowEmpty: true)])
            }
            if key == MaintenanceWindow.settingKey, MaintenanceWindow(settingValue: value) == nil {
                throw .invalid(["setting '\(key)' is maintenance mode's (vcom-admin maintenance): 'since=MS;ends=MS|never;by=NAME;reason=TEXT'"])
            }
            if settings[key] == nil { try Self.within(settings.count, ConfigLimits.settings, "settings") }
            self.settings[key] = value
        case .removeSetting(let key):
            guard settings[key] != nil else { throw .notFound("setting '\(key)'") }
            self.settings[key] = nil
        case .revokeSession(let value):
            if checkingFormat { try Self.check([Self.name(value.username, "revoked session's username")]) }
            guard value.expiresAtMs > value.issuedAtMs else { throw .invalid(["a revoked session must expire after it was issued"]) }
            // Entries whose tokens expired by now no longer matter: dropped here, the same way
            // on every replica (the record carries the time).
            let expired = revokedSessions.filter { $0.value.expiresAtMs <= value.revokedAtMs }.keys
            for key in expired { revokedSessions[key] = nil }
            if revokedSessions[value.key] == nil { try Self.within(revokedSessions.count, ConfigLimits.revokedSessions, "revoked sessions") }
            revokedSessions[value.key] = value
        }
        return recorded
    }

    /// Why a configuration received whole (a snapshot) may not be installed: above a limit,
    /// or holding a password hash outside the bounds. Nil when it may.
    public func replicaProblem() -> String? {
        if operators.count > ConfigLimits.operators { return "the snapshot holds \(operators.count) operators, above the limit" }
        if partyLines.count > ConfigLimits.partyLines { return "the snapshot holds \(partyLines.count) party lines, above the limit" }
        if keyCount > ConfigLimits.panelKeys { return "the snapshot holds \(keyCount) panel keys, above the limit" }
        if admins.count > ConfigLimits.admins { return "the snapshot holds \(admins.count) admin accounts, above the limit" }
        if settings.count > ConfigLimits.settings { return "the snapshot holds \(settings.count) settings, above the limit" }
        if revokedSessions.count > ConfigLimits.revokedSessions {
            return "the snapshot holds \(revokedSessions.count) revoked sessions, above the limit"
        }
        for value in operators.values {
            if let problem = PasswordHasher.problem(with: value.passwordHash, of: "operator '\(value.username)'") { return problem }
        }
        for value in admins.values {
            if let problem = AdminAccount.verifierProblem(value.passwordHash, of: "admin '\(value.username)'") { return problem }
        }
        return nil
    }

    var adminCount: Int { admins.values.reduce(0) { $0 + ($1.role == .admin ? 1 : 0) } }

    /// A new entry number above every one handed out, without a scan. Once the 32-bit space is
    /// used up (ids are kept, never renumbered, and a replica may hold any), the lowest free
    /// number is taken; that rare path scans.
    mutating func allocateId() throws(ConfigError) -> UInt32 {
        if idHighWater < UInt32.max {
            idHighWater += 1
            return idHighWater
        }
        var used = Set(operators.values.map(\.id))
        used.formUnion(partyLines.values.map(\.id))
        guard let free = (UInt32(1)...UInt32.max).lazy.first(where: { !used.contains($0) }) else {
            throw .invalid(["every entry number is in use"])
        }
        return free
    }

    static func within(_ count: Int, _ limit: Int, _ what: String) throws(ConfigError) {
        if count >= limit { throw .invalid(["the configuration already holds \(count) \(what), the limit (docs/config-store.md)"]) }
    }

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
        case (.partyLine(let x), .partyLine(let y)), (.operator(let x), .operator(let y)): nameKey(x) == nameKey(y)
        default: false
        }
    }

    func panelProblems(_ panel: [PanelKey], owner: String) -> [String?] {
        var problems: [String?] = []
        var slots = Set<Int>()
        for key in panel {
            // The label is built only for a problem: a catch-up checks millions of good keys.
            func label() -> String { "key \(key.slot) of '\(owner)'" }
            if !(1...64).contains(key.slot) { problems.append("\(label()): slot must be 1 to 64") }
            if !slots.insert(key.slot).inserted { problems.append("\(label()): slot \(key.slot) is used twice") }
            if !key.talk && !key.listen { problems.append("\(label()): a key must talk, listen or both") }
            switch key.target {
            case .partyLine(let name) where partyLine(name) == nil:
                problems.append("\(label()): party line '\(name)' does not exist")
            case .operator(let name) where self.operator(name) == nil:
                problems.append("\(label()): operator '\(name)' does not exist")
            case .operator(let name) where nameKey(name) == nameKey(owner):
                problems.append("\(label()): a key cannot call its own operator")
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
        let ok = (1...ConfigLimits.identifierLength).contains(value.count) && value.unicodeScalars.allSatisfy {
            $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0))
        }
        return ok ? nil : "\(what) '\(value)' must be 1 to 64 letters, digits, '.', '_' or '-'"
    }

    static func text(_ value: String, _ what: String, limit: (characters: Int, bytes: Int), allowEmpty: Bool = false) -> String? {
        if value.isEmpty && !allowEmpty { return "\(what) must not be empty" }
        if !value.isEmpty && value.unicodeScalars.allSatisfy(\.properties.isWhitespace) {
            return "\(what) must not be only spaces"
        }
        if let first = value.unicodeScalars.first, let last = value.unicodeScalars.last,
            first.properties.isWhitespace || last.properties.isWhitespace
        {
            return "\(what) must not begin or end with a space"
        }
        if value.count > limit.characters { return "\(what) is longer than \(limit.characters) characters" }
        if value.utf8.count > limit.bytes { return "\(what) is longer than \(limit.bytes) bytes in UTF-8" }
        if value.unicodeScalars.contains(where: Self.isControl) {
            return "\(what) must not contain control characters"
        }
        return nil
    }

    /// Foundation's `controlCharacters` (categories Cc and Cf), without building the set on
    /// every call (it was most of the cost of a write).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return scalar.value < 0x20 || scalar.value == 0x7F }
        switch scalar.properties.generalCategory {
        case .control, .format: return true
        default: return false
        }
    }

    static func settingKey(_ key: String) -> String? {
        let ok = (1...ConfigLimits.identifierLength).contains(key.count) && key.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
        }
        return ok ? nil : "setting name '\(key)' must be 1 to 64 lower-case letters, digits, '.', '_' or '-'"
    }
}

extension ConfigChange {
    /// Every text of the change is ASCII (and so already NFC).
    var isASCII: Bool {
        func ascii(_ text: String) -> Bool { text.utf8.allSatisfy { $0 < 0x80 } }
        switch self {
        case .putOperator(let value): return ascii(value.username) && ascii(value.displayName)
        case .putPartyLine(let value): return ascii(value.name)
        case .setKeys(let username, let keys):
            return ascii(username)
                && keys.allSatisfy {
                    switch $0.target {
                    case .partyLine(let name), .operator(let name): ascii(name)
                    }
                }
        case .putAdmin(let value): return ascii(value.username)
        case .removeOperator(let name), .removePartyLine(let name), .removeAdmin(let name), .removeSetting(let name): return ascii(name)
        case .setSetting(let key, let value): return ascii(key) && ascii(value)
        case .revokeSession(let value): return ascii(value.username)
        }
    }

    /// The change with every name and text in Unicode NFC (see `nameKey`).
    var normalized: ConfigChange {
        guard !isASCII else { return self }
        func nfc(_ text: String) -> String { unicodeNFC(text) }
        func nfc(_ binding: KeyBinding) -> KeyBinding {
            switch binding {
            case .partyLine(let name): .partyLine(nfc(name))
            case .operator(let name): .operator(nfc(name))
            }
        }
        switch self {
        case .putOperator(var value):
            value.username = nfc(value.username)
            value.displayName = nfc(value.displayName)
            return .putOperator(value)
        case .removeOperator(let username): return .removeOperator(username: nfc(username))
        case .putPartyLine(var value):
            value.name = nfc(value.name)
            return .putPartyLine(value)
        case .removePartyLine(let name): return .removePartyLine(name: nfc(name))
        case .setKeys(let username, let keys):
            return .setKeys(username: nfc(username), keys: keys.map { var key = $0; key.target = nfc($0.target); return key })
        case .putAdmin(var value):
            value.username = nfc(value.username)
            return .putAdmin(value)
        case .removeAdmin(let username): return .removeAdmin(username: nfc(username))
        case .setSetting(let key, let value): return .setSetting(key: nfc(key), value: nfc(value))
        case .removeSetting(let key): return .removeSetting(key: nfc(key))
        case .revokeSession(var value):
            value.username = nfc(value.username)
            return .revokeSession(value)
        }
    }
}
