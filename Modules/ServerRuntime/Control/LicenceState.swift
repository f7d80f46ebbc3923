import Foundation
import Licensing
import Logging
import PairModel
import Wire

/// The licence as the runtime holds it: the primary's own, verified at start-up, or the
/// secondary's copy of its primary's (`SharedLicence`), received over the peer link and kept
/// on disk.
enum LicenceState {
    case own(VerifiedLicence?)
    case shared(SharedLicence)

    var verified: VerifiedLicence? {
        switch self {
        case .own(let licence): licence
        case .shared(let shared): shared.current
        }
    }

    var enforcement: LicenceEnforcement { LicenceEnforcement(licence: verified) }

    /// Why this server may not activate for want of a licence, or nil.
    var activationRefusal: String? {
        switch self {
        case .own(let licence): licence == nil ? "no valid licence is installed on this primary" : nil
        case .shared(let shared): shared.activationRefusal
        }
    }

    mutating func primaryContact(at wall: Date) {
        guard case .shared(var shared) = self else { return }
        shared.primaryContact(at: wall)
        self = .shared(shared)
    }

    /// A licence from the primary: verified, stored, and answered.
    mutating func receive(_ text: String, at wall: Date, files: LicenceFileStore, logger: Logger) -> LicenceReceipt {
        guard case .shared(var shared) = self else {
            return LicenceReceipt(accepted: false, licenceId: "", detail: "a primary does not take a licence from its peer")
        }
        let offeredId = (try? Licence.parse(text))?.licenceId ?? "unreadable"
        do {
            let verified = try shared.receive(text, at: wall)
            self = .shared(shared)
            try files.save(verified)
            try files.saveContact(wall)
            logger.info("licence \(verified.licence.licenceId) received from the primary and stored")
            return LicenceReceipt(accepted: true, licenceId: verified.licence.licenceId, detail: "stored")
        } catch let error as LicenceError {
            logger.error("licence \(offeredId) from the primary refused: \(error)")
            return LicenceReceipt(accepted: false, licenceId: offeredId, detail: error.description)
        } catch {
            self = .shared(shared)
            logger.error("licence \(offeredId) verified but not stored: \(error)")
            return LicenceReceipt(accepted: true, licenceId: offeredId, detail: "verified but not stored on disk: \(error)")
        }
    }
}
