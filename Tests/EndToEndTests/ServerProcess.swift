import AdminProtocol
import ConfigModel
import ConfigStore
import Foundation
import Licensing
import NIOPosix
import Testing
import TransportSecurity
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// A pair's files in a fresh temporary directory: a vendor key, a licence for the primary, a
/// cluster secret, and a data directory per server with a small configuration already in
/// the primary's store. Everything is removed when the pair ends.
final class PairFiles: @unchecked Sendable {
    let directory: URL
    let vendor = VendorSigningKey()
    static let password = "correct horse battery"
    /// One real scrypt hash shared by the test operators: each costs about 56 ms to make.
    static let passwordHash = try! PasswordHasher().hash(password)
    /// Administrators of every role; SCRAM verifiers with RFC 7677's minimum of rounds (fast).
    static let adminPassword = "admin pass phrase"
    static let admins: [(String, AdminRole)] = [("root", .admin), ("duty", .operator), ("watcher", .viewer)]

    /// One CA for every pair of the test run (the servers' certificates are issued per pair):
    /// clients trust it from memory, so no file outlives a pair.
    static let authority = try! PairPKI.makeAuthority()
    static let clientTLS: ClientTLS? = try! ClientTLS(trust: .authorityPEM(authority.certificatePEM))

    init(operators: Int = 8) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Self.authority.certificatePEM.utf8).write(to: file("ca.pem"))
        for name in ["vcom-primary", "vcom-secondary"] {
            let issued = try PairPKI.issue(name: name, hosts: ["127.0.0.1"], authority: Self.authority)
            try Data(issued.certificatePEM.utf8).write(to: file("\(name).pem"))
            try Data(issued.privateKeyPEM.utf8).write(to: file("\(name)-key.pem"))
            chmod(file("\(name)-key.pem").path, 0o600)
        }
        try Data(vendor.publicKey.fileText.utf8).write(to: file("vendor.pub"))
        let licence = try vendor.sign(
            Licence(
                licenceId: "LIC-E2E", licensee: "End-to-end tests", issued: Date().addingTimeInterval(-86_400),
                expires: Date().addingTimeInterval(365 * 86_400), maxClients: 1_000, features: [.failover], serverId: "vcom-primary"))
        try Data(licence.text.utf8).write(to: file("licence.txt"))
        try Data("e2e-cluster-secret-0123456789abcdef\n".utf8).write(to: file("cluster.secret"))
        chmod(file("cluster.secret").path, 0o600)
        // The primary's configuration, written before it starts (as an administrator's import
        // would): party lines, operators with a talk-and-listen key on line 1.
        let store = try ConfigStore(path: dataDirectory(.primary).appendingPathComponent("config.sqlite").path)
        try store.setWriteEpoch(0)
        var changes: [ConfigChange] = [.putPartyLine(PartyLine(name: "Line-1")), .putPartyLine(PartyLine(name: "Line-2"))]
        for n in 0..<operators {
            changes.append(.putOperator(Operator(username: "op\(n)", displayName: "Operator \(n)", passwordHash: Self.passwordHash)))
            changes.append(.setKeys(username: "op\(n)", keys: [PanelKey(slot: 1, talk: true, listen: true, target: .partyLine("Line-1"), latching: true)]))
        }
        for (name, role) in Self.admins {
            changes.append(.putAdmin(AdminAccount(username: name, passwordHash: try ScramVerifier(password: Self.adminPassword, iterations: 4096).text, role: role)))
        }
        try store.write(changes)
    }

    func file(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// A configuration file with `text` (TOML), as `--config` arguments.
    func config(_ text: String, name: String = "server.toml") throws -> [String] {
        try Data(text.utf8).write(to: file(name))
        return ["--config", file(name).path]
    }

    func dataDirectory(_ role: ServerRole) -> URL {
        let url = directory.appendingPathComponent(role == .primary ? "primary" : "secondary")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

/// One `vcom-server` process. Killed (by pid) when it ends or when the test fails.
final class ServerProcess: @unchecked Sendable {
    static let binary = binaries.appendingPathComponent("vcom-server")
    /// Where the apps are: beside the test runner, or VCOM_TEST_BINARIES (to run a test against
    /// another build, e.g. the one before a fix, and see it fail there).
    static let binaries: URL = ProcessInfo.processInfo.environment["VCOM_TEST_BINARIES"].map { URL(fileURLWithPath: $0) }
        ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()

    let role: ServerRole
    let process = Process()
    let readyFile: URL
    let logFile: URL
    private(set) var ready: [String: Any] = [:]

    /// `under`: a command the server is started through (`prlimit --nofile=...`), which must
    /// exec it (so the pid stays the server's).
    init(role: ServerRole, files: PairFiles, arguments: [String], name: String, environment: [String: String]? = nil, under: [String] = []) throws {
        self.role = role
        readyFile = files.file("\(name).ready")
        logFile = files.file("\(name).log")
        try? FileManager.default.removeItem(at: readyFile)
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let own = arguments + ["--ready-file", readyFile.path, "--log-level", "info"]
        if let wrapper = under.first {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [wrapper] + under.dropFirst() + [Self.binary.path] + own
        } else {
            process.executableURL = Self.binary
            process.arguments = own
        }
        let log = try FileHandle(forWritingTo: logFile)
        try log.seekToEnd()
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        process.environment = environment
    }

    /// Starts the process and waits for its ready line.
    func start(timeout: Duration = .seconds(30)) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "\(Self.binary.path) is not built")
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let data = FileManager.default.contents(atPath: readyFile.path), !data.isEmpty,
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            {
                ready = object
                return
            }
            guard process.isRunning else {
                throw TestFailure("vcom-server (\(role)) exited with \(process.terminationStatus) before it was ready:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(SIGKILL)
        throw TestFailure("vcom-server (\(role)) was not ready within \(timeout):\n\(log)")
    }

    var pid: Int32 { process.processIdentifier }
    var clientEndpoint: Endpoint { Endpoint(parsing: ready["client"] as! String)! }
    var peerEndpoint: Endpoint? { (ready["peer"] as? String).flatMap(Endpoint.init(parsing:)) }
    var metricsEndpoint: Endpoint? { (ready["metrics"] as? String).flatMap(Endpoint.init(parsing:)) }
    var adminEndpoint: Endpoint? { (ready["admin"] as? String).flatMap(Endpoint.init(parsing:)) }
    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    func kill(_ signal: Int32) {
        guard process.isRunning else { return }
        Glibc.kill(pid, signal)
    }

    /// Waits (bounded) for the process to exit; its status, or nil if it did not.
    func waitForExit(timeout: Duration = .seconds(15)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Waits until the log contains `text` (bounded).
    func waitForLog(_ text: String, timeout: Duration = .seconds(15)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if log.contains(text) { return true }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return false
    }

    deinit {
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A primary and a secondary on loopback, started in that order of dependency: the secondary
/// first (the primary dials it).
final class TestPair: @unchecked Sendable {
    let files: PairFiles
    var secondary: ServerProcess!
    var primary: ServerProcess!
    var secondaryPeerPort: UInt16 = 0
    var clientPorts: [ServerRole: UInt16] = [:]
    var generation = 0
    static let group = MultiThreadedEventLoopGroup.singleton

    init(operators: Int = 8) throws {
        files = try PairFiles(operators: operators)
    }

    /// TLS on every port (the default a server starts with); false starts the pair --plaintext.
    var tls = true

    func arguments(_ role: ServerRole, clientPort: UInt16 = 0, extra: [String] = []) -> [String] {
        let name = role == .primary ? "vcom-primary" : "vcom-secondary"
        let transport =
            tls
            ? [
                "--tls-certificate", files.file("\(name).pem").path, "--tls-key", files.file("\(name)-key.pem").path,
                "--tls-ca", files.file("ca.pem").path,
            ] + (role == .primary ? ["--peer-name", "vcom-secondary"] : [])
            : ["--plaintext"]
        var arguments = transport + [
            "--role", role.description, "--id", role == .primary ? "vcom-primary" : "vcom-secondary",
            "--data-dir", files.dataDirectory(role).path, "--cluster-secret-file", files.file("cluster.secret").path,
            "--vendor-key-file", files.file("vendor.pub").path, "--client-listen", "127.0.0.1:\(clientPort)",
            "--metrics-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--client-heartbeat-ms", "500", "--threads", "2",
        ]
        switch role {
        case .primary:
            arguments += ["--licence-file", files.file("licence.txt").path, "--peer-address", "127.0.0.1:\(secondaryPeerPort)"]
        case .secondary:
            arguments += ["--primary-id", "vcom-primary", "--peer-listen", "127.0.0.1:\(secondaryPeerPort)"]
        }
        return arguments + extra
    }

    func startSecondary(extra: [String] = []) async throws {
        generation += 1
        secondary = try ServerProcess(
            role: .secondary, files: files, arguments: arguments(.secondary, clientPort: clientPorts[.secondary] ?? 0, extra: extra),
            name: "secondary-\(generation)")
        try await secondary.start()
        secondaryPeerPort = secondary.peerEndpoint!.port
        clientPorts[.secondary] = secondary.clientEndpoint.port
    }

    func startPrimary(extra: [String] = [], under: [String] = []) async throws {
        generation += 1
        primary = try ServerProcess(
            role: .primary, files: files, arguments: arguments(.primary, clientPort: clientPorts[.primary] ?? 0, extra: extra),
            name: "primary-\(generation)", under: under)
        try await primary.start()
        clientPorts[.primary] = primary.clientEndpoint.port
    }

    func start() async throws {
        try await startSecondary()
        try await startPrimary()
    }

    /// Both logs, for a failing test's message.
    var logs: String {
        "--- primary ---\n\(primary?.log.suffix(4000) ?? "")\n--- secondary ---\n\(secondary?.log.suffix(4000) ?? "")"
    }

    func stop() {
        primary?.kill(SIGKILL)
        secondary?.kill(SIGKILL)
    }
}
