import Foundation
import Testing

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
