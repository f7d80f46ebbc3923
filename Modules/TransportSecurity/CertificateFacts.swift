import Crypto
import Foundation
import SwiftASN1
import X509

/// What an operator (and the identity check) needs to know about a certificate.
public struct CertificateFacts: Sendable, Equatable, Codable {
    public var subject: String
    public var issuer: String
    /// DNS names and IP addresses the certificate is valid for.
    public var names: [String]
    public var notValidBefore: Date
    public var notValidAfter: Date
    /// "sha256:" and the hex SHA-256 of the DER certificate: what `vcom-admin --pin` takes.
    public var fingerprint: String

    public init(derBytes: [UInt8]) throws {
        let certificate = try Certificate(derEncoded: derBytes)
        self.init(certificate: certificate, der: derBytes)
    }

    /// The first certificate of a PEM file (a chain file starts with its leaf).
    public init(pem: String) throws {
        let certificate = try Certificate(pemEncoded: pem)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        self.init(certificate: certificate, der: serializer.serializedBytes)
    }

    init(certificate: Certificate, der: [UInt8]) {
        subject = certificate.subject.description
        issuer = certificate.issuer.description
        var names: [String] = []
        if let alternatives = try? certificate.extensions.subjectAlternativeNames {
            for name in alternatives {
                switch name {
                case .dnsName(let dns): names.append(dns)
                case .ipAddress(let octets): names.append(Self.ipText(Array(octets.bytes)))
                default: continue
                }
            }
        }
        self.names = names
        notValidBefore = certificate.notValidBefore
        notValidAfter = certificate.notValidAfter
        fingerprint = Self.fingerprint(der: der)
    }

    public static func fingerprint(der: [UInt8]) -> String {
        "sha256:" + SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
    }

    /// Whole days until expiry (negative once expired).
    public func daysLeft(now: Date = Date()) -> Int {
        Int((notValidAfter.timeIntervalSince(now) / 86_400).rounded(.down))
    }

    /// Within this many days of expiry the server warns, and `vcom-admin status` says so.
    public static let warningDays = 30

    static func ipText(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16,
            bytes.withUnsafeBytes({ inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }) != nil
        else { return bytes.map { String($0) }.joined(separator: ".") }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
