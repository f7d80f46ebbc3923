import Foundation
import NIOCore
import Licensing
import PairModel
import TransportSecurity

#if canImport(Glibc)
import Glibc
#endif

extension ServerSettings {
    /// The runtime's settings from the values given, every file read and every value checked.
    /// Every problem is reported, each naming its setting (docs/configuration.md); a start and
    /// `vcom-server check-config` both come through here.
    public init(_ values: SettingValues) throws(ConfigurationProblems) {
        var problems = ProblemList()
        // Without a role, the checks that depend on it are left until it is given.
        let givenRole = problems.attempt { () throws(ConfigurationProblem) in try values.require("server.role") }.map { $0 == "secondary" ? ServerRole.secondary : .primary }
        let role = givenRole ?? .primary
        let id = problems.attempt { () throws(ConfigurationProblem) in try values.require("server.id") } ?? "?"
        let primaryId = role == .primary ? id : problems.attempt { () throws(ConfigurationProblem) in try values.require("server.primary-id") } ?? "?"
        let dataDirectory = problems.attempt { () throws(ConfigurationProblem) in try values.require("server.data-dir") }
        if let dataDirectory { problems.attempt { () throws(ConfigurationProblem) in try SettingFiles.checkDataDirectory(dataDirectory) } }
        let secret = problems.attempt { () throws(ConfigurationProblem) in try Self.readSecret(try values.require("server.cluster-secret-file")) }
        let vendorKey = problems.attempt { () throws(ConfigurationProblem) -> VendorPublicKey in
            let path = try values.require("server.vendor-key-file")
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigurationProblem(setting: "server.vendor-key-file", problem: "cannot read \(path)")
            }
            do {
                return try VendorPublicKey(fileText: text)
            } catch {
                throw ConfigurationProblem(setting: "server.vendor-key-file", problem: "\(path): \(error)")
            }
        }
        let client = problems.attempt { () throws(ConfigurationProblem) -> Endpoint in
            guard let client = Endpoint(parsing: try values.require("listen.client")) else {
                throw ConfigurationProblem(setting: "listen.client", problem: "not host:port")
            }
            return client
        }
        self.init(
            role: role, serverId: id, primaryId: primaryId, clientListen: client ?? Endpoint(host: "127.0.0.1", port: 0),
            dataDirectory: URL(fileURLWithPath: dataDirectory ?? "/nonexistent"), vendorKeys: vendorKey.map { [$0] } ?? [], clusterSecret: secret ?? [])
        metricsListen = values.endpoint("listen.metrics")
        adminListen = values.endpoint("listen.admin")
        advertisedClientEndpoint = values.endpoint("advertise.client")
        peerClientEndpoint = values.endpoint("peer.client-address")
        if let client, ["0.0.0.0", "::", ""].contains(client.host), advertisedClientEndpoint == nil {
            problems.add("advertise.client", "the client port listens on every address: say which one clients use (--advertise-client)")
        }
        switch givenRole {
        case nil: break
        case .primary?:
            if let peer = values.endpoint("peer.address") {
                peerAddress = peer
            } else {
                problems.add("peer.address", "missing: the primary dials its secondary there (--peer-address)")
            }
            if let licence = problems.attempt({ () throws(ConfigurationProblem) in try values.require("server.licence-file") }) {
                if FileManager.default.isReadableFile(atPath: licence) {
                    licenceFile = URL(fileURLWithPath: licence)
                } else {
                    problems.add("server.licence-file", "\(licence) is not a readable file")
                }
            }
        case .secondary?:
            if let peer = values.endpoint("listen.peer") {
                peerListen = peer
            } else {
                problems.add("listen.peer", "missing: the secondary accepts its primary's link there (--peer-listen)")
            }
        }
        timings.peerHeartbeat = values.milliseconds("timings.peer-heartbeat-ms")
        timings.peerMisses = values.integer("timings.peer-misses")
        timings.clientHeartbeat = values.milliseconds("timings.client-heartbeat-ms")
        timings.clientMisses = values.integer("timings.client-misses")
        timings.tokenLifetime = .seconds(values.integer("timings.token-lifetime-s"))
        timings.startupPeerWait = values.milliseconds("timings.startup-peer-wait-ms")
        timings.handoverTimeout = values.milliseconds("timings.handover-timeout-ms")
        timings.switchoverTimeout = values.milliseconds("timings.switchover-timeout-ms")
        timings.announcementDelayAfterClose = values.milliseconds("timings.announcement-delay-ms")
        eventLoopThreads = values.isSet("server.threads") ? values.integer("server.threads") : System.coreCount
        if givenRole != nil {
            tls = problems.attempt { () throws(ConfigurationProblem) in try Self.transport(values, role: role, primaryId: primaryId) } ?? nil
        }
        for (key, path) in Self.limitPaths { self[keyPath: path] = values.integer(key) }
        log = LogSettings(level: values.string("log.level") ?? "info", json: values.string("log.format") == "json")
        if let file = values.string("metrics.read-token-file") {
            if let problem = SettingFiles.privateFileProblem(file) {
                problems.add("metrics.read-token-file", problem)
            } else if let text = try? String(contentsOfFile: file, encoding: .utf8),
                case let token = text.trimmingCharacters(in: .whitespacesAndNewlines), token.count >= 16, token.allSatisfy({ $0.isLetter || $0.isNumber || "-_.~".contains($0) })
            {
                metricsReadToken = token
            } else {
                problems.add("metrics.read-token-file", "\(file) must hold one token of at least 16 letters, digits or -_.~ (openssl rand -hex 24)")
            }
        }
        writeConcern = WriteConcern(both: values.string("write.concern") != "local", timeout: values.milliseconds("write.timeout-ms"))
        if let list = values.string("witness.etcd") {
            let endpoints = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let ttl = Duration.seconds(values.integer("witness.lease-ttl-s"))
            let margin = values.milliseconds("witness.margin-ms")
            if endpoints.isEmpty { problems.add("witness.etcd", "no URL given") }
            for endpoint in endpoints where !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) || URL(string: endpoint)?.host == nil {
                problems.add("witness.etcd", "'\(endpoint)' is not an http:// or https:// URL with a host")
            }
            if margin * 2 >= ttl { problems.add("witness.margin-ms", "\(margin.milliseconds) ms is not less than half the lease's \(ttl.milliseconds) ms") }
            if endpoints.contains(where: { $0.hasPrefix("https://") }), values.string("witness.ca-file") == nil {
                problems.add("witness.ca-file", "missing: https:// witness URLs need the CA that signed etcd's certificate")
            }
            if (values.string("witness.cert-file") == nil) != (values.string("witness.key-file") == nil) {
                problems.add("witness.key-file", "witness.cert-file and witness.key-file go together")
            }
            for key in ["witness.ca-file", "witness.cert-file", "witness.key-file"] {
                if let path = values.string(key), !FileManager.default.isReadableFile(atPath: path) { problems.add(key, "\(path) is not a readable file") }
            }
            witness = WitnessSettings(
                endpoints: endpoints, leaseTTL: ttl, margin: margin, caFile: values.string("witness.ca-file"), certFile: values.string("witness.cert-file"),
                keyFile: values.string("witness.key-file"))
        }
        if let hook = values.string("hooks.on-state-change") {
            if let problem = SettingFiles.executableProblem(hook) {
                problems.add("hooks.on-state-change", problem)
            } else {
                stateChangeHook = StateChangeHook(program: hook, timeout: .seconds(values.integer("hooks.timeout-s")))
            }
        }
        try problems.throwIfAny()
    }

    // Key paths never change once made; Swift 6.3 does not call WritableKeyPath Sendable.
    nonisolated(unsafe) static let limitPaths: [(String, WritableKeyPath<ServerSettings, Int>)] = [
        ("limits.client-per-source", \.limits.client.perSource), ("limits.client-connections", \.limits.client.total),
        ("limits.client-first-bytes-ms", \.clientFirstBytesMs), ("limits.client-login-timeout-ms", \.clientLoginTimeoutMs),
        ("limits.admin-per-source", \.limits.admin.perSource), ("limits.admin-connections", \.limits.admin.total),
        ("limits.admin-login-timeout-ms", \.adminLoginTimeoutMs), ("limits.peer-per-source", \.limits.peer.perSource),
        ("limits.peer-connections", \.limits.peer.total), ("limits.metrics-per-source", \.limits.metrics.perSource),
        ("limits.metrics-connections", \.limits.metrics.total), ("limits.password-checks", \.limits.passwordChecks),
        ("limits.password-checks-per-source", \.limits.passwordChecksPerSource),
        ("limits.client-login-failures", \.clientLoginThrottle.failuresPerAccountAndSource),
        ("limits.client-login-failures-per-source", \.clientLoginThrottle.failuresPerSource),
        ("limits.admin-login-failures", \.adminLoginThrottle.failuresPerAccountAndSource),
        ("limits.admin-login-failures-per-source", \.adminLoginThrottle.failuresPerSource),
    ]

    /// TLS on every port unless `tls.plaintext` says otherwise (closed test networks only);
    /// the certificate files are read and checked here, so a bad file stops the start with its name.
    static func transport(_ values: SettingValues, role: ServerRole, primaryId: String) throws(ConfigurationProblem) -> TransportSettings? {
        if values.boolean("tls.plaintext") {
            if values.isSet("tls.certificate") {
                throw ConfigurationProblem(setting: "tls.plaintext", problem: "set together with tls.certificate: choose one")
            }
            return nil
        }
        let advice = "every port speaks TLS by default: create the pair's certificates with `vcom-admin pki init` (docs/security.md), or run with --plaintext on a closed test network"
        guard let certificate = values.string("tls.certificate") else {
            throw ConfigurationProblem(setting: "tls.certificate", problem: "missing (--tls-certificate); \(advice)")
        }
        let key = try values.require("tls.key")
        let authority = try values.require("tls.ca")
        if let problem = SettingFiles.privateFileProblem(key) { throw ConfigurationProblem(setting: "tls.key", problem: problem) }
        let peerName = role == .secondary ? values.string("tls.peer-name") ?? primaryId : try values.require("tls.peer-name")
        let contexts: ServerTLSContexts
        do {
            contexts = try ServerTLSContexts(files: TLSFiles(certificate: certificate, privateKey: key, authority: authority))
        } catch let problem as TLSFileProblem {
            let setting = switch problem.file {
            case .certificate: "tls.certificate"
            case .privateKey: "tls.key"
            case .authority: "tls.ca"
            }
            throw ConfigurationProblem(setting: setting, problem: problem.description)
        } catch {
            throw ConfigurationProblem(setting: "tls.certificate", problem: "\(error)")
        }
        var settings = TransportSettings(contexts: contexts, peerName: peerName)
        settings.clientsUseTLS = values.boolean("tls.clients")
        settings.reloadInterval = .seconds(values.integer("tls.reload-check-s"))
        settings.handshakeLimit = values.integer("tls.handshake-limit")
        return settings
    }

    /// The cluster secret: the raw bytes of a file no other user can read (one trailing
    /// newline aside), at least 32 of them; never a command-line value (it would show in `ps`).
    static func readSecret(_ path: String) throws(ConfigurationProblem) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationProblem(setting: "server.cluster-secret-file", problem: "cannot read \(path)")
        }
        let bytes = ClusterKeys.secret(fromFile: Array(data))
        guard bytes.count >= ClusterKeys.minimumSecretBytes else {
            throw ConfigurationProblem(
                setting: "server.cluster-secret-file",
                problem: "\(path) holds \(bytes.count) bytes; at least \(ClusterKeys.minimumSecretBytes) are needed (head -c 32 /dev/urandom | base64 > FILE makes one)")
        }
        if let problem = SettingFiles.privateFileProblem(path) { throw ConfigurationProblem(setting: "server.cluster-secret-file", problem: problem) }
        return bytes
    }
}

extension ServerSettings {
    /// The settings of a start: the file's values (if any), the flags over them, then every check.
    public static func resolve(file: String?, flags: [String]) throws(ConfigurationProblems) -> ServerSettings {
        var problems = ProblemList()
        var values = try file.map { path throws(ConfigurationProblems) in try SettingValues.load(file: path, problems: &problems) } ?? SettingValues()
        do {
            try values.apply(flags: flags)
        } catch {
            throw ConfigurationProblems([error])
        }
        do {
            let settings = try ServerSettings(values)
            try problems.throwIfAny()
            return settings
        } catch {
            // A value refused while reading is absent after it: not "missing" as well.
            let reported = Set(problems.problems.map(\.setting))
            throw ConfigurationProblems(problems.problems + error.all.filter { !reported.contains($0.setting) })
        }
    }
}
