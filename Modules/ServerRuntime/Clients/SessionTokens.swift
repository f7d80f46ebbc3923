import Crypto
import Foundation
import NIOCore

/// Session tokens: what lets 10,000 clients log in again on the other server after a
/// failover without paying a slow password hash each. Signed with a key both servers derive
/// from the cluster secret; verified in microseconds.
///
/// Layout (all integers big-endian): version `1`, epoch u64, issued-at and expires-at in Unix
/// milliseconds u64, a credential stamp (the first 8 bytes of SHA-256 over the operator's
/// stored password hash, so a password change voids every token), the username (u16 length
/// and UTF-8), then HMAC-SHA-256 over everything before it. A token proves who and until
/// when; whether that operator may still log in (exists, enabled, same password) is checked
/// against the configuration at every use, on both servers.
///
/// A token login returns a renewed token (under the new epoch) with the issue and expiry
/// times of the one presented: a chain of renewals keeps the absolute lifetime of the password
/// login that began it, so a stolen token dies with its chain. (issued-at, username) names the
/// chain: a kick or a logout revokes it (`RevokedSession`, replicated in the configuration).
public struct SessionTokens: Sendable {
    /// The HMAC with the key already mixed in: each token copies it instead of keying a new
    /// one (two hash blocks less per login; 10,000 logins follow a failover).
    let keyed: HMAC<SHA256>
    public var lifetime: Duration

    public init(keys: ClusterKeys, lifetime: Duration) {
        keyed = HMAC<SHA256>(key: keys.sessionTokens)
        self.lifetime = lifetime
    }

    private func mac(of bytes: ByteBuffer) -> HMAC<SHA256>.MAC {
        var hmac = keyed
        bytes.withUnsafeReadableBytes { hmac.update(data: $0) }
        return hmac.finalize()
    }

    public struct Claims: Equatable, Sendable {
        public var username: String
        public var epoch: UInt64
        public var issuedAtMs: UInt64
        public var expiresAtMs: UInt64
        public var credentialStamp: [UInt8]
        public var chain: Chain { Chain(issuedAtMs: issuedAtMs, expiresAtMs: expiresAtMs) }
    }

    public enum Refusal: Error, Equatable, Sendable {
        case malformed
        case badSignature
        case expired
    }

    static func stamp(ofPasswordHash hash: String) -> [UInt8] {
        var hasher = SHA256()
        var text = hash
        text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        return hasher.finalize().withUnsafeBytes { Array($0.prefix(8)) }
    }

    /// The times of a chain of tokens: those of the password login that began it.
    public struct Chain: Equatable, Hashable, Sendable {
        public var issuedAtMs: UInt64
        public var expiresAtMs: UInt64
    }

    /// A new chain's times, for a password login now.
    public func newChain(at now: Date) -> Chain {
        let issued = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        return Chain(issuedAtMs: issued, expiresAtMs: issued + UInt64(max(0, lifetime.milliseconds)))
    }

    public func issue(username: String, passwordHash: String, epoch: UInt64, chain: Chain) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(1 as UInt8)
        buffer.writeInteger(epoch)
        buffer.writeInteger(chain.issuedAtMs)
        buffer.writeInteger(chain.expiresAtMs)
        buffer.writeBytes(Self.stamp(ofPasswordHash: passwordHash))
        let name = Array(username.utf8.prefix(1024))
        buffer.writeInteger(UInt16(name.count))
        buffer.writeBytes(name)
        let code = mac(of: buffer)
        code.withUnsafeBytes { _ = buffer.writeBytes($0) }
        return buffer
    }

    public func verify(_ token: ByteBuffer, at now: Date) -> Result<Claims, Refusal> {
        guard token.readableBytes > 32 + 35, token.readableBytes <= 2048 else { return .failure(.malformed) }
        let signedLength = token.readableBytes - 32
        let signed = token.getSlice(at: token.readerIndex, length: signedLength)!
        let presented = token.getSlice(at: token.readerIndex + signedLength, length: 32)!
        // MAC == bytes compares in constant time (swift-crypto's safeCompare).
        let valid = presented.withUnsafeReadableBytes { mac(of: signed) == $0 }
        guard valid else { return .failure(.badSignature) }
        var reader = signed
        guard reader.readInteger(as: UInt8.self) == 1, let epoch = reader.readInteger(as: UInt64.self),
            let issued = reader.readInteger(as: UInt64.self), let expires = reader.readInteger(as: UInt64.self),
            let stamp = reader.readBytes(length: 8), let length = reader.readInteger(as: UInt16.self),
            let name = reader.readString(length: Int(length)), reader.readableBytes == 0
        else { return .failure(.malformed) }
        guard UInt64(max(0, now.timeIntervalSince1970 * 1000)) < expires else { return .failure(.expired) }
        return .success(Claims(username: name, epoch: epoch, issuedAtMs: issued, expiresAtMs: expires, credentialStamp: stamp))
    }
}
