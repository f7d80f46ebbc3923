import Crypto
import Foundation
import NIOCore
import PairModel
import Wire

/// The peer link's opening, pure: both sides send a hello with a fresh 32-byte nonce, then a
/// proof that they hold the cluster secret (HMAC-SHA-256, keyed from the secret, over the
/// sender's role and both nonces, sender's first). The secret never crosses the wire; a
/// proof cannot be replayed on another connection (fresh nonces) nor reflected back (the
/// role is in it). A wrong secret, a wrong version, the wrong role or anything else before
/// the proof ends the connection with a goodbye that says why.
struct PeerHandshake {
    enum State {
        case awaitingHello
        case awaitingProof(peer: PeerHello)
        case established
    }

    struct Failure: Error, Equatable {
        var reason: GoodbyeReason
        var detail: String
    }

    /// What the peer proved about itself.
    struct Peer: Equatable {
        var nodeId: String
        var role: ServerRole
        var epoch: UInt64
        var clientEndpoint: Endpoint?
    }

    let role: ServerRole
    let key: SymmetricKey
    let nonce: [UInt8]
    let clientEndpoint: Endpoint?
    private(set) var state = State.awaitingHello

    init(role: ServerRole, keys: ClusterKeys, clientEndpoint: Endpoint?, nonce: [UInt8]? = nil) {
        self.role = role
        key = keys.peerAuthentication
        self.clientEndpoint = clientEndpoint
        var generator = SystemRandomNumberGenerator()
        self.nonce = nonce ?? (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    func hello(nodeId: String, epoch: UInt64) -> PeerMessage {
        .hello(PeerHello(hello: Hello(nodeId: nodeId, software: "vcom-server"), role: role, epoch: epoch, nonce: ByteBuffer(bytes: nonce)))
    }

    static func proof(key: SymmetricKey, senderRole: ServerRole, senderNonce: [UInt8], receiverNonce: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: proofData(senderRole, senderNonce, receiverNonce), using: key))
    }

    /// A frame from the peer before the link is established. Returns what to send back, and
    /// the peer once it has proved itself.
    mutating func received(_ message: PeerMessage) throws(Failure) -> (reply: PeerMessage?, established: Peer?) {
        switch (state, message) {
        case (.awaitingHello, .hello(let hello)):
            guard hello.hello.negotiatedVersion() != nil else {
                throw Failure(
                    reason: .unsupportedVersion,
                    detail: "the peer speaks protocol versions \(hello.hello.minVersion)...\(hello.hello.maxVersion), this server \(WireProtocol.supportedVersions)")
            }
            guard hello.role != role else {
                throw Failure(reason: .authenticationFailed, detail: "both servers are configured as \(role): one must be the secondary")
            }
            guard hello.nonce.readableBytes == 32 else {
                throw Failure(reason: .protocolError, detail: "the peer's nonce is \(hello.nonce.readableBytes) bytes, not 32")
            }
            state = .awaitingProof(peer: hello)
            let proof = Self.proof(key: key, senderRole: role, senderNonce: nonce, receiverNonce: Array(hello.nonce.readableBytesView))
            return (.auth(PeerAuth(proof: ByteBuffer(bytes: proof), clientEndpoint: clientEndpoint)), nil)
        case (.awaitingProof(let hello), .auth(let auth)):
            guard auth.proof.readableBytes == SHA256.byteCount,
                HMAC<SHA256>.isValidAuthenticationCode(
                    Array(auth.proof.readableBytesView), authenticating: Self.proofData(hello.role, Array(hello.nonce.readableBytesView), nonce),
                    using: key)
            else {
                throw Failure(reason: .authenticationFailed, detail: "the peer's proof does not match: the cluster secrets differ")
            }
            state = .established
            return (nil, Peer(nodeId: hello.hello.nodeId, role: hello.role, epoch: hello.epoch, clientEndpoint: auth.clientEndpoint))
        case (_, .goodbye(let goodbye)):
            throw Failure(reason: goodbye.reason, detail: "the peer said goodbye: \(goodbye.reason): \(goodbye.detail)")
        case (.established, _):
            return (nil, nil)
        default:
            throw Failure(reason: .protocolError, detail: "unexpected \(message.messageType) before the peer proved itself")
        }
    }

    static func proofData(_ senderRole: ServerRole, _ senderNonce: [UInt8], _ receiverNonce: [UInt8]) -> [UInt8] {
        var data = Array("vcom peer proof v1".utf8)
        data.append(senderRole.rawValue)
        data += senderNonce
        data += receiverNonce
        return data
    }
}
