import Foundation
import PairModel
import Wire

/// The configuration as a JSON document an administrator can read, edit, keep under version
/// control, diff and import (format in docs/config-store.md).
///
/// Import is all or nothing: every problem in the file is reported with its location, and a
/// file with any problem changes nothing.
public enum ConfigDocument {
    public static let formatName = "vcom-config"
    public static let version = 1

    // MARK: Export

    public static func export(_ configuration: SystemConfiguration, revision: UInt64) -> String {
        var operators: [[String: Any]] = []
        for value in configuration.sortedOperators {
            let keys: [[String: Any]] = configuration.keys(of: value.username).map { key in
                var entry: [String: Any] = ["slot": key.slot, "talk": key.talk, "listen": key.listen, "latching": key.latching]
                switch key.target {
                case .partyLine(let name): entry["partyLine"] = name
                case .operator(let name): entry["operator"] = name
                }
                return entry
            }
            operators.append([
                "id": Int(value.id), "username": value.username, "displayName": value.displayName, "passwordHash": value.passwordHash,
                "enabled": value.enabled, "keys": keys,
            ])
        }
        // Says whether the hashes and verifiers are in it: an export made below the admin role
        // holds the redaction marker instead, and is not a backup of the passwords.
        let document: [String: Any] = [
            "format": formatName, "version": version, "revision": Int(revision), "operators": operators,
            "secrets": configuration.holdsRedactedSecrets ? "redacted" : "included",
            "partyLines": configuration.sortedPartyLines.map { ["id": Int($0.id), "name": $0.name] as [String: Any] },
            "admins": configuration.sortedAdmins.map {
                ["username": $0.username, "passwordHash": $0.passwordHash, "role": $0.role.description] as [String: Any]
            },
            "settings": Dictionary(uniqueKeysWithValues: configuration.settings.map { ($0.key, $0.value) }),
        ]
        let data = try! JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    // MARK: Import

    /// Reads a document into a configuration. Ids are taken from `current` for entries that
    /// exist there (matched by name) and minted for new ones: ids in the file are informational.
    public static func parse(_ text: String, current: SystemConfiguration = SystemConfiguration()) throws(ConfigError) -> SystemConfiguration {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: Data(text.utf8))
        } catch {
            throw .importProblems([ImportProblem(location: syntaxLocation(of: error, in: text), message: "not valid JSON")])
        }
        var reader = Reader()
        var target = SystemConfiguration()
        guard let object = reader.object(root, at: "document") else { throw .importProblems(reader.problems) }
        reader.allowOnly(["format", "version", "revision", "operators", "partyLines", "admins", "settings", "secrets"], in: object, at: "document")
        if reader.string(object["format"], at: "format") != formatName {
            reader.problem("format", "must be \"\(formatName)\"")
        }
        if let given = reader.integer(object["version"], at: "version"), given != version {
            reader.problem("version", "is \(given); this build reads version \(version)")
        }

        for (index, entry) in reader.array(object["partyLines"] ?? [Any](), at: "partyLines").enumerated() {
            let path = "partyLines[\(index)]"
            guard let fields = reader.object(entry, at: path) else { continue }
            reader.allowOnly(["id", "name"], in: fields, at: path)
            guard let name = reader.string(fields["name"], at: "\(path).name") else { continue }
            if target.partyLine(name) != nil { reader.problem("\(path).name", "party line '\(name)' appears twice") }
            target.partyLines[nameKey(name)] = PartyLine(id: 0, name: name)
            reader.locations[.partyLine(nameKey(name))] = path
        }
        var panels: [(username: String, keys: [PanelKey], path: String)] = []
        for (index, entry) in reader.array(object["operators"] ?? [Any](), at: "operators").enumerated() {
            let path = "operators[\(index)]"
            guard let fields = reader.object(entry, at: path) else { continue }
            reader.allowOnly(["id", "username", "displayName", "passwordHash", "enabled", "keys"], in: fields, at: path)
            // Every field is read (and its problem reported) before giving up on the entry.
            let username = reader.string(fields["username"], at: "\(path).username")
            let displayName = reader.string(fields["displayName"], at: "\(path).displayName")
            let passwordHash = reader.string(fields["passwordHash"], at: "\(path).passwordHash")
            let enabled = fields["enabled"] == nil ? true : reader.bool(fields["enabled"], at: "\(path).enabled")
            guard let username, let displayName, var passwordHash, let enabled else { continue }
            // A redacted export (made below the admin role) keeps the stored hash of an operator
            // that exists; a new one needs a real hash. Read below the admin role, the current
            // configuration is redacted too: an existing operator's hash in the file cannot be
            // compared with it, and stays as stored (passwords change with users passwd).
            if current.operator(username)?.passwordHash == SystemConfiguration.redactedSecret {
                passwordHash = SystemConfiguration.redactedSecret
            } else if passwordHash == SystemConfiguration.redactedSecret {
                guard let stored = current.operator(username)?.passwordHash else {
                    reader.problem("\(path).passwordHash", "is redacted and operator '\(username)' does not exist yet: give a hash (vcom-server hash-password)")
                    continue
                }
                passwordHash = stored
            }
            if target.operator(username) != nil { reader.problem("\(path).username", "operator '\(username)' appears twice") }
            target.operators[nameKey(username)] = Operator(id: 0, username: username, displayName: displayName, passwordHash: passwordHash, enabled: enabled)
            reader.locations[.operator(nameKey(username))] = path
            var keys: [PanelKey] = []
            for (keyIndex, keyEntry) in reader.array(fields["keys"] ?? [Any](), at: "\(path).keys").enumerated() {
                let keyPath = "\(path).keys[\(keyIndex)]"
                guard let key = reader.object(keyEntry, at: keyPath) else { continue }
                reader.allowOnly(["slot", "talk", "listen", "latching", "partyLine", "operator"], in: key, at: keyPath)
                let slot = reader.integer(key["slot"], at: "\(keyPath).slot")
                let talk = key["talk"] == nil ? false : reader.bool(key["talk"], at: "\(keyPath).talk")
                let listen = key["listen"] == nil ? false : reader.bool(key["listen"], at: "\(keyPath).listen")
                let latching = key["latching"] == nil ? false : reader.bool(key["latching"], at: "\(keyPath).latching")
                let binding: KeyBinding
                switch (key["partyLine"], key["operator"]) {
                case (let line?, nil):
                    guard let name = reader.string(line, at: "\(keyPath).partyLine") else { continue }
                    binding = .partyLine(name)
                case (nil, let other?):
                    guard let name = reader.string(other, at: "\(keyPath).operator") else { continue }
                    binding = .operator(name)
                default:
                    reader.problem(keyPath, "give exactly one of \"partyLine\" and \"operator\"")
                    continue
                }
                guard let slot, let talk, let listen, let latching else { continue }
                keys.append(PanelKey(slot: slot, talk: talk, listen: listen, target: binding, latching: latching))
            }
            if !keys.isEmpty { panels.append((username, keys, "\(path).keys")) }
        }
        for (index, entry) in reader.array(object["admins"] ?? [Any](), at: "admins").enumerated() {
            let path = "admins[\(index)]"
            guard let fields = reader.object(entry, at: path) else { continue }
            reader.allowOnly(["username", "passwordHash", "role"], in: fields, at: path)
            let username = reader.string(fields["username"], at: "\(path).username")
            let passwordHash = reader.string(fields["passwordHash"], at: "\(path).passwordHash")
            let roleName = reader.string(fields["role"], at: "\(path).role")
            guard let username, var passwordHash, let roleName else { continue }
            if current.admin(username)?.passwordHash == SystemConfiguration.redactedSecret {
                passwordHash = SystemConfiguration.redactedSecret
            } else if passwordHash == SystemConfiguration.redactedSecret {
                guard let stored = current.admin(username)?.passwordHash else {
                    reader.problem("\(path).passwordHash", "is redacted and admin '\(username)' does not exist yet: add it with vcom-admin admins add")
                    continue
                }
                passwordHash = stored
            }
            guard let role = AdminRole.allCases.first(where: { $0.description == roleName }) else {
                reader.problem("\(path).role", "'\(roleName)' is not one of viewer, operator, admin")
                continue
            }
            if target.admin(username) != nil { reader.problem("\(path).username", "admin '\(username)' appears twice") }
            target.admins[nameKey(username)] = AdminAccount(username: username, passwordHash: passwordHash, role: role)
            reader.locations[.admin(nameKey(username))] = path
        }
        if let settings = object["settings"] {
            if let map = reader.object(settings, at: "settings") {
                for (key, value) in map.sorted(by: { $0.key < $1.key }) {
                    guard let text = reader.string(value, at: "settings.\(key)") else { continue }
                    target.settings[key] = text
                    reader.locations[.setting(key)] = "settings.\(key)"
                }
            }
        }
        // The rules every write obeys, checked entry by entry so each problem gets a place.
        var checked = SystemConfiguration()
        var refused = Set<String>()  // operators whose own entry failed: their keys would only repeat it
        for change in current.ids(for: target).changes(from: SystemConfiguration()) + panels.map({ .setKeys(username: $0.username, keys: $0.keys) }) {
            if case .setKeys(let username, _) = change, refused.contains(nameKey(username)) { continue }
            do throws(ConfigError) {
                // A redacted hash (kept as stored) is checked as a well-formed one, then put back.
                (checked, _) = try checked.applying(change.withPlaceholderSecret, assigningIds: false)
                if change.isRedacted { checked.restoreRedaction(of: change) }
            } catch {
                let location =
                    if case .setKeys(let username, _) = change { panels.first { $0.username == username }?.path ?? "document" }
                    else { reader.locations[change.subject] ?? "document" }
                for message in error.problems { reader.problem(location, message) }
                if case .putOperator(let value) = change { refused.insert(nameKey(value.username)) }
            }
        }
        guard reader.problems.isEmpty else { throw .importProblems(reader.problems) }
        return checked
    }

    /// "line 3, column 18" from Foundation's "around character 42", counted in the text.
    static func syntaxLocation(of error: Error, in text: String) -> String {
        let detail = ((error as NSError).userInfo["NSDebugDescription"] as? String) ?? "\(error)"
        guard let range = detail.range(of: "character "),
            let offset = Int(detail[range.upperBound...].prefix { $0.isNumber })
        else { return "document" }
        var line = 1
        var column = 1
        for (index, character) in text.utf16.enumerated() {
            if index >= offset { break }
            if character == 10 {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return "line \(line), column \(column)"
    }
}

/// Collects every problem of a document instead of stopping at the first.
struct Reader {
    var problems: [ImportProblem] = []
    var locations: [ChangeSubject: String] = [:]

    mutating func problem(_ location: String, _ message: String) {
        problems.append(ImportProblem(location: location, message: message))
    }

    mutating func object(_ value: Any?, at path: String) -> [String: Any]? {
        guard let object = value as? [String: Any] else {
            problem(path, value == nil ? "is missing" : "must be an object")
            return nil
        }
        return object
    }

    mutating func array(_ value: Any, at path: String) -> [Any] {
        guard let array = value as? [Any] else {
            problem(path, "must be a list")
            return []
        }
        return array
    }

    mutating func string(_ value: Any?, at path: String) -> String? {
        guard let string = value as? String else {
            problem(path, value == nil ? "is missing" : "must be text")
            return nil
        }
        return string
    }

    /// JSONSerialization returns NSNumber for numbers and booleans alike, and on Linux an
    /// NSNumber holding 1 casts to both Int and Bool; its objCType ("c" for a boolean) is
    /// what tells them apart.
    static func isBoolean(_ value: Any?) -> Bool {
        guard let number = value as? NSNumber else { return value is Bool }
        return String(cString: number.objCType) == "c"
    }

    mutating func integer(_ value: Any?, at path: String) -> Int? {
        if let number = value as? NSNumber, !Self.isBoolean(number), let integer = Int(exactly: number.doubleValue) {
            return integer
        }
        problem(path, value == nil ? "is missing" : "must be a whole number")
        return nil
    }

    mutating func bool(_ value: Any?, at path: String) -> Bool? {
        guard Self.isBoolean(value), let bool = (value as? NSNumber)?.boolValue ?? (value as? Bool) else {
            problem(path, "must be true or false")
            return nil
        }
        return bool
    }

    mutating func allowOnly(_ names: Set<String>, in object: [String: Any], at path: String) {
        for name in object.keys.sorted() where !names.contains(name) {
            problem("\(path).\(name)", "unknown field (allowed: \(names.sorted().joined(separator: ", ")))")
        }
    }
}
