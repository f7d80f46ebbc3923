import ArgumentParser
import Foundation
import TransportSecurity

/// `vcom-admin pki`: the pair's CA and the servers' certificates, in a minute, with
/// swift-certificates. Keys are written readable by their owner only.
struct PKI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Creates the pair's CA and the servers' certificates, issues renewals, shows a certificate.",
        discussion: """
            pki init makes a directory with ca.pem/ca-key.pem and a certificate and key for each server \
            (NAME.pem, NAME-key.pem). Point each server at its files (tls.certificate, tls.key, tls.ca) and give \
            vcom-admin and the clients ca.pem (or a --pin from pki show). Keep ca-key.pem offline if you can: it is \
            only needed to issue. A server reloads a renewed certificate by itself (within tls.reload-check-s, or at \
            once on SIGHUP): renew with pki issue over the old files, no restart.
            """,
        subcommands: [Init.self, Issue.self, Show.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A new CA and certificates for the primary and the secondary.")
        @Option(help: "Where to write the files (created if needed).") var dir: String
        @Option(help: "The primary's certificate name: what the secondary checks (tls.peer-name).") var primaryName = "vcom-primary"
        @Option(help: "The secondary's certificate name: what the primary checks (tls.peer-name).") var secondaryName = "vcom-secondary"
        @Option(help: "An address or host name clients and vcom-admin use for the primary (repeat; default 127.0.0.1, ::1, localhost).")
        var primaryHost: [String] = []
        @Option(help: "An address or host name for the secondary (repeat; default 127.0.0.1, ::1, localhost).") var secondaryHost: [String] = []
        @Option(help: "Validity of the server certificates in days.") var days = 825
        @Flag(help: "Replace existing files (a new CA: every certificate it issued stops being trusted).") var force = false
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let directory = URL(fileURLWithPath: dir)
            let authorityFile = directory.appendingPathComponent("ca.pem")
            if FileManager.default.fileExists(atPath: authorityFile.path), !force {
                throw ValidationError("\(authorityFile.path) exists: a new CA would distrust every certificate it issued; use pki issue, or --force")
            }
            guard (1...3650).contains(days) else { throw ValidationError("--days must be 1 to 3650") }
            let authority = try PairPKI.makeAuthority()
            try PKIFiles.write(authority, to: directory, name: "ca")
            var made: [[String: Any]] = [["file": authorityFile.path, "fingerprint": try CertificateFacts(pem: authority.certificatePEM).fingerprint]]
            for (name, hosts) in [(primaryName, primaryHost), (secondaryName, secondaryHost)] {
                let issued = try PairPKI.issue(
                    name: name, hosts: hosts.isEmpty ? PKIFiles.defaultHosts : hosts, authority: authority, validityDays: days)
                try PKIFiles.write(issued, to: directory, name: name)
                let facts = try CertificateFacts(pem: issued.certificatePEM)
                made.append([
                    "file": directory.appendingPathComponent("\(name).pem").path, "names": facts.names, "fingerprint": facts.fingerprint,
                    "expires": facts.notValidAfter.formatted(.iso8601),
                ])
            }
            if json {
                printJSON(["certificates": made])
            } else {
                for entry in made {
                    print("\(entry["file"]!)  \(entry["fingerprint"]!)" + ((entry["names"] as? [String]).map { "  names: \($0.joined(separator: ", "))" } ?? ""))
                }
                print("keys: \(directory.path)/*-key.pem (mode 0600); the primary's tls.peer-name is \(secondaryName)")
            }
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A certificate from the pair's CA: a renewal (same name, over the old files) or another server.")
        @Option(help: "The directory holding ca.pem and ca-key.pem.") var dir: String
        @Option(help: "The certificate's name (the identity the peer checks).") var name: String
        @Option(help: "An address or host name it is for (repeat; default 127.0.0.1, ::1, localhost).") var host: [String] = []
        @Option(help: "Validity in days.") var days = 825
        @Option(help: "Where to write NAME.pem and NAME-key.pem (default: --dir).") var outDir: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let directory = URL(fileURLWithPath: dir)
            guard (1...3650).contains(days) else { throw ValidationError("--days must be 1 to 3650") }
            let authority: IssuedIdentity
            do {
                authority = IssuedIdentity(
                    certificatePEM: try String(contentsOf: directory.appendingPathComponent("ca.pem"), encoding: .utf8),
                    privateKeyPEM: try String(contentsOf: directory.appendingPathComponent("ca-key.pem"), encoding: .utf8))
            } catch {
                throw ValidationError("cannot read \(directory.path)/ca.pem and ca-key.pem (made by pki init): \(error.localizedDescription)")
            }
            let issued = try PairPKI.issue(name: name, hosts: host.isEmpty ? PKIFiles.defaultHosts : host, authority: authority, validityDays: days)
            let out = outDir.map(URL.init(fileURLWithPath:)) ?? directory
            try PKIFiles.write(issued, to: out, name: name)
            let facts = try CertificateFacts(pem: issued.certificatePEM)
            if json {
                printJSON(Show.object(facts, file: out.appendingPathComponent("\(name).pem").path))
            } else {
                print("\(out.appendingPathComponent("\(name).pem").path)  \(facts.fingerprint)  expires \(facts.notValidAfter.formatted(.iso8601))")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A certificate's names, issuer, validity and pin (sha256 fingerprint).")
        @Argument(help: "A PEM certificate file.") var file: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("cannot read \(file)") }
            let facts: CertificateFacts
            do {
                facts = try CertificateFacts(pem: text)
            } catch {
                throw ValidationError("\(file) is not a PEM certificate: \(error)")
            }
            if json {
                printJSON(Self.object(facts, file: file))
                return
            }
            let days = facts.daysLeft()
            print("""
                subject:     \(facts.subject)
                issuer:      \(facts.issuer)
                names:       \(facts.names.joined(separator: ", "))
                valid:       \(facts.notValidBefore.formatted(.iso8601)) to \(facts.notValidAfter.formatted(.iso8601)) (\(days) days left\(days <= CertificateFacts.warningDays ? ", RENEW SOON" : ""))
                pin:         \(facts.fingerprint)
                """)
        }

        static func object(_ facts: CertificateFacts, file: String) -> [String: Any] {
            [
                "file": file, "subject": facts.subject, "issuer": facts.issuer, "names": facts.names, "fingerprint": facts.fingerprint,
                "not_before": facts.notValidBefore.formatted(.iso8601), "expires": facts.notValidAfter.formatted(.iso8601),
                "days_left": facts.daysLeft(),
            ]
        }
    }
}

enum PKIFiles {
    static let defaultHosts = ["127.0.0.1", "::1", "localhost"]

    /// NAME.pem and NAME-key.pem, each through a temporary file and a rename, the key first:
    /// a server checking for a renewal sees either the old pair or the new one (or, for a
    /// moment, a new key with the old certificate, which it refuses and retries).
    static func write(_ issued: IssuedIdentity, to directory: URL, name: String) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try place(issued.privateKeyPEM, at: directory.appendingPathComponent("\(name)-key.pem"), mode: 0o600)
        try place(issued.certificatePEM, at: directory.appendingPathComponent("\(name).pem"), mode: 0o644)
    }

    static func place(_ text: String, at file: URL, mode: Int) throws {
        let temporary = file.appendingPathExtension("tmp")
        FileManager.default.createFile(atPath: temporary.path, contents: Data(text.utf8), attributes: [.posixPermissions: mode])
        guard rename(temporary.path, file.path) == 0 else { throw ValidationError("cannot write \(file.path)") }
    }
}
