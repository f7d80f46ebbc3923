import Crypto
import Foundation
import NIOCore
import Testing
import PairModel
import Wire

@testable import ServerRuntime

/// The peer handshake and the session tokens, without sockets.
@Suite struct PeerHandshakeTests {
    let keys = ClusterKeys(secret: Array("the-pair's-shared-secret".utf8))

    /// Runs both sides' handshakes against each other; returns what each learned.
    func exchange(_ a: inout PeerHandshake, _ b: inout PeerHandshake) throws -> (PeerHandshake.Peer?, PeerHandshake.Peer?) {
        let helloA = a.hello(nodeId: "a", epoch: 2)
        let helloB = b.hello(nodeId: "b", epoch: 3)
        let (authA, _) = try a.received(helloB)
        let (authB, _) = try b.received(helloA)
        let (_, peerOfA) = try a.received(try #require(authB))
        let (_, peerOfB) = try b.received(try #require(authA))
        return (peerOfA, peerOfB)
    }

    @Test func theSameSecretEstablishesBothSides() throws {
        var primary = PeerHandshake(role: .primary, keys: keys, clientEndpoint: Endpoint(host: "10.0.0.1", port: 7100))
        var secondary = PeerHandshake(role: .secondary, keys: keys, clientEndpoint: Endpoint(host: "10.0.0.2", port: 7100))
        let (seenByPrimary, seenBySecondary) = try exchange(&primary, &secondary)
        #expect(seenByPrimary == PeerHandshake.Peer(nodeId: "b", role: .secondary, epoch: 3, clientEndpoint: Endpoint(host: "10.0.0.2", port: 7100)))
        #expect(seenBySecondary?.role == .primary)
    }

    @Test func anotherSecretIsRefusedByBothSides() throws {
        var primary = PeerHandshake(role: .primary, keys: keys, clientEndpoint: nil)
        var impostor = PeerHandshake(role: .secondary, keys: ClusterKeys(secret: Array("a-guess-at-the-secret".utf8)), clientEndpoint: nil)
        let (authPrimary, _) = try primary.received(impostor.hello(nodeId: "x", epoch: 0))
        let (authImpostor, _) = try impostor.received(primary.hello(nodeId: "p", epoch: 0))
        #expect(throws: PeerHandshake.Failure(reason: .authenticationFailed, detail: "the peer's proof does not match: the cluster secrets differ")) {
            try primary.received(try #require(authImpostor))
        }
        #expect(throws: PeerHandshake.Failure.self) { try impostor.received(try #require(authPrimary)) }
    }

    @Test func aProofCannotBeReflectedNorReplayed() throws {
        // Reflected: the peer sends back the proof this side made. The role inside differs.
        var primary = PeerHandshake(role: .primary, keys: keys, clientEndpoint: nil)
        let mirror = PeerHandshake(role: .secondary, keys: keys, clientEndpoint: nil)
        let (ownProof, _) = try primary.received(mirror.hello(nodeId: "m", epoch: 0))
        #expect(throws: PeerHandshake.Failure.self) { try primary.received(try #require(ownProof)) }
        // Replayed on a new connection: fresh nonces make an old proof worthless.
        var first = PeerHandshake(role: .primary, keys: keys, clientEndpoint: nil)
        var peer = PeerHandshake(role: .secondary, keys: keys, clientEndpoint: nil)
        _ = try first.received(peer.hello(nodeId: "s", epoch: 0))
        let (recorded, _) = try peer.received(first.hello(nodeId: "p", epoch: 0))
        var second = PeerHandshake(role: .primary, keys: keys, clientEndpoint: nil)
        _ = try second.received(PeerHandshake(role: .secondary, keys: keys, clientEndpoint: nil).hello(nodeId: "s", epoch: 0))
        #expect(throws: PeerHandshake.Failure.self) { try second.received(try #require(recorded)) }
    }

    @Test func twoPrimariesAndUnknownVersionsAreRefused() throws {
        var one = PeerHandshake(role: .primary, keys: keys, clientEndpoint: nil)
        let other = PeerHandshake(role: .primary, keys: keys, clientEndpoint: nil)
        #expect(throws: PeerHandshake.Failure.self) { try one.received(other.hello(nodeId: "p2", epoch: 0)) }
        var secondary = PeerHandshake(role: .secondary, keys: keys, clientEndpoint: nil)
        let future = PeerMessage.hello(
            PeerHello(hello: Hello(versions: 5...6, nodeId: "f", software: "f"), role: .primary, epoch: 0, nonce: ByteBuffer(repeating: 1, count: 32)))
        do {
            _ = try secondary.received(future)
            Issue.record("a hello in versions 5-6 was accepted")
        } catch {
            #expect(error.reason == .unsupportedVersion)
        }
    }

    @Test func theSecretNeverCrossesTheWire() throws {
        var primary = PeerHandshake(role: .primary, keys: keys, clientEndpoint: nil)
        let secondary = PeerHandshake(role: .secondary, keys: keys, clientEndpoint: nil)
        let (auth, _) = try primary.received(secondary.hello(nodeId: "s", epoch: 0))
        var bytes = ByteBuffer()
        try FrameCodec<PeerMessage>(configuration: .peer).encode(try #require(auth), into: &bytes)
        try FrameCodec<PeerMessage>(configuration: .peer).encode(primary.hello(nodeId: "p", epoch: 0), into: &bytes)
        let wire = Array(bytes.readableBytesView)
        let secret = Array("the-pair's-shared-secret".utf8)
        #expect(!wire.indices.contains { wire[$0...].starts(with: secret) })
    }
}

@Suite struct SessionTokenTests {
    let tokens = SessionTokens(keys: ClusterKeys(secret: Array("the-pair's-shared-secret".utf8)), lifetime: .seconds(3600))
    let now = Date(timeIntervalSince1970: 1_900_000_000)

    @Test func aTokenVerifiesOnEitherServerOfThePair() throws {
        let token = tokens.issue(username: "ann", passwordHash: "$scrypt$…", epoch: 4, chain: tokens.newChain(at: now))
        let other = SessionTokens(keys: ClusterKeys(secret: Array("the-pair's-shared-secret".utf8)), lifetime: .seconds(60))
        guard case .success(let claims) = other.verify(token, at: now.addingTimeInterval(10)) else {
            Issue.record("the other server refused the token")
            return
        }
        #expect(claims.username == "ann" && claims.epoch == 4)
        #expect(claims.credentialStamp == SessionTokens.stamp(ofPasswordHash: "$scrypt$…"))
        #expect(claims.credentialStamp != SessionTokens.stamp(ofPasswordHash: "$scrypt$changed"), "a new password voids it")
    }

    @Test func aTamperedForeignOrExpiredTokenIsRefused() {
        let token = tokens.issue(username: "ann", passwordHash: "h", epoch: 4, chain: tokens.newChain(at: now))
        var tampered = token
        tampered.setInteger(UInt8(0x62), at: tampered.writerIndex - 33)  // the last byte of the name
        #expect(tokens.verify(tampered, at: now) == .failure(.badSignature))
        let foreign = SessionTokens(keys: ClusterKeys(secret: Array("another pair entirely".utf8)), lifetime: .seconds(3600))
        #expect(foreign.verify(token, at: now) == .failure(.badSignature))
        #expect(tokens.verify(token, at: now.addingTimeInterval(3601)) == .failure(.expired))
        #expect(tokens.verify(ByteBuffer(string: "short"), at: now) == .failure(.malformed))
    }

    /// Issue 24, 4: a renewed token (a token login, hours later, under a new epoch) keeps the
    /// expiry of the password login that began its chain: a stolen token dies with its chain.
    @Test func aRenewedTokenKeepsItsChainsExpiry() throws {
        let first = tokens.issue(username: "ann", passwordHash: "h", epoch: 4, chain: tokens.newChain(at: now))
        guard case .success(let claims) = tokens.verify(first, at: now.addingTimeInterval(3000)) else { throw TestFailure("refused") }
        let renewed = tokens.issue(username: "ann", passwordHash: "h", epoch: 9, chain: claims.chain)
        guard case .success(let again) = tokens.verify(renewed, at: now.addingTimeInterval(3000)) else { throw TestFailure("refused") }
        #expect(again.expiresAtMs == claims.expiresAtMs && again.issuedAtMs == claims.issuedAtMs && again.epoch == 9)
        #expect(tokens.verify(renewed, at: now.addingTimeInterval(3601)) == .failure(.expired), "an hour after the password login, as its first token")
    }
}

struct TestFailure: Error {
    let text: String
    init(_ text: String) { self.text = text }
}
