import Foundation
import NIOCore
import NIOSSL

/// How a client (an operator's client, the simulator, vcom-admin) decides it reached one of
/// the pair's servers.
public enum ServerTrust: Sendable, Equatable {
    /// A certificate issued by this CA, for the address dialed (IP entry or DNS name).
    case authority(file: String)
    /// The same, with the CA certificate in hand (PEM) rather than in a file.
    case authorityPEM(String)
    /// Exactly this certificate ("sha256:" + hex of its DER): for an admin who has no CA file
    /// at hand; no name check, the pin is the identity.
    case pinned(fingerprint: String)
}

/// A client-side TLS context and the handler for each connection.
public struct ClientTLS: Sendable {
    public let trust: ServerTrust
    let context: NIOSSLContext

    public init(trust: ServerTrust) throws {
        self.trust = trust
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        switch trust {
        case .authority, .authorityPEM:
            let authority: [NIOSSLCertificate]
            do {
                switch trust {
                case .authority(let file): authority = try NIOSSLCertificate.fromPEMFile(file)
                default: authority = try NIOSSLCertificate.fromPEMBytes(Array(trust.pem!.utf8))
                }
            } catch {
                throw PairPKI.Problem("cannot read the CA certificate \(trust.source): \(error)")
            }
            guard !authority.isEmpty else { throw PairPKI.Problem("\(trust.source) holds no certificate") }
            configuration.trustRoots = .certificates(authority)
            configuration.certificateVerification = .fullVerification
        case .pinned(let fingerprint):
            guard Self.isFingerprint(fingerprint) else {
                throw PairPKI.Problem("'\(fingerprint)' is not a pin: expected sha256: and 64 hex digits (vcom-admin pki show prints it)")
            }
            configuration.certificateVerification = .noHostnameVerification
        }
        context = try NIOSSLContext(configuration: configuration)
    }

    /// The handler for one connection to `host` (an IP literal is checked against the
    /// certificate's IP entries, a name against its DNS entries).
    public func makeHandler(host: String) throws -> NIOSSLClientHandler {
        let name = PairPKI.ipAddressBytes(host) == nil ? host : nil
        switch trust {
        case .authority, .authorityPEM:
            return try NIOSSLClientHandler(context: context, serverHostname: name)
        case .pinned(let fingerprint):
            let expected = fingerprint.lowercased()
            return try NIOSSLClientHandler(
                context: context, serverHostname: name,
                customVerificationCallback: { presented, promise in
                    let leaf = presented.first.flatMap { try? $0.toDERBytes() }
                    promise.succeed(leaf.map(CertificateFacts.fingerprint(der:)) == expected ? .certificateVerified : .failed)
                }, configuration: .init())
        }
    }

    static func isFingerprint(_ text: String) -> Bool {
        let lowered = text.lowercased()
        guard lowered.hasPrefix("sha256:") else { return false }
        let hex = lowered.dropFirst(7)
        return hex.count == 64 && hex.allSatisfy(\.isHexDigit)
    }
}

extension ServerTrust {
    var pem: String? { if case .authorityPEM(let pem) = self { pem } else { nil } }
    var source: String {
        switch self {
        case .authority(let file): file
        case .authorityPEM: "(given in memory)"
        case .pinned(let fingerprint): fingerprint
        }
    }
}

extension ClientTLS {
    /// Closes a client's connection now, without TLS's goodbye. NIOSSL's own close writes a
    /// close_notify and keeps the socket until the server answers or 5 s pass: after a probe
    /// found its server silent, 10,000 clients each kept that socket (and its timer) for 5 s,
    /// and the clients still looking for a descriptor to reconnect with waited for them. The
    /// protocol says goodbye itself (a logout, a goodbye frame) and its frames carry their
    /// length, so a truncation is seen without TLS's help. On the channel's event loop.
    public static func closeAtOnce(_ channel: Channel) {
        if let tls = try? channel.pipeline.syncOperations.context(handlerType: NIOSSLClientHandler.self) {
            tls.close(promise: nil)  // goes from NIOSSL's place toward the socket, past NIOSSL
        } else {
            channel.close(promise: nil)
        }
    }
}
