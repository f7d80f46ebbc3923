import Foundation

/// Everything that can be wrong with a licence or a key, each with its own message and the
/// exit code `vcom-license` uses for it (docs/licensing.md).
public enum LicenceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not licence text at all, or cut off.
    case malformed(String)
    case missingField(String)
    case duplicateField(String, line: Int)
    case unknownField(String, line: Int)
    case invalidValue(field: String, value: String, expected: String)
    case unknownFeature(String)
    /// The text was changed after it was signed.
    case tampered(licenceId: String)
    /// Signed with a key this server does not trust.
    case untrustedKey(fingerprint: String)
    case expired(licenceId: String, on: Date)
    case notYetValid(licenceId: String, from: Date)
    case boundToAnotherServer(licenceId: String, licensed: String, actual: String)
    case featureNotLicensed(Feature, licenceId: String)
    /// A server asked for a licence it does not have.
    case noLicence
    case badKey(String)
    /// A licence that would replace a newer or still valid one (on the secondary).
    case downgrade(offered: String, held: String, reason: String)

    public var description: String {
        switch self {
        case .malformed(let detail): return "not a valid VCOM licence: \(detail)"
        case .missingField(let field): return "the licence has no '\(field)' field"
        case .duplicateField(let field, let line): return "line \(line): field '\(field)' appears twice"
        case .unknownField(let field, let line): return "line \(line): unknown field '\(field)' (it would not be covered by the signature)"
        case .invalidValue(let field, let value, let expected): return "field '\(field)' is '\(value)', expected \(expected)"
        case .unknownFeature(let name):
            return "unknown feature '\(name)' (known: \(Feature.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .tampered(let id): return "licence \(id) was altered after it was signed: its signature does not match its text"
        case .untrustedKey(let fingerprint): return "the licence is signed with key \(fingerprint), which this server does not trust"
        case .expired(let id, let date): return "licence \(id) expired on \(LicenceDate.format(date))"
        case .notYetValid(let id, let date): return "licence \(id) is not valid before \(LicenceDate.format(date))"
        case .boundToAnotherServer(let id, let licensed, let actual):
            return "licence \(id) is bound to server '\(licensed)', not to '\(actual)'"
        case .featureNotLicensed(let feature, let id): return "licence \(id) does not include the '\(feature.rawValue)' feature"
        case .badKey(let detail): return "bad key: \(detail)"
        case .noLicence: return "no valid licence is installed on this server"
        case .downgrade(let offered, let held, let reason):
            return "licence \(offered) refused: it would replace licence \(held) (\(reason))"
        }
    }

    /// The exit code of `vcom-license verify` for this error.
    public var exitCode: Int32 {
        switch self {
        case .malformed, .missingField, .duplicateField, .unknownField, .invalidValue: 10
        case .tampered: 11
        case .untrustedKey: 12
        case .expired: 13
        case .notYetValid: 14
        case .boundToAnotherServer: 15
        case .unknownFeature: 16
        case .featureNotLicensed: 17
        case .badKey: 18
        case .noLicence: 19
        case .downgrade: 20
        }
    }
}

/// Licence timestamps: ISO 8601 in UTC, to the second ("2027-11-25T00:00:00Z").
public enum LicenceDate {
    public static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!))
    }

    public static func parse(_ text: String) -> Date? {
        try? Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!).parse(text)
    }

    /// A calendar day ("2027-11-25") at 00:00 UTC.
    public static func parseDay(_ text: String) -> Date? { parse(text + "T00:00:00Z") }
}
