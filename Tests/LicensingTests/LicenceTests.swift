import Foundation
import Licensing
import Testing
import PairModel

/// A development key pair and licence made at test time; no private key is ever committed.
struct Fixture {
    let vendor = VendorSigningKey()
    let day = 86_400.0
    let issued = LicenceDate.parseDay("2026-01-01")!

    var verifier: LicenceVerifier { LicenceVerifier(trustedKeys: [vendor.publicKey]) }

    func licence(features: Set<Feature> = [.failover], maxClients: Int = 3, days: Double = 365, serverId: String = "vcom-primary-01")
        throws -> Licence
    {
        try vendor.sign(
            Licence(
                licenceId: "LIC-2026-0042", licensee: "Metro Fire Dispatch", issued: issued,
                expires: issued.addingTimeInterval(days * day), maxClients: maxClients, features: features, serverId: serverId))
    }
}

@Suite struct LicenceTests {
    let fixture = Fixture()

    @Test func issuedLicenceVerifiesAndRoundTripsThroughItsText() throws {
        let licence = try fixture.licence(features: [.failover, .recording])
        let verified = try fixture.verifier.verify(licence.text, boundTo: "vcom-primary-01")
        #expect(verified.licence == licence)
        #expect(verified.licence.features == [.failover, .recording])
        #expect(licence.text.contains("-----BEGIN VCOM LICENCE-----"))
    }

    @Test func pastedTextWithIndentationCRLFAndSurroundingMailStillVerifies() throws {
        let text = try fixture.licence().text
        let pasted = "Hello, here is your licence:\r\n\r\n" + text.split(separator: "\n").map { "    \($0)" }.joined(separator: "\r\n") + "\r\n-- \r\nVendor support"
        #expect(throws: Never.self) { try fixture.verifier.verify(pasted, boundTo: "vcom-primary-01") }
    }

    @Test(arguments: [
        ("max-clients: 3", "max-clients: 3000"),
        ("licensee: Metro Fire Dispatch", "licensee: Metro Fire Dispatch Inc"),
        ("server-id: vcom-primary-01", "server-id: vcom-primary-02"),
        ("features: failover", "features: failover, recording"),
        ("expires: 2027-01-01T00:00:00Z", "expires: 2099-01-01T00:00:00Z"),
    ])
    func anyChangedValueIsDetectedAsTampering(original: String, changed: String) throws {
        let text = try fixture.licence().text
        #expect(text.contains(original))
        let tampered = text.replacingOccurrences(of: original, with: changed)
        let serverId = changed.hasPrefix("server-id") ? "vcom-primary-02" : "vcom-primary-01"
        #expect(throws: LicenceError.tampered(licenceId: "LIC-2026-0042")) { try fixture.verifier.verify(tampered, boundTo: serverId) }
    }

    @Test func signatureFromAnotherKeyIsUntrusted() throws {
        let other = Fixture()
        let text = try other.licence().text
        #expect(throws: LicenceError.untrustedKey(fingerprint: other.vendor.publicKey.fingerprint)) {
            try fixture.verifier.verify(text, boundTo: "vcom-primary-01")
        }
    }

    @Test func anotherKeysSignatureUnderTheTrustedFingerprintIsTampering() throws {
        let forger = Fixture()
        var forged = try forger.licence()
        forged.signingKey = fixture.vendor.publicKey.fingerprint  // claims to be the vendor's
        #expect(throws: LicenceError.tampered(licenceId: "LIC-2026-0042")) {
            try fixture.verifier.verify(forged.text, boundTo: "vcom-primary-01")
        }
    }

    @Test func licenceBoundToAnotherServerIsRefused() throws {
        let text = try fixture.licence(serverId: "vcom-primary-07").text
        #expect(throws: LicenceError.boundToAnotherServer(licenceId: "LIC-2026-0042", licensed: "vcom-primary-07", actual: "vcom-primary-01")) {
            try fixture.verifier.verify(text, boundTo: "vcom-primary-01")
        }
    }

    @Test func validityFollowsTheDates() throws {
        let verified = try fixture.verifier.verify(fixture.licence(days: 30).text, boundTo: "vcom-primary-01")
        #expect(verified.validity(at: fixture.issued.addingTimeInterval(-1)) == .notYetValid)
        #expect(verified.validity(at: fixture.issued) == .valid)
        #expect(verified.validity(at: fixture.issued.addingTimeInterval(30 * fixture.day - 1)) == .valid)
        #expect(verified.validity(at: fixture.issued.addingTimeInterval(30 * fixture.day)) == .expired)
    }

    @Test(arguments: [
        ("no begin line", "max-clients: 3", LicenceError.malformed("no '-----BEGIN VCOM LICENCE-----' line")),
        ("truncated", "-----BEGIN VCOM LICENCE-----\nformat: 1\nlicence-id: LIC-1", .malformed("no '-----END VCOM LICENCE-----' line: the text is truncated")),
        ("not field: value", "-----BEGIN VCOM LICENCE-----\nhello\n-----END VCOM LICENCE-----", .malformed("line 2 is not 'field: value'")),
        ("missing fields", "-----BEGIN VCOM LICENCE-----\nformat: 1\n-----END VCOM LICENCE-----", .missingField("licence-id")),
    ] as [(String, String, LicenceError)])
    func malformedTextGetsASpecificError(name: String, text: String, expected: LicenceError) {
        #expect(throws: expected, "\(name)") { try Licence.parse(text) }
    }

    @Test func fieldLevelErrorsNameTheFieldAndLine() throws {
        let text = try fixture.licence().text
        func parse(_ edit: (String) -> String) throws(LicenceError) { _ = try Licence.parse(edit(text)) }
        #expect(throws: LicenceError.duplicateField("licensee", line: 6)) {
            try parse { $0.replacingOccurrences(of: "licensee: Metro Fire Dispatch\n", with: "licensee: Metro Fire Dispatch\nlicensee: Someone Else\n") }
        }
        #expect(throws: LicenceError.unknownField("seats", line: 5)) {
            try parse { $0.replacingOccurrences(of: "licensee:", with: "seats: 9\nlicensee:") }
        }
        #expect(throws: LicenceError.unknownFeature("teleporting")) {
            try parse { $0.replacingOccurrences(of: "features: failover", with: "features: failover, teleporting") }
        }
        #expect(throws: LicenceError.invalidValue(field: "max-clients", value: "many", expected: "a whole number from 1 to 1000000")) {
            try parse { $0.replacingOccurrences(of: "max-clients: 3", with: "max-clients: many") }
        }
        #expect(throws: LicenceError.invalidValue(field: "expires", value: "next year", expected: "a UTC time such as 2027-11-25T00:00:00Z")) {
            try parse { $0.replacingOccurrences(of: "expires: 2027-01-01T00:00:00Z", with: "expires: next year") }
        }
        #expect(throws: LicenceError.invalidValue(field: "format", value: "2", expected: "1")) {
            try parse { $0.replacingOccurrences(of: "format: 1", with: "format: 2") }
        }
        #expect(throws: LicenceError.invalidValue(field: "licence-id", value: "LIC 1; rm", expected: "1 to 64 letters, digits, '.', '_' or '-'")) {
            try parse { $0.replacingOccurrences(of: "licence-id: LIC-2026-0042", with: "licence-id: LIC 1; rm") }
        }
    }

    @Test func truncatedSignatureIsRefused() throws {
        let text = try fixture.licence().text
        let signatureLine = text.split(separator: "\n").first { $0.hasPrefix("signature:") }!
        let shortened = text.replacingOccurrences(of: String(signatureLine), with: String(signatureLine.dropLast(8)))
        #expect(throws: LicenceError.self) { try Licence.parse(shortened) }
        do {
            _ = try Licence.parse(shortened)
        } catch {
            guard case .invalidValue(let field, _, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(field == "signature")
        }
    }

    @Test func keyFilesRoundTripAndRefuseTheWrongHalf() throws {
        let key = fixture.vendor
        #expect(try VendorSigningKey(fileText: key.fileText).publicKey == key.publicKey)
        #expect(try VendorPublicKey(fileText: key.publicKey.fileText) == key.publicKey)
        #expect(throws: LicenceError.badKey("this file holds the other half of the key pair; a public key was expected")) {
            try VendorPublicKey(fileText: key.fileText)
        }
        #expect(throws: LicenceError.badKey("the public key is not 32 bytes of base64")) {
            try VendorPublicKey(fileText: "vcom-vendor-public-key-ed25519: AAAA")
        }
        #expect(key.publicKey.fingerprint.count == 32)
    }
}
