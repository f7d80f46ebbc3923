import Crypto
import Foundation

/// The keys both servers derive from the cluster secret (HKDF-SHA-256, one label per use):
/// no key ever crosses the wire, and a key for one use says nothing about the other.
public struct ClusterKeys: Sendable {
    let peerAuthentication: SymmetricKey
    let sessionTokens: SymmetricKey

    /// The secret must be at least 32 bytes, the key size the HKDF derives (`vcom-server`
    /// refuses a shorter file).
    public static let minimumSecretBytes = 32

    /// The secret in a file's bytes: all of them, as they are, except one trailing newline
    /// (`\n` or `\r\n`, which editors and `echo` add). Not decoded as text: two different files
    /// of non-UTF-8 bytes once became the same string of replacement characters, and
    /// authenticated to each other.
    public static func secret(fromFile data: [UInt8]) -> [UInt8] {
        var bytes = data
        if bytes.last == 0x0A {
            bytes.removeLast()
            if bytes.last == 0x0D { bytes.removeLast() }
        }
        return bytes
    }

    public init(secret: [UInt8]) {
        let material = SymmetricKey(data: secret)
        let salt = Data("vcom-failover cluster keys v1".utf8)
        peerAuthentication = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: material, salt: salt, info: Data("peer link authentication".utf8), outputByteCount: 32)
        sessionTokens = HKDF<SHA256>.deriveKey(inputKeyMaterial: material, salt: salt, info: Data("client session tokens".utf8), outputByteCount: 32)
    }
}
