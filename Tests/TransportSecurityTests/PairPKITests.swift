import Foundation
import Testing

@testable import TransportSecurity

@Suite struct PairPKITests {
    let authority = try! PairPKI.makeAuthority()

    @Test func issuedCertificateNamesItsIdentityAndHosts() throws {
        let issued = try PairPKI.issue(name: "vcom-primary", hosts: ["127.0.0.1", "::1", "intercom.example"], authority: authority)
        let facts = try CertificateFacts(pem: issued.certificatePEM)
        #expect(facts.names == ["vcom-primary", "127.0.0.1", "::1", "intercom.example"])
        #expect(facts.subject.contains("vcom-primary"))
        #expect(facts.issuer.contains("VCOM pair CA"))
        #expect(facts.fingerprint.hasPrefix("sha256:") && facts.fingerprint.count == 71)
        #expect((824...825).contains(facts.daysLeft()))
    }

    @Test func refusesBadNamesAndAMismatchedAuthority() throws {
        #expect(throws: PairPKI.Problem.self) { try PairPKI.issue(name: "bad name", hosts: [], authority: authority) }
        let other = try PairPKI.makeAuthority()
        let mixed = IssuedIdentity(certificatePEM: authority.certificatePEM, privateKeyPEM: other.privateKeyPEM)
        #expect(throws: PairPKI.Problem.self) { try PairPKI.issue(name: "x", hosts: [], authority: mixed) }
    }

    @Test func peerCheckAcceptsThePeerAndSaysWhyItRefusesOthers() async throws {
        let check = try PeerCertificateCheck(authorityPEM: authority.certificatePEM, expectedName: "vcom-secondary")
        func der(_ issued: IssuedIdentity) throws -> [[UInt8]] { [try PEMDER.der(issued.certificatePEM)] }

        let peer = try PairPKI.issue(name: "vcom-secondary", hosts: ["127.0.0.1"], authority: authority)
        #expect(await check.refusal(derChain: try der(peer)) == nil)

        let impostor = try PairPKI.issue(name: "vcom-primary", hosts: ["127.0.0.1"], authority: authority)
        let wrongName = await check.refusal(derChain: try der(impostor))
        #expect(wrongName?.contains("this server's peer is 'vcom-secondary'") == true)

        let old = Date().addingTimeInterval(-90 * 86_400)
        let expired = try PairPKI.issue(name: "vcom-secondary", hosts: [], authority: authority, validityDays: 30, now: old)
        #expect(await check.refusal(derChain: try der(expired))?.contains("expired on") == true)

        let foreign = try PairPKI.issue(name: "vcom-secondary", hosts: [], authority: try PairPKI.makeAuthority())
        #expect(await check.refusal(derChain: try der(foreign))?.contains("not from this pair's CA") == true)
        #expect(await check.refusal(derChain: []) == "it presented no certificate")
        #expect(await check.refusal(derChain: [[0x30, 0x03, 0x01]])?.contains("cannot be parsed") == true)
    }

    @Test func contextsReloadARenewedCertificateAndKeepTheOldOneOnBadFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = TLSFiles(
            certificate: directory.appendingPathComponent("s.pem").path, privateKey: directory.appendingPathComponent("s-key.pem").path,
            authority: directory.appendingPathComponent("ca.pem").path)
        func write(_ issued: IssuedIdentity) throws {
            try issued.certificatePEM.write(toFile: files.certificate, atomically: true, encoding: .utf8)
            try issued.privateKeyPEM.write(toFile: files.privateKey, atomically: true, encoding: .utf8)
        }
        try authority.certificatePEM.write(toFile: files.authority, atomically: true, encoding: .utf8)
        try write(try PairPKI.issue(name: "vcom-primary", hosts: [], authority: authority))
        let contexts = try ServerTLSContexts(files: files)
        let first = contexts.current.certificate.fingerprint
        #expect(contexts.reloadIfChanged() == .unchanged)

        let renewed = try PairPKI.issue(name: "vcom-primary", hosts: [], authority: authority)
        try write(renewed)
        guard case .reloaded(let facts) = contexts.reloadIfChanged() else {
            Issue.record("a renewed certificate was not reloaded")
            return
        }
        #expect(facts.fingerprint != first)
        #expect(contexts.current.certificate.fingerprint == facts.fingerprint)

        // A certificate without its key (half-way through a copy): refused, the old one serves.
        try PairPKI.issue(name: "vcom-primary", hosts: [], authority: authority).certificatePEM
            .write(toFile: files.certificate, atomically: true, encoding: .utf8)
        guard case .failed(let why) = contexts.reloadIfChanged() else {
            Issue.record("a certificate with someone else's key was loaded")
            return
        }
        #expect(why.contains("is not the key of the certificate"))
        #expect(contexts.current.certificate.fingerprint == facts.fingerprint)

        // An expired certificate never starts a server.
        let old = Date().addingTimeInterval(-90 * 86_400)
        try write(try PairPKI.issue(name: "vcom-primary", hosts: [], authority: authority, validityDays: 30, now: old))
        #expect(throws: TLSFileProblem.self) { try ServerTLSContexts(files: files) }
    }
}

/// The DER bytes of the first PEM block (tests only; the module reads PEM through NIOSSL).
enum PEMDER {
    static func der(_ pem: String) throws -> [UInt8] {
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard let data = Data(base64Encoded: body) else { throw PairPKI.Problem("bad PEM") }
        return Array(data)
    }
}
