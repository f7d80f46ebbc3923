import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The secondary's copy of its primary's licence. The secondary has no licence of its own:
/// it verifies what the primary sends (trusting nothing unsigned), keeps it on disk, and
/// may activate only once it holds one.
public struct SharedLicence: Sendable {
    public let verifier: LicenceVerifier
    /// The primary this secondary pairs with; the licence must be bound to it.
    public let primaryId: String
    /// Serving alone for longer than this without hearing from the primary raises a loud
    /// warning (service continues: the pair may be waiting for a repaired primary).
    public var gracePeriod: TimeInterval
    public private(set) var current: VerifiedLicence?
    public private(set) var lastPrimaryContact: Date?

    public init(verifier: LicenceVerifier, primaryId: String, gracePeriod: TimeInterval = 30 * 86_400) {
        self.verifier = verifier
        self.primaryId = primaryId
        self.gracePeriod = gracePeriod
    }

    /// Restores what was stored. Stored text is verified again: the disk is not trusted
    /// more than the network.
    public mutating func restore(_ stored: LicenceFileStore.Stored) throws(LicenceError) {
        lastPrimaryContact = stored.lastPrimaryContact
        current = try accept(stored.text)
    }

    /// A licence arrived from the primary. On error the licence held so far stays.
    @discardableResult
    public mutating func receive(_ text: String, at now: Date) throws(LicenceError) -> VerifiedLicence {
        let verified = try accept(text)
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

    public mutating func primaryContact(at now: Date) {
        lastPrimaryContact = now
    }

    /// Why this secondary may not activate, or nil when it may.
    public var activationRefusal: String? {
        current == nil ? "no licence received from the primary '\(primaryId)' yet; it is shared when the primary connects" : nil
    }

    public func graceWarning(at now: Date) -> String? {
        guard let contact = lastPrimaryContact, now.timeIntervalSince(contact) > gracePeriod else { return nil }
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
        public var lastPrimaryContact: Date?
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
        return Stored(text: text, lastPrimaryContact: contact)
    }

    public func save(_ licence: VerifiedLicence) throws {
        try writeAtomically(licence.text, to: licenceFile)
    }

    public func saveContact(_ date: Date) throws {
        try writeAtomically(LicenceDate.format(date) + "\n", to: contactFile)
    }

    private func writeAtomically(_ text: String, to url: URL) throws {
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
