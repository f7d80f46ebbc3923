import AdminProtocol
import Foundation
import Testing

/// SCRAM-SHA-256 against RFC 7677's example, and the refusals around it.
@Suite struct ScramTests {
    // RFC 7677, section 3: user "user", password "pencil".
    let clientNonce = "rOprNGfwEbeRWgbNEkqO"
    let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    let salt = Array(Data(base64Encoded: "W22ZaJ0SNY7soEsUEjb6gQ==")!)
    let proof = Array(Data(base64Encoded: "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")!)
    let serverSignature = Array(Data(base64Encoded: "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")!)

    @Test func theClientComputesRFC7677sProof_andAcceptsItsServerSignature() throws {
        var client = ScramClient(username: "user", password: "pencil", clientNonce: clientNonce)
        #expect(try client.proof(nonce: nonce, salt: salt, iterations: 4096) == proof)
        try client.verify(serverSignature: serverSignature)
        #expect(throws: Scram.Failure.badServerSignature) { try client.verify(serverSignature: Array(repeating: 0, count: 32)) }
    }

    @Test func theServerChecksRFC7677sProofFromTheVerifierAlone() throws {
        let verifier = try ScramVerifier(password: "pencil", salt: salt, iterations: 4096)
        let stored = try #require(ScramVerifier(verifier.text), "the stored text parses back")
        #expect(stored == verifier)
        #expect(!verifier.text.contains("pencil"))
        let server = ScramServer(
            username: "user", clientNonce: clientNonce, verifier: stored, decoyKey: [1], serverNonce: String(nonce.dropFirst(clientNonce.count)))
        #expect(server.nonce == nonce)
        #expect(server.check(proof: proof) == .success(serverSignature))
        var wrong = proof
        wrong[0] ^= 1
        #expect(server.check(proof: wrong) == .failure(.badProof))
        #expect(server.check(proof: Array(proof.prefix(31))) == .failure(.badProof))
    }

    @Test func anUnknownUserGetsAStableDecoyChallengeAndNeverGetsIn() throws {
        let first = ScramServer(username: "mallory", clientNonce: "abc", verifier: nil, decoyKey: [9, 9])
        let second = ScramServer(username: "mallory", clientNonce: "xyz", verifier: nil, decoyKey: [9, 9])
        #expect(first.salt == second.salt, "the same name always gets the same salt, as a real account would")
        #expect(first.iterations == ScramVerifier.defaultIterations)
        var client = ScramClient(username: "mallory", password: "guess", clientNonce: "abc")
        let attempt = try client.proof(nonce: first.nonce, salt: first.salt, iterations: first.iterations)
        #expect(first.check(proof: attempt) == .failure(.badProof))
    }

    @Test func aServerThatDoesNotExtendTheNonceOrAsksTooLittleWorkIsRefused() {
        var client = ScramClient(username: "user", password: "pencil", clientNonce: clientNonce)
        #expect(throws: Scram.Failure.badNonce) { try client.proof(nonce: "other-nonce", salt: salt, iterations: 4096) }
        #expect(throws: Scram.Failure.self) { try client.proof(nonce: nonce, salt: salt, iterations: 1) }
        #expect(ScramVerifier("SCRAM-SHA-256$1:AA==$AA==:AA==") == nil)
        #expect(ScramVerifier("$scrypt$ln=15,r=8,p=1$abc$def") == nil)
    }
}
