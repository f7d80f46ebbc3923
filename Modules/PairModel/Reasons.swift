/// Why a login was refused. Codes a newer server adds decode as themselves and print as
/// unrecognized; the detail text is always there for a human.
public struct RefusalReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let notActiveServer = RefusalReason(rawValue: 1)
    public static let licenceLimit = RefusalReason(rawValue: 2)
    public static let badCredentials = RefusalReason(rawValue: 3)
    public static let licenceExpired = RefusalReason(rawValue: 4)
    public static let featureNotLicensed = RefusalReason(rawValue: 5)
    public static let accountDisabled = RefusalReason(rawValue: 6)
    public static let tokenExpired = RefusalReason(rawValue: 7)
    public static let notAuthorized = RefusalReason(rawValue: 8)
    /// The server holds no valid licence (a secondary that never received its primary's).
    public static let noLicence = RefusalReason(rawValue: 9)
    /// Too many password checks wait already (overall, or from this address): retry shortly.
    public static let busy = RefusalReason(rawValue: 10)
    /// Too many failed logins for this account from this address, or from this address:
    /// the detail says how long to wait. The password was not checked.
    public static let tooManyAttempts = RefusalReason(rawValue: 11)

    public var description: String {
        switch self {
        case .notActiveServer: "not the active server"
        case .licenceLimit: "licence limit"
        case .badCredentials: "bad credentials"
        case .licenceExpired: "licence expired"
        case .featureNotLicensed: "feature not licensed"
        case .accountDisabled: "account disabled"
        case .tokenExpired: "session token expired"
        case .notAuthorized: "not authorized"
        case .noLicence: "no licence"
        case .busy: "server busy, retry"
        case .tooManyAttempts: "too many failed attempts"
        default: "unrecognized reason \(rawValue)"
        }
    }
}

public struct RedirectReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// This server deactivated itself after losing the peer link and most clients.
    public static let deactivated = RedirectReason(rawValue: 1)
    /// An administrator moved service to the other server.
    public static let switchover = RedirectReason(rawValue: 2)
    /// Both servers were active after a split; this one yielded.
    public static let yieldedAfterSplit = RedirectReason(rawValue: 3)
    /// The other server took over after this one lost a large share of its clients.
    public static let handedOver = RedirectReason(rawValue: 4)

    public var description: String {
        switch self {
        case .deactivated: "server deactivated"
        case .switchover: "switchover"
        case .yieldedAfterSplit: "yielded after a split"
        case .handedOver: "handed over"
        default: "unrecognized reason \(rawValue)"
        }
    }
}

public struct ActivationReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The primary lost a large share of its clients while the link stayed up.
    public static let clientLoss = ActivationReason(rawValue: 1)
    /// An administrator moves service deliberately.
    public static let plannedSwitchover = ActivationReason(rawValue: 2)

    public var description: String {
        switch self {
        case .clientLoss: "client loss"
        case .plannedSwitchover: "planned switchover"
        default: "unrecognized reason \(rawValue)"
        }
    }
}
