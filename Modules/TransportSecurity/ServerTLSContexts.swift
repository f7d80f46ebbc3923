import Foundation
import NIOConcurrencyHelpers
import NIOSSL
import X509

/// Where a server's TLS material lives: PEM files, as `vcom-admin pki` writes them.
public struct TLSFiles: Sendable, Equatable {
    /// The server's certificate (a chain file may follow it with intermediates).
    public var certificate: String
    public var privateKey: String
    /// The pair's CA: the only issuer the peer link accepts.
    public var authority: String

    public init(certificate: String, privateKey: String, authority: String) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.authority = authority
    }
}

/// A TLS file that cannot be used, and which of the three it is (so the message names its setting).
public struct TLSFileProblem: Error, CustomStringConvertible {
    public enum File: Sendable { case certificate, privateKey, authority }
    public var file: File
    public var description: String

    init(_ file: File, _ description: String) {
        self.file = file
        self.description = description
    }
}

/// The server's TLS contexts, built from files and rebuilt when the files change, so a renewed
/// certificate is taken without a restart: connections made after a reload use the new
/// certificate, those already open keep theirs (TLS never re-authenticates a live session).
public final class ServerTLSContexts: Sendable {
    public struct Loaded: Sendable {
        /// Client and admin ports: the server proves who it is; clients prove it by password.
        public let serving: NIOSSLContext
        /// The secondary's peer port: the dialing primary must present a certificate.
        public let peerAccepting: NIOSSLContext
        /// The primary's dial to its secondary: presents this server's certificate.
        public let peerDialing: NIOSSLContext
        public let certificate: CertificateFacts
        public let authorityPEM: String
        fileprivate let stamps: [FileStamp]
    }

    public enum Reload: Sendable, Equatable {
        case unchanged
        case reloaded(CertificateFacts)
        /// The files changed but cannot be used; the previous certificate stays in service.
        case failed(String)
    }

    public let files: TLSFiles
    private let loaded: NIOLockedValueBox<Loaded>
    /// The files' stamps when they last failed to load: reported once, not at every check.
    private let refused = NIOLockedValueBox<[FileStamp]?>(nil)

    /// Loads the files or throws a message naming the file and the problem.
    public init(files: TLSFiles, now: Date = Date()) throws {
        self.files = files
        loaded = NIOLockedValueBox(try Self.load(files, now: now))
    }

    public var current: Loaded { loaded.withLockedValue { $0 } }

    /// Compares the files' identity (inode, size, modification time) with what was loaded, and
    /// reloads when any changed. Cheap enough to call every few seconds.
    public func reloadIfChanged(now: Date = Date()) -> Reload {
        let stamps = Self.stamps(files)
        guard stamps != current.stamps, stamps != refused.withLockedValue({ $0 }) else { return .unchanged }
        do {
            let fresh = try Self.load(files, now: now)
            loaded.withLockedValue { $0 = fresh }
            return .reloaded(fresh.certificate)
        } catch {
            refused.withLockedValue { $0 = stamps }
            return .failed("\(error)")
        }
    }

    static func load(_ files: TLSFiles, now: Date) throws -> Loaded {
        let stamps = stamps(files)
        let certificatePEM = try read(files.certificate, "certificate", .certificate)
        let keyPEM = try read(files.privateKey, "private key", .privateKey)
        let authorityPEM = try read(files.authority, "CA certificate", .authority)
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        let authority: NIOSSLCertificate
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8))
        } catch {
            throw TLSFileProblem(.certificate, "\(files.certificate) is not a PEM certificate: \(error)")
        }
        do {
            key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        } catch {
            throw TLSFileProblem(.privateKey, "\(files.privateKey) is not a PEM private key: \(error)")
        }
        do {
            authority = try NIOSSLCertificate(bytes: Array(authorityPEM.utf8), format: .pem)
        } catch {
            throw TLSFileProblem(.authority, "\(files.authority) is not a PEM certificate: \(error)")
        }
        guard !chain.isEmpty else { throw TLSFileProblem(.certificate, "\(files.certificate) holds no certificate") }
        let facts: CertificateFacts
        let leaf: Certificate
        do {
            facts = try CertificateFacts(pem: certificatePEM)
            leaf = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw TLSFileProblem(.certificate, "\(files.certificate): \(error)")
        }
        guard let privateKey = try? Certificate.PrivateKey(pemEncoded: keyPEM), privateKey.publicKey == leaf.publicKey else {
            throw TLSFileProblem(.privateKey, "\(files.privateKey) is not the key of the certificate in \(files.certificate)")
        }
        if now > facts.notValidAfter {
            throw TLSFileProblem(.certificate, "\(files.certificate) (\(facts.subject)) expired on \(facts.notValidAfter.formatted(.iso8601))")
        }
        // A lone certificate must come from the pair's CA (the peer would refuse it); a chain
        // file's intermediates are the operator's business.
        if chain.count == 1, let issuer = try? Certificate(pemEncoded: authorityPEM), issuer.subject != leaf.issuer {
            throw TLSFileProblem(.authority, "\(files.certificate) was not issued by the CA in \(files.authority) (issuer \(leaf.issuer), CA \(issuer.subject))")
        }
        var serving = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        serving.minimumTLSVersion = .tlsv13
        var accepting = serving
        accepting.certificateVerification = .noHostnameVerification
        accepting.trustRoots = .certificates([authority])
        var dialing = TLSConfiguration.makeClientConfiguration()
        dialing.minimumTLSVersion = .tlsv13
        dialing.certificateChain = chain.map { .certificate($0) }
        dialing.privateKey = .privateKey(key)
        dialing.certificateVerification = .noHostnameVerification
        dialing.trustRoots = .certificates([authority])
        return Loaded(
            serving: try NIOSSLContext(configuration: serving), peerAccepting: try NIOSSLContext(configuration: accepting),
            peerDialing: try NIOSSLContext(configuration: dialing), certificate: facts, authorityPEM: authorityPEM, stamps: stamps)
    }

    static func read(_ path: String, _ what: String, _ file: TLSFileProblem.File) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TLSFileProblem(file, "cannot read the \(what) file \(path)")
        }
        return text
    }

    static func stamps(_ files: TLSFiles) -> [FileStamp] {
        [files.certificate, files.privateKey, files.authority].map(FileStamp.init(path:))
    }
}

struct FileStamp: Sendable, Equatable {
    var inode: UInt64 = 0
    var size: Int64 = 0
    var modified: Int = 0
    var modifiedNanoseconds: Int = 0

    init(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = info.st_mtim.tv_sec
        modifiedNanoseconds = info.st_mtim.tv_nsec
    }
}
