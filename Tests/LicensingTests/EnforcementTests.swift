import Foundation
import Licensing
import Testing
import PairModel

@Suite struct EnforcementTests {
    let fixture = Fixture()

    func enforcement(maxClients: Int = 3, days: Double = 100, features: Set<Feature> = [.failover]) throws -> LicenceEnforcement {
        let verified = try fixture.verifier.verify(fixture.licence(features: features, maxClients: maxClients, days: days).text, boundTo: "vcom-primary-01")
        return LicenceEnforcement(licence: verified, expiryWarningDays: 30)
    }

    @Test func loginsBeyondThePairsLimitAreRefused() throws {
        let gate = try enforcement(maxClients: 3)
        let now = fixture.issued.addingTimeInterval(fixture.day)
        #expect(gate.admitLogin(loggedInOnPair: 0, at: now) == .admit(warning: nil))
        #expect(gate.admitLogin(loggedInOnPair: 2, at: now) == .admit(warning: nil))
        guard case .refuse(let reason, let detail) = gate.admitLogin(loggedInOnPair: 3, at: now) else {
            Issue.record("the fourth login must be refused")
            return
        }
        #expect(reason == .licenceLimit)
        #expect(detail == "licence LIC-2026-0042 allows 3 concurrent clients across the pair and 3 are logged in")
    }

    @Test func expiryWarnsAheadThenRefusesNewLoginsOnly() throws {
        let gate = try enforcement(days: 100)
        let early = fixture.issued.addingTimeInterval(50 * fixture.day)
        let nearEnd = fixture.issued.addingTimeInterval(88 * fixture.day)
        let after = fixture.issued.addingTimeInterval(101 * fixture.day)
        #expect(gate.admitLogin(loggedInOnPair: 0, at: early) == .admit(warning: nil))
        #expect(
            gate.admitLogin(loggedInOnPair: 0, at: nearEnd)
                == .admit(warning: "licence LIC-2026-0042 expires in 12 days (2026-04-11T00:00:00Z); renew it"))
        guard case .refuse(let reason, let detail) = gate.admitLogin(loggedInOnPair: 0, at: after) else {
            Issue.record("logins after expiry must be refused")
            return
        }
        #expect(reason == .licenceExpired)
        #expect(detail.contains("sessions already logged in continue"))
        #expect(gate.expiryWarning(at: after)?.contains("EXPIRED") == true)
    }

    @Test func notYetValidLicenceAdmitsNobody() throws {
        let gate = try enforcement()
        guard case .refuse(.licenceExpired, let detail) = gate.admitLogin(loggedInOnPair: 0, at: fixture.issued.addingTimeInterval(-60)) else {
            Issue.record("a licence not yet valid must not admit")
            return
        }
        #expect(detail.contains("not valid before"))
    }

    @Test func noLicenceAdmitsNobody() {
        let gate = LicenceEnforcement(licence: nil)
        #expect(gate.admitLogin(loggedInOnPair: 0, at: Date()) == .refuse(.noLicence, "no valid licence is installed on this server"))
        #expect(throws: LicenceError.noLicence) { try gate.require(.failover) }
    }

    @Test func unlicensedFeatureIsRefusedByName() throws {
        let gate = try enforcement(features: [.failover])
        #expect(throws: Never.self) { try gate.require(.failover) }
        #expect(throws: LicenceError.featureNotLicensed(.recording, licenceId: "LIC-2026-0042")) { try gate.require(.recording) }
        #expect(LicenceError.featureNotLicensed(.recording, licenceId: "LIC-2026-0042").description == "licence LIC-2026-0042 does not include the 'recording' feature")
    }
}

@Suite struct SharedLicenceTests {
    let fixture = Fixture()

    func shared() -> SharedLicence { SharedLicence(verifier: fixture.verifier, primaryId: "vcom-primary-01") }

    @Test func aSecondaryWithoutALicenceMayNotActivate() {
        let secondary = shared()
        #expect(secondary.activationRefusal == "no licence received from the primary 'vcom-primary-01' yet; it is shared when the primary connects")
    }

    @Test func aVerifiedLicenceFromThePrimaryAllowsActivation() throws {
        var secondary = shared()
        try secondary.receive(fixture.licence().text, at: fixture.issued)
        #expect(secondary.activationRefusal == nil)
        #expect(secondary.current?.licence.maxClients == 3, "the primary's seats, not more")
    }

    @Test func aBadLicenceIsRefusedAndTheOneHeldSoFarStays() throws {
        var secondary = shared()
        let good = try fixture.licence()
        try secondary.receive(good.text, at: fixture.issued)
        let tampered = good.text.replacingOccurrences(of: "max-clients: 3", with: "max-clients: 300")
        #expect(throws: LicenceError.tampered(licenceId: "LIC-2026-0042")) { try secondary.receive(tampered, at: fixture.issued) }
        #expect(throws: LicenceError.boundToAnotherServer(licenceId: "LIC-2026-0042", licensed: "vcom-primary-02", actual: "vcom-primary-01")) {
            try secondary.receive(try fixture.licence(serverId: "vcom-primary-02").text, at: fixture.issued)
        }
        #expect(secondary.current?.licence == good)
    }

    @Test func aLicenceWithoutFailoverCannotBeShared() throws {
        var secondary = shared()
        #expect(throws: LicenceError.featureNotLicensed(.failover, licenceId: "LIC-2026-0042")) {
            try secondary.receive(try fixture.licence(features: [.recording]).text, at: fixture.issued)
        }
        #expect(secondary.activationRefusal != nil)
    }

    @Test func servingAloneBeyondTheGracePeriodWarnsLoudly() throws {
        var secondary = shared()
        try secondary.receive(fixture.licence().text, at: fixture.issued)
        #expect(secondary.graceWarning(at: fixture.issued.addingTimeInterval(29 * fixture.day)) == nil)
        let warning = secondary.graceWarning(at: fixture.issued.addingTimeInterval(31 * fixture.day))
        #expect(warning?.hasPrefix("WARNING: serving on the primary's licence without contact from primary 'vcom-primary-01' for 31 days") == true)
        secondary.primaryContact(at: fixture.issued.addingTimeInterval(31 * fixture.day))
        #expect(secondary.graceWarning(at: fixture.issued.addingTimeInterval(32 * fixture.day)) == nil)
    }

    @Test func theLicenceSurvivesARestartAndIsVerifiedAgain() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-licence-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = LicenceFileStore(directory: directory)
        #expect(try store.load() == nil)

        var before = shared()
        let verified = try before.receive(fixture.licence().text, at: fixture.issued)
        try store.save(verified)
        try store.saveContact(fixture.issued)

        var after = shared()
        let stored = try #require(try store.load())
        try after.restore(stored)
        #expect(after.current == verified)
        #expect(after.lastPrimaryContact == fixture.issued)

        // Altered on disk: refused on restore, as it would be from the network.
        try stored.text.replacingOccurrences(of: "max-clients: 3", with: "max-clients: 9").write(
            to: directory.appendingPathComponent("shared-licence.txt"), atomically: true, encoding: .utf8)
        var tamperedRestart = shared()
        #expect(throws: LicenceError.tampered(licenceId: "LIC-2026-0042")) { try tamperedRestart.restore(try store.load()!) }
        #expect(tamperedRestart.activationRefusal != nil)
    }

    // MARK: Issue 8, items 14 to 16

    func storedLicence(contact: String?) throws -> (LicenceFileStore, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-licence-\(UUID().uuidString)")
        let store = LicenceFileStore(directory: directory)
        var secondary = shared()
        try store.save(try secondary.receive(fixture.licence().text, at: fixture.issued))
        if let contact { try contact.write(to: directory.appendingPathComponent("primary-contact.txt"), atomically: true, encoding: .utf8) }
        // The licence file was stored on the issue day.
        try FileManager.default.setAttributes([.modificationDate: fixture.issued], ofItemAtPath: directory.appendingPathComponent("shared-licence.txt").path)
        return (store, directory)
    }

    @Test func aMissingGarbledOrFutureContactDateNeverSilencesTheWarning() throws {
        let later = fixture.issued.addingTimeInterval(40 * fixture.day)
        for contact in [nil, "garbage", "2099-01-01T00:00:00Z"] {
            let (store, directory) = try storedLicence(contact: contact)
            defer { try? FileManager.default.removeItem(at: directory) }
            var restarted = shared()
            try restarted.restore(try #require(try store.load()), at: fixture.issued.addingTimeInterval(1))
            let warning = restarted.graceWarning(at: later)
            #expect(warning?.contains("without contact from primary 'vcom-primary-01' for") == true, "contact file \(contact ?? "missing"): \(warning ?? "no warning")")
        }
    }

    @Test func aRefusedLicenceOnRestoreRefreshesNothing() throws {
        let (store, directory) = try storedLicence(contact: LicenceDate.format(fixture.issued))
        defer { try? FileManager.default.removeItem(at: directory) }
        var stored = try #require(try store.load())
        stored.text = stored.text.replacingOccurrences(of: "max-clients: 3", with: "max-clients: 9")
        stored.lastPrimaryContact = fixture.issued.addingTimeInterval(100 * fixture.day)
        var restarted = shared()
        #expect(throws: LicenceError.self) { try restarted.restore(stored) }
        #expect(restarted.lastPrimaryContact == nil)
        #expect(restarted.current == nil)
    }

    @Test func settingTheClockBackDoesNotReviveAnExpiredLicence() throws {
        let licence = try fixture.verifier.verify(try fixture.licence(days: 30).text, boundTo: "vcom-primary-01")
        let gate = LicenceEnforcement(licence: licence)
        let afterExpiry = fixture.issued.addingTimeInterval(40 * fixture.day)
        var clock = LicenceClock()
        let seen = clock.read(afterExpiry)
        #expect(seen.persist == afterExpiry, "the first reading is stored")
        // Restarted with the stored mark, the clock set back into the licence's validity.
        var restarted = LicenceClock(highWater: afterExpiry)
        let reading = restarted.read(fixture.issued.addingTimeInterval(10 * fixture.day))
        #expect(reading.now == afterExpiry)
        #expect(reading.warning?.contains("behind the latest time this server saw") == true)
        guard case .refuse(.licenceExpired, _) = gate.admitLogin(loggedInOnPair: 0, at: reading.now) else {
            Issue.record("an expired licence admitted a login after the clock was set back")
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-clock-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = LicenceClockFile(directory: directory)
        #expect(file.load() == .distantPast)
        try file.save(afterExpiry)
        #expect(file.load() == afterExpiry)
    }

    @Test func anOlderOrExpiredLicenceFromThePrimaryDoesNotReplaceAValidOne() throws {
        var secondary = shared()
        let now = fixture.issued.addingTimeInterval(100 * fixture.day)
        let current = try fixture.vendor.sign(
            Licence(
                licenceId: "LIC-NEW", licensee: "Metro Fire Dispatch", issued: fixture.issued.addingTimeInterval(50 * fixture.day),
                expires: fixture.issued.addingTimeInterval(500 * fixture.day), maxClients: 10, features: [.failover], serverId: "vcom-primary-01"))
        try secondary.receive(current.text, at: now)
        let expired = try fixture.licence(days: 60)
        #expect(throws: LicenceError.self) { try secondary.receive(expired.text, at: now) }
        let older = try fixture.licence(days: 1000)
        do {
            try secondary.receive(older.text, at: now)
            Issue.record("an older licence replaced a newer one")
        } catch {
            #expect(error.exitCode == 20)
            #expect(error.description.contains("refused: it would replace licence LIC-NEW"))
        }
        #expect(secondary.current?.licence == current)
        #expect(secondary.lastPrimaryContact == now, "a refused licence refreshes nothing")
    }

    @Test func aLicenseeWithControlCharactersOrTooManyBytesIsNotSigned() throws {
        for licensee in ["\u{1B}]0;pwned\u{07}Metro", String(repeating: "€", count: 70)] {
            #expect(throws: LicenceError.self) {
                try fixture.vendor.sign(
                    Licence(licenceId: "L", licensee: licensee, issued: fixture.issued, expires: fixture.issued.addingTimeInterval(fixture.day), maxClients: 1, features: [.failover], serverId: "s"))
            }
        }
    }
}
