import Crypto
import Foundation

/// The vendor's Ed25519 signing key. Only the licence tool holds it; servers hold the
/// public half. Files are one line of text (docs/licensing.md).
public struct VendorSigningKey: Sendable {
    public let key: Curve25519.Signing.PrivateKey
    static let prefix = "vcom-vendor-signing-key-ed25519:"

    public init() { key = Curve25519.Signing.PrivateKey() }
    public init(_ key: Curve25519.Signing.PrivateKey) { self.key = key }

    public var publicKey: VendorPublicKey { VendorPublicKey(key.publicKey) }

    public var fileText: String { "\(Self.prefix) \(key.rawRepresentation.base64EncodedString())\n" }

    public init(fileText: String) throws(LicenceError) {
        let raw = try VendorPublicKey.payload(of: fileText, prefix: Self.prefix, kind: "signing key")
        do {
            key = try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        } catch {
            throw .badKey("the signing key is not a 32-byte Ed25519 key")
        }
    }

    /// Signs the licence; refuses one whose text would not parse back as signed.
    public func sign(_ licence: Licence) throws(LicenceError) -> Licence {
        if let problem = Licence.licenseeProblem(licence.licensee) {
            throw .invalidValue(field: "licensee", value: String(licence.licensee.prefix(40)), expected: problem)
        }
        var signed = licence
        signed.signingKey = publicKey.fingerprint
        do {
            signed.signature = try key.signature(for: Data(signed.canonicalText.utf8))
        } catch {
            throw .badKey("signing failed: \(error)")
        }
        return signed
    }
}

public struct VendorPublicKey: Sendable, Equatable {
    public let key: Curve25519.Signing.PublicKey
    static let prefix = "vcom-vendor-public-key-ed25519:"

    public init(_ key: Curve25519.Signing.PublicKey) { self.key = key }

    public static func == (lhs: VendorPublicKey, rhs: VendorPublicKey) -> Bool { lhs.key.rawRepresentation == rhs.key.rawRepresentation }

    /// First 16 bytes of the SHA-256 of the raw key, in hex: names the key in a licence.
    public var fingerprint: String {
        SHA256.hash(data: key.rawRepresentation).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    public var fileText: String { "\(Self.prefix) \(key.rawRepresentation.base64EncodedString())\n" }

    public init(fileText: String) throws(LicenceError) {
        let raw = try Self.payload(of: fileText, prefix: Self.prefix, kind: "public key")
        do {
            key = try Curve25519.Signing.PublicKey(rawRepresentation: raw)
        } catch {
            throw .badKey("the public key is not a 32-byte Ed25519 key")
        }
    }

    static func payload(of fileText: String, prefix: String, kind: String) throws(LicenceError) -> Data {
        let text = fileText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix(prefix) else {
            if text.hasPrefix(VendorSigningKey.prefix) || text.hasPrefix(VendorPublicKey.prefix) {
                throw .badKey("this file holds the other half of the key pair; a \(kind) was expected")
            }
            throw .badKey("not a VCOM vendor \(kind) file (it should start with '\(prefix)')")
        }
        guard let raw = Data(base64Encoded: String(text.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)), raw.count == 32 else {
            throw .badKey("the \(kind) is not 32 bytes of base64")
        }
        return raw
    }
}
