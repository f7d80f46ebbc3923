import Foundation

/// What a licence can switch on. The catalogue is closed: a licence naming anything else is
/// refused, because a server cannot honour a feature it does not know.
public enum Feature: String, CaseIterable, Sendable, Codable, Comparable {
    /// A primary/secondary pair: the primary dials and shares this licence with its secondary.
    case failover
    case recording
    case telephony
    case radio

    public static func < (lhs: Feature, rhs: Feature) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The fields of a licence, signed or not yet. See docs/licensing.md for the text form.
public struct Licence: Equatable, Sendable {
    public var licenceId: String
    public var licensee: String
    public var issued: Date
    public var expires: Date
    /// Concurrently logged-in clients, for the pair as a whole.
    public var maxClients: Int
    public var features: Set<Feature>
    /// The primary server this licence is for.
    public var serverId: String
    /// Fingerprint of the vendor key that signed it.
    public var signingKey: String
    public var signature: Data

    public init(
        licenceId: String, licensee: String, issued: Date, expires: Date, maxClients: Int, features: Set<Feature>,
        serverId: String, signingKey: String = "", signature: Data = Data()
    ) {
        self.licenceId = licenceId
        self.licensee = licensee
        self.issued = issued
        self.expires = expires
        self.maxClients = maxClients
        self.features = features
        self.serverId = serverId
        self.signingKey = signingKey
        self.signature = signature
    }

    public static let formatVersion = 1
    static let beginLine = "-----BEGIN VCOM LICENCE-----"
    static let endLine = "-----END VCOM LICENCE-----"
    static let fieldOrder = ["format", "licence-id", "licensee", "issued", "expires", "max-clients", "features", "server-id", "signing-key"]

    /// The signed fields, one per line, in a fixed order and spelling. The signature covers
    /// these bytes, not the file as typed, so re-indenting or re-wrapping a pasted licence
    /// does not break it while changing any value does.
    public var canonicalText: String {
        Self.fieldOrder.map { "\($0): \(value(of: $0))" }.joined(separator: "\n") + "\n"
    }

    func value(of field: String) -> String {
        switch field {
        case "format": String(Self.formatVersion)
        case "licence-id": licenceId
        case "licensee": licensee
        case "issued": LicenceDate.format(issued)
        case "expires": LicenceDate.format(expires)
        case "max-clients": String(maxClients)
        case "features": features.sorted().map(\.rawValue).joined(separator: ", ")
        case "server-id": serverId
        case "signing-key": signingKey
        default: ""
        }
    }

    /// The licence file an administrator keeps, reads and pastes.
    public var text: String {
        """
        # VCOM licence for \(licensee). Keep the block below intact: it is signed.
        \(Self.beginLine)
        \(canonicalText)signature: \(signature.base64EncodedString())
        \(Self.endLine)

        """
    }

    public func includes(_ feature: Feature) -> Bool { features.contains(feature) }
}
