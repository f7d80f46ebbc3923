import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The secondary's copy of its primary's licence. The secondary has no licence of its own:
/// it verifies what the primary sends (trusting nothing unsigned), keeps it on disk, and
/// may activate only once it holds one.
///
/// Fails closed: a contact date that is missing, unreadable or in the future never silences
/// the lone-secondary warning, and a licence it refuses changes nothing it holds.
public struct SharedLicence: Sendable {
    public let verifier: LicenceVerifier
    /// The primary this secondary pairs with; the licence must be bound to it.
    public let primaryId: String
    /// Serving alone for longer than this without hearing from the primary raises a loud
    /// warning (service continues: the pair may be waiting for a repaired primary).
    public var gracePeriod: TimeInterval
    public private(set) var current: VerifiedLicence?
    /// Nil while unknown (a licence restored with no readable contact date): then the warning
    /// counts from when the licence was stored.
    public private(set) var lastPrimaryContact: Date?

    public init(verifier: LicenceVerifier, primaryId: String, gracePeriod: TimeInterval = 30 * 86_400) {
        self.verifier = verifier
        self.primaryId = primaryId
        self.gracePeriod = gracePeriod
    }

    /// Restores what was stored. Stored text is verified again: the disk is not trusted
    /// more than the network. A refused licence restores nothing, not even the contact date.
    /// A contact date in the future (a clock that was ahead) is taken as now.
    public mutating func restore(_ stored: LicenceFileStore.Stored, at now: Date = Date()) throws(LicenceError) {
        let verified = try accept(stored.text)
        current = verified
        lastPrimaryContact = (stored.lastPrimaryContact ?? stored.storedAt).map { min($0, now) }
    }

    /// A licence arrived from the primary. On error the licence held so far stays, and the
    /// contact is not refreshed by it. A licence that would replace a newer or still valid
    /// one with an older or expired one is refused (`downgrade`), so a primary restored with
    /// an old licence file cannot take the secondary's valid licence away.
    @discardableResult
    public mutating func receive(_ text: String, at now: Date) throws(LicenceError) -> VerifiedLicence {
        let verified = try accept(text)
        if let held = current, held.licence != verified.licence {
            if held.validity(at: now) == .valid, verified.validity(at: now) != .valid {
                throw .downgrade(offered: verified.licence.licenceId, held: held.licence.licenceId, reason: "the offered licence is not valid now and the held one is")
            }
            if verified.licence.issued < held.licence.issued {
                throw .downgrade(
                    offered: verified.licence.licenceId, held: held.licence.licenceId,
                    reason: "the offered licence was issued \(LicenceDate.format(verified.licence.issued)), before the held one (\(LicenceDate.format(held.licence.issued)))")
            }
        }
        current = verified
        lastPrimaryContact = now
        return verified
    }

    private func accept(_ text: String) throws(LicenceError) -> VerifiedLicence {
        let verified = try verifier.verify(text, boundTo: primaryId)
        guard verified.licence.includes(.failover) else {
            throw .featureNotLicensed(.failover, licenceId: verified.licence.licenceId)
        }
        return verified
    }

    /// The primary was heard from (any authenticated frame on the peer link).
    public mutating func primaryContact(at now: Date) {
        lastPrimaryContact = max(lastPrimaryContact ?? now, now)
    }

    /// Why this secondary may not activate, or nil when it may.
    public var activationRefusal: String? {
        current == nil ? "no licence received from the primary '\(primaryId)' yet; it is shared when the primary connects" : nil
    }

    public func graceWarning(at now: Date) -> String? {
        guard current != nil else { return nil }
        guard let contact = lastPrimaryContact else {
            return "WARNING: serving on the primary's licence with no recorded contact from primary '\(primaryId)'; restore the primary or the peer link"
        }
        guard now.timeIntervalSince(contact) > gracePeriod else { return nil }
        let days = Int(now.timeIntervalSince(contact) / 86_400)
        return "WARNING: serving on the primary's licence without contact from primary '\(primaryId)' for \(days) days (grace period \(Int(gracePeriod / 86_400)) days); restore the primary or the peer link"
    }
}

/// The shared licence on disk: the licence text as received, and when the primary was last
/// heard from. Each file is replaced atomically (write, sync, rename), so a crash leaves the
/// old version or the new one, never half of one.
public struct LicenceFileStore: Sendable {
    public let directory: URL
    var licenceFile: URL { directory.appendingPathComponent("shared-licence.txt") }
    var contactFile: URL { directory.appendingPathComponent("primary-contact.txt") }

    public struct Stored: Equatable, Sendable {
        public var text: String
        /// Nil when the contact file is missing or unreadable.
        public var lastPrimaryContact: Date?
        /// When the licence file was written: the last contact known for certain.
        public var storedAt: Date?

        public init(text: String, lastPrimaryContact: Date?, storedAt: Date?) {
            self.text = text
            self.lastPrimaryContact = lastPrimaryContact
            self.storedAt = storedAt
        }
    }

    public init(directory: URL) {
        self.directory = directory
    }

    public func load() throws -> Stored? {
        guard FileManager.default.fileExists(atPath: licenceFile.path) else { return nil }
        let text = try String(contentsOf: licenceFile, encoding: .utf8)
        let contact = (try? String(contentsOf: contactFile, encoding: .utf8)).flatMap {
            LicenceDate.parse($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let storedAt = (try? FileManager.default.attributesOfItem(atPath: licenceFile.path))?[.modificationDate] as? Date
        return Stored(text: text, lastPrimaryContact: contact, storedAt: storedAt)
    }

    public func save(_ licence: VerifiedLicence) throws {
        try writeAtomically(licence.text, to: licenceFile)
    }

    public func saveContact(_ date: Date) throws {
        try writeAtomically(LicenceDate.format(date) + "\n", to: contactFile)
    }

    func writeAtomically(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = url.appendingPathExtension("tmp")
        let handle = try FileHandleWriter(path: temporary.path)
        try handle.write(Data(text.utf8))
        try handle.syncAndClose()
        // rename(2) replaces the old file in one step; remove-then-move would leave a window
        // in which a crash loses the licence.
        guard rename(temporary.path, url.path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
    }
}

/// Writes a file and forces it to disk before it is renamed into place.
struct FileHandleWriter {
    let handle: FileHandle

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        self.handle = handle
    }

    func write(_ data: Data) throws { try handle.write(contentsOf: data) }

    func syncAndClose() throws {
        try handle.synchronize()
        try handle.close()
    }
}
