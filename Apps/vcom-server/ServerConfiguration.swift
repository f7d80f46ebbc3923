import Foundation
import Licensing
import NIOCore
import ServerRuntime
import TOMLKit
import TransportSecurity
import PairModel
import Wire

/// A setting that is missing or wrong: the message names it. Exit code 78 (EX_CONFIG).
struct ConfigurationProblem: Error, CustomStringConvertible {
    var setting: String
    var problem: String
    var description: String { "\(setting): \(problem)" }
}

/// The configuration file (TOML) with the command line's overrides, turned into the
/// runtime's settings. docs/configuration.md has a complete example pair.
struct ServerConfiguration {
    /// Values from the file, by dotted name ("listen.client").
    var values: [String: String] = [:]

    static let knownKeys: Set<String> = Set([
        "server.role", "server.id", "server.primary-id", "server.data-dir", "server.cluster-secret-file", "server.vendor-key-file",
        "server.licence-file", "server.threads", "listen.client", "listen.peer", "listen.metrics", "listen.admin", "advertise.client",
        "peer.address", "peer.client-address", "timings.peer-heartbeat-ms", "timings.peer-misses", "timings.client-heartbeat-ms",
        "timings.client-misses", "timings.token-lifetime-s", "timings.startup-peer-wait-ms", "timings.handover-timeout-ms",
        "timings.switchover-timeout-ms", "timings.announcement-delay-ms", "tls.certificate", "tls.key", "tls.ca", "tls.peer-name", "tls.clients", "tls.plaintext",
        "tls.reload-check-s", "tls.handshake-limit",
    ]).union(limitKeys.map(\.key))

    /// `[limits]`: what strangers may hold of each port, and the login throttles
    /// (docs/security.md, "Limits and throttles"). In the file only: no flags.
    // Key paths never change once made; Swift 6.3 does not call WritableKeyPath Sendable.
    nonisolated(unsafe) static let limitKeys: [(key: String, path: WritableKeyPath<ServerSettings, Int>, range: ClosedRange<Int>)] = [
        ("limits.client-per-source", \.limits.client.perSource, 1...1_000_000),
        ("limits.client-connections", \.limits.client.total, 1...1_000_000),
        ("limits.client-first-bytes-ms", \.clientFirstBytesMs, 100...60_000),
        ("limits.client-login-timeout-ms", \.clientLoginTimeoutMs, 500...600_000),
        ("limits.admin-per-source", \.limits.admin.perSource, 1...10_000),
        ("limits.admin-connections", \.limits.admin.total, 1...10_000),
        ("limits.admin-login-timeout-ms", \.adminLoginTimeoutMs, 500...600_000),
        ("limits.peer-per-source", \.limits.peer.perSource, 1...1_000),
        ("limits.peer-connections", \.limits.peer.total, 1...1_000),
        ("limits.metrics-per-source", \.limits.metrics.perSource, 1...10_000),
        ("limits.metrics-connections", \.limits.metrics.total, 1...10_000),
        ("limits.password-checks", \.limits.passwordChecks, 1...100_000),
        ("limits.password-checks-per-source", \.limits.passwordChecksPerSource, 1...100_000),
        ("limits.client-login-failures", \.clientLoginThrottle.failuresPerAccountAndSource, 1...1_000),
        ("limits.client-login-failures-per-source", \.clientLoginThrottle.failuresPerSource, 1...100_000),
        ("limits.admin-login-failures", \.adminLoginThrottle.failuresPerAccountAndSource, 1...1_000),
        ("limits.admin-login-failures-per-source", \.adminLoginThrottle.failuresPerSource, 1...100_000),
    ]

    /// Reads a TOML file; unknown keys are errors (a typo must not silently drop a setting).
    static func load(_ path: String) throws -> ServerConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationProblem(setting: "--config", problem: "cannot read \(path): \(error.localizedDescription)")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationProblem(
                setting: path, problem: "not valid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        } catch {
            throw ConfigurationProblem(setting: path, problem: "not valid TOML: \(error)")
        }
        var configuration = ServerConfiguration()
        for (section, value) in table {
            guard let inner = value.table else {
                throw ConfigurationProblem(setting: section, problem: "expected a [\(section)] section")
            }
            for (key, item) in inner {
                let name = "\(section).\(key)"
                guard knownKeys.contains(name) else {
                    throw ConfigurationProblem(setting: name, problem: "unknown setting (see docs/configuration.md)")
                }
                if let string = item.string {
                    configuration.values[name] = string
                } else if let int = item.int {
                    configuration.values[name] = String(int)
                } else if let bool = item.bool {
                    configuration.values[name] = String(bool)
                } else {
                    throw ConfigurationProblem(setting: name, problem: "must be a string, a whole number, true or false")
                }
            }
        }
        return configuration
    }

    func string(_ name: String) -> String? { values[name] }

    func require(_ name: String, flag: String) throws -> String {
        guard let value = values[name], !value.isEmpty else {
            throw ConfigurationProblem(setting: name, problem: "missing (in the configuration file, or \(flag))")
        }
        return value
    }

    func endpoint(_ name: String, flag: String) throws -> Endpoint? {
        guard let value = values[name] else { return nil }
        guard let endpoint = Endpoint(parsing: value) else {
            throw ConfigurationProblem(setting: name, problem: "'\(value)' is not host:port (\(flag))")
        }
        return endpoint
    }

    func milliseconds(_ name: String, default fallback: Duration, range: ClosedRange<Int>) throws -> Duration {
        guard let value = values[name] else { return fallback }
        guard let number = Int(value), range.contains(number) else {
            throw ConfigurationProblem(setting: name, problem: "'\(value)' must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return .milliseconds(number)
    }

    func count(_ name: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let value = values[name] else { return fallback }
        guard let number = Int(value), range.contains(number) else {
            throw ConfigurationProblem(setting: name, problem: "'\(value)' must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// The runtime's settings, every file read and every value checked.
    func settings() throws -> ServerSettings {
        let roleName = try require("server.role", flag: "--role")
        guard let role: ServerRole = roleName == "primary" ? .primary : roleName == "secondary" ? .secondary : nil else {
            throw ConfigurationProblem(setting: "server.role", problem: "'\(roleName)' must be primary or secondary")
        }
        let id = try require("server.id", flag: "--id")
        _ = try validIdentifier(id, "server.id")
        let primaryId = role == .primary ? id : try require("server.primary-id", flag: "--primary-id")
        _ = try validIdentifier(primaryId, "server.primary-id")
        let dataDirectory = URL(fileURLWithPath: try require("server.data-dir", flag: "--data-dir"))
        let secret = try readSecret(try require("server.cluster-secret-file", flag: "--cluster-secret-file"))
        let vendorKeyPath = try require("server.vendor-key-file", flag: "--vendor-key-file")
        let vendorKey: VendorPublicKey
        do {
            vendorKey = try VendorPublicKey(fileText: try String(contentsOfFile: vendorKeyPath, encoding: .utf8))
        } catch {
            throw ConfigurationProblem(setting: "server.vendor-key-file", problem: "\(vendorKeyPath): \(error)")
        }
        guard let client = try endpoint("listen.client", flag: "--client-listen") else {
            throw ConfigurationProblem(setting: "listen.client", problem: "missing (in the configuration file, or --client-listen)")
        }
        var settings = ServerSettings(
            role: role, serverId: id, primaryId: primaryId, clientListen: client, dataDirectory: dataDirectory,
            vendorKeys: [vendorKey], clusterSecret: secret)
        settings.metricsListen = try endpoint("listen.metrics", flag: "--metrics-listen")
        settings.adminListen = try endpoint("listen.admin", flag: "--admin-listen")
        settings.advertisedClientEndpoint = try endpoint("advertise.client", flag: "--advertise-client")
        settings.peerClientEndpoint = try endpoint("peer.client-address", flag: "--peer-client-address")
        if ["0.0.0.0", "::", ""].contains(client.host), settings.advertisedClientEndpoint == nil {
            throw ConfigurationProblem(
                setting: "advertise.client", problem: "the client port listens on every address: say which one clients use (--advertise-client)")
        }
        switch role {
        case .primary:
            guard let peer = try endpoint("peer.address", flag: "--peer-address") else {
                throw ConfigurationProblem(setting: "peer.address", problem: "missing: the primary dials its secondary there (--peer-address)")
            }
            settings.peerAddress = peer
            let licence = try require("server.licence-file", flag: "--licence-file")
            guard FileManager.default.isReadableFile(atPath: licence) else {
                throw ConfigurationProblem(setting: "server.licence-file", problem: "\(licence) is not a readable file")
            }
            settings.licenceFile = URL(fileURLWithPath: licence)
        case .secondary:
            guard let peer = try endpoint("listen.peer", flag: "--peer-listen") else {
                throw ConfigurationProblem(setting: "listen.peer", problem: "missing: the secondary accepts its primary's link there (--peer-listen)")
            }
            settings.peerListen = peer
        }
        var timings = ServerSettings.Timings()
        timings.peerHeartbeat = try milliseconds("timings.peer-heartbeat-ms", default: timings.peerHeartbeat, range: 10...10_000)
        timings.peerMisses = try count("timings.peer-misses", default: timings.peerMisses, range: 2...100)
        timings.clientHeartbeat = try milliseconds("timings.client-heartbeat-ms", default: timings.clientHeartbeat, range: 50...60_000)
        timings.clientMisses = try count("timings.client-misses", default: timings.clientMisses, range: 2...100)
        timings.tokenLifetime = .seconds(try count("timings.token-lifetime-s", default: 12 * 3600, range: 60...(30 * 86_400)))
        timings.startupPeerWait = try milliseconds("timings.startup-peer-wait-ms", default: timings.startupPeerWait, range: 0...600_000)
        timings.handoverTimeout = try milliseconds("timings.handover-timeout-ms", default: timings.handoverTimeout, range: 100...600_000)
        timings.switchoverTimeout = try milliseconds("timings.switchover-timeout-ms", default: timings.switchoverTimeout, range: 100...600_000)
        timings.announcementDelayAfterClose = try milliseconds(
            "timings.announcement-delay-ms", default: timings.announcementDelayAfterClose, range: 0...60_000)
        settings.timings = timings
        settings.eventLoopThreads = try count("server.threads", default: System.coreCount, range: 1...256)
        settings.tls = try transport(role: role, primaryId: primaryId)
        for (key, path, range) in Self.limitKeys {
            settings[keyPath: path] = try count(key, default: settings[keyPath: path], range: range)
        }
        return settings
    }

    /// TLS on every port unless `tls.plaintext` says otherwise (closed test networks only);
    /// the certificate files are read and checked here, so a bad file stops the start with its name.
    func transport(role: ServerRole, primaryId: String) throws -> TransportSettings? {
        let plaintext = try flag("tls.plaintext", default: false)
        if plaintext {
            if values["tls.certificate"] != nil {
                throw ConfigurationProblem(setting: "tls.plaintext", problem: "set together with tls.certificate: choose one")
            }
            return nil
        }
        let advice = "every port speaks TLS by default: create the pair's certificates with `vcom-admin pki init` (docs/security.md), or run with --plaintext on a closed test network"
        guard let certificate = values["tls.certificate"] else {
            throw ConfigurationProblem(setting: "tls.certificate", problem: "missing (--tls-certificate); \(advice)")
        }
        let key = try require("tls.key", flag: "--tls-key")
        let authority = try require("tls.ca", flag: "--tls-ca")
        let peerName: String
        switch role {
        case .secondary: peerName = values["tls.peer-name"] ?? primaryId
        case .primary: peerName = try require("tls.peer-name", flag: "--peer-name")
        }
        let contexts: ServerTLSContexts
        do {
            contexts = try ServerTLSContexts(files: TLSFiles(certificate: certificate, privateKey: key, authority: authority))
        } catch {
            throw ConfigurationProblem(setting: "tls.certificate", problem: "\(error)")
        }
        var settings = TransportSettings(contexts: contexts, peerName: peerName)
        settings.clientsUseTLS = try flag("tls.clients", default: true)
        settings.reloadInterval = .seconds(try count("tls.reload-check-s", default: 10, range: 1...86_400))
        settings.handshakeLimit = try count("tls.handshake-limit", default: settings.handshakeLimit, range: 1...100_000)
        return settings
    }

    func flag(_ name: String, default fallback: Bool) throws -> Bool {
        guard let value = values[name] else { return fallback }
        switch value {
        case "true": return true
        case "false": return false
        default: throw ConfigurationProblem(setting: name, problem: "'\(value)' must be true or false")
        }
    }

    func validIdentifier(_ value: String, _ name: String) throws -> String {
        do {
            return try Licence.identifier(value, field: name)
        } catch {
            throw ConfigurationProblem(setting: name, problem: "'\(value)' must be 1 to 64 letters, digits, '.', '_' or '-'")
        }
    }

    /// The cluster secret: the raw bytes of a file readable by this user only (one trailing
    /// newline aside), at least 32 of them; never a command-line value (it would show in `ps`).
    func readSecret(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationProblem(setting: "server.cluster-secret-file", problem: "cannot read \(path)")
        }
        let bytes = ClusterKeys.secret(fromFile: Array(data))
        guard bytes.count >= ClusterKeys.minimumSecretBytes else {
            throw ConfigurationProblem(
                setting: "server.cluster-secret-file",
                problem: "\(path) holds \(bytes.count) bytes; at least \(ClusterKeys.minimumSecretBytes) are needed (head -c 32 /dev/urandom | base64 > FILE makes one)")
        }
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path), let mode = attributes[.posixPermissions] as? Int,
            mode & 0o077 != 0
        {
            FileHandle.standardError.write(Data("vcom-server: warning: \(path) is readable by other users (mode \(String(mode, radix: 8))); use chmod 600\n".utf8))
        }
        return bytes
    }
}
