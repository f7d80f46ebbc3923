import Foundation
import PairModel

/// What the licence allows, asked at every login. A mission-critical system never loses a
/// session to its licence: an expired licence refuses *new* logins and warns, starting
/// `expiryWarningDays` before the end; sessions already in keep going.
public struct LicenceEnforcement: Sendable {
    public let licence: VerifiedLicence?
    public var expiryWarningDays: Int
    /// The expiry date as the warnings write it, formatted once: a licence near its end is
    /// asked at every login, and an ISO 8601 formatting per login was a twentieth of a
    /// standby's work while 10,000 clients logged in after a failover.
    private let expiresText: String

    public init(licence: VerifiedLicence?, expiryWarningDays: Int = 30) {
        self.licence = licence
        self.expiryWarningDays = expiryWarningDays
        expiresText = licence.map { LicenceDate.format($0.licence.expires) } ?? ""
    }

    public enum Admission: Equatable, Sendable {
        case admit(warning: String?)
        case refuse(RefusalReason, String)
    }

    /// - Parameter loggedInOnPair: clients logged in on this server *and* its peer: the
    ///   limit is the pair's, so a failover (or a handover, when both briefly serve) never
    ///   doubles the seats.
    public func admitLogin(loggedInOnPair: Int, at now: Date) -> Admission {
        guard let licence else { return .refuse(.noLicence, LicenceError.noLicence.description) }
        let fields = licence.licence
        switch licence.validity(at: now) {
        case .notYetValid:
            return .refuse(.licenceExpired, "licence \(fields.licenceId) is not valid before \(LicenceDate.format(fields.issued))")
        case .expired:
            return .refuse(
                .licenceExpired,
                "licence \(fields.licenceId) expired on \(expiresText); sessions already logged in continue, new logins need a renewed licence")
        case .valid:
            break
        }
        guard loggedInOnPair < fields.maxClients else {
            return .refuse(
                .licenceLimit,
                "licence \(fields.licenceId) allows \(fields.maxClients) concurrent clients across the pair and \(loggedInOnPair) are logged in")
        }
        return .admit(warning: expiryWarning(at: now))
    }

    /// Throws `featureNotLicensed` with a message naming the licence and the feature.
    public func require(_ feature: Feature) throws(LicenceError) {
        guard let licence else { throw .noLicence }
        guard licence.licence.includes(feature) else { throw .featureNotLicensed(feature, licenceId: licence.licence.licenceId) }
    }

    /// A warning while expiry is near or past; nil otherwise.
    public func expiryWarning(at now: Date) -> String? {
        guard let licence else { return nil }
        let fields = licence.licence
        let remaining = fields.expires.timeIntervalSince(now)
        if remaining <= 0 {
            return "licence \(fields.licenceId) EXPIRED on \(expiresText): new logins are refused"
        }
        guard remaining <= Double(expiryWarningDays) * 86_400 else { return nil }
        let days = Int((remaining / 86_400).rounded(.up))
        return "licence \(fields.licenceId) expires in \(days) day\(days == 1 ? "" : "s") (\(expiresText)); renew it"
    }
}
