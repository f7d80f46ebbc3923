import HashTreeCollections
/// What a change is about, to point at it in a file or a message.
package enum ChangeSubject: Hashable {
    case `operator`(String)
    case partyLine(String)
    case keys(String)
    case admin(String)
    case setting(String)
    /// One revoked session (by key), and the entries that expired by `prunedUpTo` (ms), which
    /// recording it drops.
    case revokedSession(String, prunedUpTo: UInt64)
}

extension ConfigChange {
    /// Everything on disk the change can alter: removing an operator also removes its keys.
    package var subjects: [ChangeSubject] {
        if case .removeOperator(let username) = self { return [.operator(nameKey(username)), .keys(nameKey(username))] }
        return [subject]
    }

    package var subject: ChangeSubject {
        switch self {
        case .putOperator(let value): .operator(nameKey(value.username))
        case .removeOperator(let username): .operator(nameKey(username))
        case .putPartyLine(let value): .partyLine(nameKey(value.name))
        case .removePartyLine(let name): .partyLine(nameKey(name))
        case .setKeys(let username, _): .keys(nameKey(username))
        case .putAdmin(let value): .admin(nameKey(value.username))
        case .removeAdmin(let username): .admin(nameKey(username))
        case .setSetting(let key, _), .removeSetting(let key): .setting(key)
        case .revokeSession(let value): .revokedSession(value.key, prunedUpTo: value.revokedAtMs)
        }
    }
}

extension ConfigError {
    /// The individual sentences of the error.
    var problems: [String] {
        if case .invalid(let problems) = self { return problems }
        return [description]
    }
}

extension SystemConfiguration {
    /// `target` with the ids of this configuration's entries of the same name, and fresh
    /// ones above every id in use for the others.
    func ids(for target: SystemConfiguration) -> SystemConfiguration {
        var result = target
        var next = max(idHighWater, (operators.values.map(\.id) + partyLines.values.map(\.id)).max() ?? 0)
        func assign<Entry>(_ table: WritableKeyPath<SystemConfiguration, TreeDictionary<String, Entry>>, _ id: WritableKeyPath<Entry, UInt32>) {
            for name in target[keyPath: table].keys.sorted() {
                if let existing = self[keyPath: table][name]?[keyPath: id] {
                    result[keyPath: table][name]?[keyPath: id] = existing
                } else {
                    next = next == .max ? .max : next + 1
                    result[keyPath: table][name]?[keyPath: id] = next
                }
            }
        }
        assign(\.partyLines, \.id)
        assign(\.operators, \.id)
        return result
    }

    /// The changes that turn `base` into this configuration, in an order every step of which
    /// is valid: party lines and operators before the keys that use them, keys changed
    /// before what they used is removed.
    public func changes(from base: SystemConfiguration) -> [ConfigChange] {
        var changes: [ConfigChange] = []
        for line in sortedPartyLines where base.partyLines[nameKey(line.name)] != line {
            changes.append(.putPartyLine(line))
        }
        for value in sortedOperators where base.operators[nameKey(value.username)] != value {
            changes.append(.putOperator(value))
        }
        let owners = Set(keys.keys).union(base.keys.keys).sorted()
        for owner in owners where keys[owner] ?? [] != base.keys[owner] ?? [] && operators[owner] != nil {
            changes.append(.setKeys(username: operators[owner]!.username, keys: keys[owner] ?? []))
        }
        for value in base.sortedOperators where operators[nameKey(value.username)] == nil {
            changes.append(.removeOperator(username: value.username))
        }
        for line in base.sortedPartyLines where partyLines[nameKey(line.name)] == nil {
            changes.append(.removePartyLine(name: line.name))
        }
        // Admins: additions first, so removing the last admin is never an intermediate step.
        for value in sortedAdmins where base.admins[nameKey(value.username)] != value {
            changes.append(.putAdmin(value))
        }
        for value in base.sortedAdmins where admins[nameKey(value.username)] == nil {
            changes.append(.removeAdmin(username: value.username))
        }
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) where base.settings[key] != value {
            changes.append(.setSetting(key: key, value: value))
        }
        for key in base.settings.keys.sorted() where settings[key] == nil {
            changes.append(.removeSetting(key: key))
        }
        return changes
    }

    /// One human-readable line per difference from `base` to this configuration.
    public func differences(from base: SystemConfiguration) -> [String] {
        changes(from: base).map { change in
            switch change {
            case .putPartyLine(let line): base.partyLine(line.name) == nil ? "+ party line \(line.name)" : "~ party line \(line.name)"
            case .removePartyLine(let name): "- party line \(name)"
            case .putOperator(let value):
                if let old = base.operator(value.username) {
                    "~ operator \(value.username): " + Self.fieldChanges(old, value).joined(separator: ", ")
                } else {
                    "+ operator \(value.username) (\(value.displayName))"
                }
            case .removeOperator(let username): "- operator \(username)"
            case .setKeys(let username, let keys):
                "~ keys of \(username): \(base.keys(of: username).count) → \(keys.count) keys (\(keys.map(Self.describe).joined(separator: "; ")))"
            case .putAdmin(let value): base.admin(value.username) == nil ? "+ admin \(value.username) (\(value.role))" : "~ admin \(value.username) (\(value.role))"
            case .removeAdmin(let username): "- admin \(username)"
            case .setSetting(let key, let value): base.settings[key] == nil ? "+ setting \(key) = \(value)" : "~ setting \(key): \(base.settings[key]!) → \(value)"
            case .removeSetting(let key): "- setting \(key)"
            case .revokeSession(let value): "- session token of \(value.username) issued at \(value.issuedAtMs)"
            }
        }
    }

    static func fieldChanges(_ old: Operator, _ new: Operator) -> [String] {
        var fields: [String] = []
        if old.displayName != new.displayName { fields.append("display name '\(old.displayName)' → '\(new.displayName)'") }
        if old.passwordHash != new.passwordHash { fields.append("password changed") }
        if old.enabled != new.enabled { fields.append(new.enabled ? "enabled" : "disabled") }
        if old.username != new.username { fields.append("spelled '\(new.username)'") }
        return fields.isEmpty ? ["id"] : fields
    }

    static func describe(_ key: PanelKey) -> String {
        let mode = [key.talk ? "talk" : nil, key.listen ? "listen" : nil].compactMap { $0 }.joined(separator: "+")
        let target =
            switch key.target {
            case .partyLine(let name): "party line \(name)"
            case .operator(let name): "operator \(name)"
            }
        return "\(key.slot): \(mode) \(target)\(key.latching ? ", latching" : "")"
    }
}

