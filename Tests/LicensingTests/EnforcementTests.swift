import Foundation
import Licensing
import Testing
import Wire

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
        #expect(gate.admitLogin(loggedInOnPair: 0, at: Date()) == .refuse(.licenceExpired, "no valid licence is installed on this server"))
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
}
