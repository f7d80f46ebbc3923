import Crypto
import Foundation

/// The keys both servers derive from the cluster secret (HKDF-SHA-256, one label per use):
/// no key ever crosses the wire, and a key for one use says nothing about the other.
public struct ClusterKeys: Sendable {
    let peerAuthentication: SymmetricKey
    let sessionTokens: SymmetricKey

    /// The secret must be at least 16 bytes (`vcom-server` refuses a shorter file).
    public static let minimumSecretBytes = 16

    public init(secret: [UInt8]) {
        let material = SymmetricKey(data: secret)
        let salt = Data("vcom-failover cluster keys v1".utf8)
        peerAuthentication = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: material, salt: salt, info: Data("peer link authentication".utf8), outputByteCount: 32)
        sessionTokens = HKDF<SHA256>.deriveKey(inputKeyMaterial: material, salt: salt, info: Data("client session tokens".utf8), outputByteCount: 32)
    }
}
