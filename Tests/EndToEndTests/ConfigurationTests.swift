import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// vcom-server's start-up refusals: each names the setting and exits 78; --help helps.
@Suite struct ConfigurationTests {
    func run(_ arguments: [String]) throws -> (status: Int32, errors: String, output: String) {
        try #require(FileManager.default.isExecutableFile(atPath: ServerProcess.binary.path))
        let process = Process()
        process.executableURL = ServerProcess.binary
        process.arguments = arguments
        let errors = Pipe()
        let output = Pipe()
        process.standardError = errors
        process.standardOutput = output
        try process.run()
        let outText = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, errText, outText)
    }

    @Test func missingOrInvalidSettingsStopStartUpNamingThem() throws {
        let files = try PairFiles(operators: 1)
        let base = [
            "--id", "vcom-secondary", "--primary-id", "vcom-primary", "--data-dir", files.dataDirectory(.secondary).path,
            "--cluster-secret-file", files.file("cluster.secret").path, "--vendor-key-file", files.file("vendor.pub").path,
            "--client-listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0",
        ]
        let noRole = try run(base)
        #expect(noRole.status == 78 && noRole.errors.contains("server.role: missing"), "\(noRole.errors)")
        let badRole = try run(base + ["--role", "tertiary"])
        #expect(badRole.status == 78 && badRole.errors.contains("server.role: 'tertiary' must be primary or secondary"))
        let badAddress = try run(base.map { $0 == "127.0.0.1:0" ? "localhost" : $0 } + ["--role", "secondary"])
        #expect(badAddress.status == 78 && badAddress.errors.contains("is not host:port"), "\(badAddress.errors)")
        try Data("short".utf8).write(to: files.file("short.secret"))
        let shortSecret = try run(base.map { $0 == files.file("cluster.secret").path ? files.file("short.secret").path : $0 } + ["--role", "secondary"])
        #expect(shortSecret.status == 78 && shortSecret.errors.contains("at least 32 are needed"), "\(shortSecret.errors)")
        let primaryWithoutLicence = try run([
            "--role", "primary", "--id", "vcom-primary", "--data-dir", files.dataDirectory(.primary).path,
            "--cluster-secret-file", files.file("cluster.secret").path, "--vendor-key-file", files.file("vendor.pub").path,
            "--client-listen", "127.0.0.1:0", "--peer-address", "127.0.0.1:1",
        ])
        #expect(primaryWithoutLicence.status == 78 && primaryWithoutLicence.errors.contains("server.licence-file: missing"))
        // TLS is on by default: no certificate, no start (and the way out is named).
        let noCertificate = try run(base + ["--role", "secondary"])
        #expect(noCertificate.status == 78 && noCertificate.errors.contains("tls.certificate: missing"), "\(noCertificate.errors)")
        #expect(noCertificate.errors.contains("vcom-admin pki init"))
        let tls = ["--tls-certificate", files.file("vcom-primary.pem").path, "--tls-key", files.file("vcom-primary-key.pem").path, "--tls-ca", files.file("ca.pem").path]
        let noPeerName = try run([
            "--role", "primary", "--id", "vcom-primary", "--data-dir", files.dataDirectory(.primary).path,
            "--cluster-secret-file", files.file("cluster.secret").path, "--vendor-key-file", files.file("vendor.pub").path,
            "--client-listen", "127.0.0.1:0", "--peer-address", "127.0.0.1:1", "--licence-file", files.file("licence.txt").path,
        ] + tls)
        #expect(noPeerName.status == 78 && noPeerName.errors.contains("tls.peer-name: missing"), "\(noPeerName.errors)")
        let both = try run(base + ["--role", "secondary", "--plaintext"] + tls)
        #expect(both.status == 78 && both.errors.contains("choose one"), "\(both.errors)")
        // The witness's settings (issue 29), each problem named.
        let witness = try run(
            base + ["--role", "secondary", "--plaintext", "--witness-etcd", "etcd-host:2379,https://etcd:2379", "--witness-lease-ttl-s", "2", "--witness-margin-ms", "1000"])
        #expect(witness.status == 78, "\(witness.errors)")
        #expect(witness.errors.contains("witness.etcd: 'etcd-host:2379' is not an http:// or https:// URL"), "\(witness.errors)")
        #expect(witness.errors.contains("witness.margin-ms: 1000 ms is not less than half the lease's 2000 ms"), "\(witness.errors)")
        #expect(witness.errors.contains("witness.ca-file: missing"), "\(witness.errors)")
        let wrongKey = try run(base + ["--role", "secondary"] + tls.map { $0.hasSuffix("vcom-primary-key.pem") ? files.file("vcom-secondary-key.pem").path : $0 })
        #expect(wrongKey.status == 78 && wrongKey.errors.contains("is not the key of the certificate"), "\(wrongKey.errors)")
        try Data("[tls]\nclients = \"maybe\"\n".utf8).write(to: files.file("maybe.toml"))
        let maybe = try run(["--config", files.file("maybe.toml").path] + base + ["--role", "secondary"] + tls)
        #expect(maybe.status == 78 && maybe.errors.contains("tls.clients: 'maybe' must be true or false"), "\(maybe.errors)")
        let longDelay = try run(base + ["--role", "secondary", "--announcement-delay-ms", "61000"] + tls)
        #expect(longDelay.status == 78 && longDelay.errors.contains("timings.announcement-delay-ms"), "\(longDelay.errors)")
        try Data("[server]\nrole = \"secondary\"\ncolour = \"blue\"\n".utf8).write(to: files.file("typo.toml"))
        let typo = try run(["--config", files.file("typo.toml").path])
        #expect(typo.status == 78 && typo.errors.contains("server.colour: unknown setting"), "\(typo.errors)")
        try Data("[server\nrole = 1".utf8).write(to: files.file("broken.toml"))
        let broken = try run(["--config", files.file("broken.toml").path])
        #expect(broken.status == 78 && broken.errors.contains("not valid TOML"), "\(broken.errors)")
        let usage = try run(["--no-such-flag"])
        #expect(usage.status == 64)
    }

    /// `--version` names the program, its version and the commit it was built from (`unknown`
    /// from a plain swift build; make package and make install stamp it).
    @Test func versionNamesTheBuild() throws {
        let version = try run(["--version"])
        #expect(version.status == 0 && version.output.hasPrefix("vcom-server 1.0.0 (commit "), "\(version.output)\(version.errors)")
    }

    /// Issue 26, 2-3: check-config reports every problem, each naming its key, without binding;
    /// a start refuses the same file with exit 78; a private file open to others is refused.
    @Test func checkConfigNamesEveryProblemAndAStartRefusesTheSame() throws {
        let files = try PairFiles(operators: 1)
        let port = try EtcdProcess.freePort()
        func primaryFile(_ extra: String = "", key: String = "vcom-primary-key.pem", licence: String = "licence.txt") -> String {
            """
            [server]
            role = "primary"
            id = "vcom-primary"
            data-dir = "\(files.dataDirectory(.primary).path)"
            cluster-secret-file = "\(files.file("cluster.secret").path)"
            vendor-key-file = "\(files.file("vendor.pub").path)"
            licence-file = "\(files.file(licence).path)"
            \(extra)
            [listen]
            client = "127.0.0.1:\(port)"
            [peer]
            address = "127.0.0.1:1"
            [tls]
            certificate = "\(files.file("vcom-primary.pem").path)"
            key = "\(files.file(key).path)"
            ca = "\(files.file("ca.pem").path)"
            peer-name = "vcom-secondary"
            """
        }
        let good = try files.config(primaryFile(), name: "good.toml")
        let passed = try run(["check-config", good[1]])
        #expect(passed.status == 0 && passed.output.contains("ok (primary vcom-primary"), "\(passed.output) \(passed.errors)")
        // Nothing was bound: the port is still free.
        #expect(try bindable(port))

        try Data("not a pem".utf8).write(to: files.file("unreadable-key.pem"))
        chmod(files.file("unreadable-key.pem").path, 0o600)
        let broken = try files.config(
            primaryFile("colour = \"blue\"\nthreads = \"four\"", key: "vcom-secondary-key.pem", licence: "missing-licence.txt"), name: "broken.toml")
        let checked = try run(["check-config", broken[1], "--json"])
        #expect(checked.status == 78)
        let report = try JSONSerialization.jsonObject(with: Data(checked.output.utf8)) as? [String: Any]
        let named = Set(((report?["problems"] as? [[String: String]]) ?? []).compactMap { $0["setting"] })
        #expect(named.isSuperset(of: ["server.colour", "server.threads", "server.licence-file", "tls.key"]), "\(checked.output)")
        #expect(report?["ok"] as? Bool == false)
        let started = try run(["--config", broken[1]])
        #expect(started.status == 78)
        for key in ["server.colour", "server.threads", "server.licence-file", "tls.key"] {
            #expect(started.errors.contains("vcom-server: \(key):"), "a start names \(key): \(started.errors)")
        }

        // An open private key: refused with its path and the fix, by the check and by a start.
        chmod(files.file("vcom-primary-key.pem").path, 0o644)
        let open = try run(["check-config", good[1]])
        #expect(open.status == 78 && open.output.contains("tls.key:") && open.output.contains("chmod 600"), "\(open.output)")
        #expect(try run(["--config", good[1]]).errors.contains("is open to other users"))
        chmod(files.file("vcom-primary-key.pem").path, 0o600)
        chmod(files.file("cluster.secret").path, 0o640)
        let secret = try run(["check-config", good[1]])
        #expect(secret.status == 78 && secret.output.contains("server.cluster-secret-file:"), "\(secret.output)")
        chmod(files.file("cluster.secret").path, 0o600)
        // An unreadable key file, a key from another pair of files.
        let garbage = try files.config(primaryFile(key: "unreadable-key.pem"), name: "garbage.toml")
        let notPEM = try run(["check-config", garbage[1]])
        #expect(notPEM.status == 78 && notPEM.output.contains("tls.key:") && notPEM.output.contains("not a PEM private key"), "\(notPEM.output)")
        // The addresses: a listen address this host does not have, a collision, a peer that does not resolve.
        let elsewhere = try files.config(
            primaryFile().replacingOccurrences(of: "[listen]\n", with: "[listen]\nadmin = \"127.0.0.1:\(port)\"\nmetrics = \"192.0.2.77:9300\"\n")
                .replacingOccurrences(of: "127.0.0.1:1", with: "peer.invalid:7301"), name: "elsewhere.toml")
        let addresses = try run(["check-config", elsewhere[1]])
        #expect(addresses.output.contains("listen.admin: 127.0.0.1:\(port) is also listen.client"), "\(addresses.output)")
        #expect(addresses.output.contains("listen.metrics: 192.0.2.77"), "\(addresses.output)")
        #expect(addresses.output.contains("peer.address: 'peer.invalid' does not resolve"), "\(addresses.output)")
    }

    func bindable(_ port: Int) throws -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }

    @Test func helpDocumentsEverySetting() throws {
        let overview = try run(["--help"])
        #expect(overview.status == 0)
        for subcommand in ["run", "bootstrap", "hash-password"] {
            #expect(overview.output.contains(subcommand), "--help does not list \(subcommand)")
        }
        let help = try run(["run", "--help"])
        #expect(help.status == 0)
        for flag in ["--config", "--role", "--cluster-secret-file", "--client-listen", "--peer-listen", "--peer-address", "--metrics-listen", "--licence-file", "--ready-file", "--announcement-delay-ms", "Exit codes"] {
            #expect(help.output.contains(flag), "--help does not mention \(flag)")
        }
    }
}
