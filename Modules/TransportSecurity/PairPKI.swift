import Crypto
import Foundation
import SwiftASN1
import X509

/// A certificate and its private key, both PEM.
public struct IssuedIdentity: Sendable, Equatable {
    public var certificatePEM: String
    public var privateKeyPEM: String

    public init(certificatePEM: String, privateKeyPEM: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
    }
}

/// The pair's own small PKI: one CA that issues the servers' certificates. Both servers and
/// vcom-admin trust that CA and nothing else, so a certificate from a public CA (or another
/// pair's CA) is refused everywhere. P-256 keys: fast to sign and verify, supported by every
/// TLS 1.3 stack.
public enum PairPKI {
    public struct Problem: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// A new CA, valid from a few minutes ago (tolerates clock skew between the two servers).
    public static func makeAuthority(
        commonName: String = "VCOM pair CA", validityDays: Int = 3650, now: Date = Date()
    ) throws -> IssuedIdentity {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            CommonName(commonName)
            OrganizationName("VCOM failover pair")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Double(validityDays) * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
            },
            issuerPrivateKey: .init(key))
        return IssuedIdentity(certificatePEM: try certificate.serializeAsPEM().pemString, privateKeyPEM: key.pemRepresentation)
    }

    /// A server (or admin) certificate signed by `authority`. `name` is the identity the peer
    /// checks (a DNS name in the certificate); `hosts` are the addresses or host names clients
    /// dial (IP literals become IP entries, anything else DNS entries). Usable for both ends of
    /// a TLS connection, because each server is the client of the peer link on one side.
    public static func issue(
        name: String, hosts: [String], authority: IssuedIdentity, validityDays: Int = 825, now: Date = Date(),
        notValidBefore: Date? = nil
    ) throws -> IssuedIdentity {
        guard !name.isEmpty, name.utf8.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "-._".contains($0) }) else {
            throw Problem("'\(name)' is not a usable certificate name (1 to 64 letters, digits, '-', '.', '_')")
        }
        let caCertificate: Certificate
        let caKey: P256.Signing.PrivateKey
        do {
            caCertificate = try Certificate(pemEncoded: authority.certificatePEM)
            caKey = try P256.Signing.PrivateKey(pemRepresentation: authority.privateKeyPEM)
        } catch {
            throw Problem("the CA certificate or key cannot be read: \(error)")
        }
        guard caKey.publicKey.derRepresentation == P256.Signing.PublicKey(caCertificate.publicKey)?.derRepresentation else {
            throw Problem("the CA key does not belong to the CA certificate")
        }
        let key = P256.Signing.PrivateKey()
        var names: [GeneralName] = [.dnsName(name)]
        for host in hosts where host != name {
            if let bytes = ipAddressBytes(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
            } else {
                names.append(.dnsName(host))
            }
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: notValidBefore ?? now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(Double(validityDays) * 86_400),
            issuer: caCertificate.subject,
            subject: try DistinguishedName {
                CommonName(name)
                OrganizationName("VCOM failover pair")
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(names)
                if let authorityKey = try? caCertificate.extensions.subjectKeyIdentifier {
                    AuthorityKeyIdentifier(keyIdentifier: authorityKey.keyIdentifier)
                }
            },
            issuerPrivateKey: .init(caKey))
        return IssuedIdentity(certificatePEM: try certificate.serializeAsPEM().pemString, privateKeyPEM: key.pemRepresentation)
    }

    /// The network-order bytes of an IPv4 or IPv6 literal, nil for anything else.
    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

extension SubjectKeyIdentifier {
    /// The key identifier of RFC 5280 4.2.1.2 method 1 (SHA-1 of the public key bits; an
    /// identifier, not a security function).
    init(hash key: P256.Signing.PublicKey) {
        self.init(keyIdentifier: ArraySlice(Insecure.SHA1.hash(data: key.x963Representation)))
    }
}
