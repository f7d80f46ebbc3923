/// Password hashes and administrator verifiers never leave a server below the admin role:
/// a viewer or an operator reading the configuration gets this marker in their place, and a
/// write made from such a read (disable an operator: read, change, write back) gets the stored
/// value back in place of the marker on the server. An offline check against a leaked
/// verifier needs no server and no lockout stops it, so it must not leak at all.
extension SystemConfiguration {
    public static let redactedSecret = "(redacted)"

    /// The configuration with every password hash and verifier replaced by the marker.
    public func redactingSecrets() -> SystemConfiguration {
        var copy = self
        for (key, var value) in operators {
            value.passwordHash = Self.redactedSecret
            copy.operators[key] = value
        }
        for (key, var value) in admins {
            value.passwordHash = Self.redactedSecret
            copy.admins[key] = value
        }
        return copy
    }

    /// True when some hash or verifier is the marker (an export made below the admin role).
    public var holdsRedactedSecrets: Bool {
        operators.values.contains { $0.passwordHash == Self.redactedSecret }
            || admins.values.contains { $0.passwordHash == Self.redactedSecret }
    }
}

extension SystemConfiguration {
    /// Puts the marker back on the entry a redacted change names (after it was checked with
    /// a placeholder, `ConfigChange.withPlaceholderSecret`).
    mutating func restoreRedaction(of change: ConfigChange) {
        switch change {
        case .putOperator(let value): operators[nameKey(value.username)]?.passwordHash = Self.redactedSecret
        case .putAdmin(let value): admins[nameKey(value.username)]?.passwordHash = Self.redactedSecret
        default: break
        }
    }
}

extension ConfigChange {
    /// Well-formed stand-ins for a redacted hash or verifier, for checking a document's other
    /// rules; no password matches them, and they are never stored.
    static let placeholderHash = "$scrypt$ln=14,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    static let placeholderVerifier = "SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

    var withPlaceholderSecret: ConfigChange {
        switch self {
        case .putOperator(var value) where value.passwordHash == SystemConfiguration.redactedSecret:
            value.passwordHash = Self.placeholderHash
            return .putOperator(value)
        case .putAdmin(var value) where value.passwordHash == SystemConfiguration.redactedSecret:
            value.passwordHash = Self.placeholderVerifier
            return .putAdmin(value)
        default:
            return self
        }
    }

    /// The change as shown below the admin role: a hash or verifier replaced by the marker.
    public func redactingSecrets() -> ConfigChange {
        switch self {
        case .putOperator(var value):
            value.passwordHash = SystemConfiguration.redactedSecret
            return .putOperator(value)
        case .putAdmin(var value):
            value.passwordHash = SystemConfiguration.redactedSecret
            return .putAdmin(value)
        default:
            return self
        }
    }

    /// Whether it carries the redaction marker in place of a hash or verifier.
    public var isRedacted: Bool {
        switch self {
        case .putOperator(let value): value.passwordHash == SystemConfiguration.redactedSecret
        case .putAdmin(let value): value.passwordHash == SystemConfiguration.redactedSecret
        default: false
        }
    }

    /// The change with a redacted hash or verifier replaced by the one `configuration` stores
    /// for that entry. A new entry with a redacted hash is refused: it has no password.
    public func restoringSecrets(from configuration: SystemConfiguration) throws(ConfigError) -> ConfigChange {
        switch self {
        case .putOperator(var value) where value.passwordHash == SystemConfiguration.redactedSecret:
            guard let stored = configuration.operator(value.username) else {
                throw .invalid(["operator '\(value.username)' has no password hash (it came from a redacted read): set one with users passwd"])
            }
            value.passwordHash = stored.passwordHash
            return .putOperator(value)
        case .putAdmin(var value) where value.passwordHash == SystemConfiguration.redactedSecret:
            guard let stored = configuration.admin(value.username) else {
                throw .invalid(["admin '\(value.username)' has no password verifier (it came from a redacted read): set one with admins passwd"])
            }
            value.passwordHash = stored.passwordHash
            return .putAdmin(value)
        default:
            return self
        }
    }
}
