import Foundation
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// The peer link's certificate check, used on both ends (the primary dials, the secondary
/// accepts): the chain must lead to the pair's CA (RFC 5280 rules, swift-certificates'
/// verifier) and the certificate must name the configured peer. BoringSSL's own check would
/// refuse the same certificates, but only with "CERTIFICATE_VERIFY_FAILED"; this one says why
/// (expired on ..., not issued by this pair's CA, names X where Y was expected), which is what
/// an operator needs at three in the morning.
public struct PeerCertificateCheck: Sendable {
    let authority: Certificate
    public let expectedName: String

    public init(authorityPEM: String, expectedName: String) throws {
        authority = try Certificate(pemEncoded: authorityPEM)
        self.expectedName = expectedName
    }

    /// nil when the chain is acceptable, else the reason it is refused.
    public func refusal(derChain: [[UInt8]], now: Date = Date()) async -> String? {
        guard let leafDER = derChain.first else { return "it presented no certificate" }
        let leaf: Certificate
        let intermediates: [Certificate]
        do {
            leaf = try Certificate(derEncoded: leafDER)
            intermediates = try derChain.dropFirst().map { try Certificate(derEncoded: $0) }
        } catch {
            return "its certificate cannot be parsed (\(error))"
        }
        let facts = CertificateFacts(certificate: leaf, der: leafDER)
        if now > leaf.notValidAfter {
            return "its certificate (\(facts.subject)) expired on \(Self.format(leaf.notValidAfter))"
        }
        if now < leaf.notValidBefore {
            return "its certificate (\(facts.subject)) is not valid before \(Self.format(leaf.notValidBefore)) (clock skew?)"
        }
        var verifier = Verifier(rootCertificates: CertificateStore([authority])) { RFC5280Policy() }
        if case .couldNotValidate(let failures) = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates)) {
            let why = failures.first.map { "\($0.policyFailureReason)" } ?? "no chain to the CA"
            return "its certificate (\(facts.subject), issued by \(facts.issuer)) is not from this pair's CA: \(why)"
        }
        guard facts.names.contains(expectedName) else {
            return "its certificate names \(facts.names.joined(separator: ", ")); this server's peer is '\(expectedName)'"
        }
        return nil
    }

    /// NIOSSL's custom verification hook: `report` hears the reason of every refusal.
    public func callback(
        report: @escaping @Sendable (String) -> Void
    ) -> @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResult>) -> Void {
        { presented, promise in
            let chain: [[UInt8]]
            do {
                chain = try presented.map { try $0.toDERBytes() }
            } catch {
                report("its certificate cannot be read (\(error))")
                promise.succeed(.failed)
                return
            }
            promise.completeWithTask {
                if let reason = await self.refusal(derChain: chain) {
                    report(reason)
                    return .failed
                }
                return .certificateVerified
            }
        }
    }

    static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
