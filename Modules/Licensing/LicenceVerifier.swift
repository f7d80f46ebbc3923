import Crypto
import Foundation

/// A licence whose signature, signing key and server binding have been checked. Dates are
/// not part of it: an expired licence still governs the sessions it admitted (see
/// `LicenceEnforcement`).
public struct VerifiedLicence: Equatable, Sendable {
    public let licence: Licence

    /// The licence file, as the primary shares it with its secondary.
    public var text: String { licence.text }

    public enum Validity: Equatable, Sendable {
        case valid
        case notYetValid
        case expired
    }

    public func validity(at now: Date) -> Validity {
        if now < licence.issued { return .notYetValid }
        return now >= licence.expires ? .expired : .valid
    }
}

/// Checks licences against the vendor keys a server trusts.
public struct LicenceVerifier: Sendable {
    public let trustedKeys: [VendorPublicKey]

    public init(trustedKeys: [VendorPublicKey]) {
        self.trustedKeys = trustedKeys
    }

    /// Signature and key only.
    public func checkSignature(_ licence: Licence) throws(LicenceError) {
        guard let key = trustedKeys.first(where: { $0.fingerprint == licence.signingKey }) else {
            throw .untrustedKey(fingerprint: licence.signingKey)
        }
        guard key.key.isValidSignature(licence.signature, for: Data(licence.canonicalText.utf8)) else {
            throw .tampered(licenceId: licence.licenceId)
        }
    }

    /// Parses and checks licence text for the server `serverId` (the primary it is bound to).
    public func verify(_ text: String, boundTo serverId: String) throws(LicenceError) -> VerifiedLicence {
        let licence = try Licence.parse(text)
        try checkSignature(licence)
        guard licence.serverId == serverId else {
            throw .boundToAnotherServer(licenceId: licence.licenceId, licensed: licence.serverId, actual: serverId)
        }
        return VerifiedLicence(licence: licence)
    }
}
