import Foundation
import NIOCore
import Licensing
import PairModel
import TransportSecurity

#if canImport(Glibc)
import Glibc
#endif

extension ServerSettings {
    /// The runtime's settings from the values given, every file read and every value checked:
    /// a problem names its setting (docs/configuration.md).
    public init(_ values: SettingValues) throws(ConfigurationProblem) {
        let role: ServerRole = try values.require("server.role") == "primary" ? .primary : .secondary
        let id = try values.require("server.id")
        let primaryId = role == .primary ? id : try values.require("server.primary-id")
        let dataDirectory = URL(fileURLWithPath: try values.require("server.data-dir"))
        let secret = try Self.readSecret(try values.require("server.cluster-secret-file"))
        let vendorKeyPath = try values.require("server.vendor-key-file")
        let vendorKey: VendorPublicKey
        do {
            vendorKey = try VendorPublicKey(fileText: try String(contentsOfFile: vendorKeyPath, encoding: .utf8))
        } catch {
            throw ConfigurationProblem(setting: "server.vendor-key-file", problem: "\(vendorKeyPath): \(error)")
        }
        guard let client = Endpoint(parsing: try values.require("listen.client")) else {
            throw ConfigurationProblem(setting: "listen.client", problem: "not host:port")
        }
        self.init(
            role: role, serverId: id, primaryId: primaryId, clientListen: client, dataDirectory: dataDirectory, vendorKeys: [vendorKey],
            clusterSecret: secret)
        metricsListen = values.endpoint("listen.metrics")
        adminListen = values.endpoint("listen.admin")
        advertisedClientEndpoint = values.endpoint("advertise.client")
        peerClientEndpoint = values.endpoint("peer.client-address")
        if ["0.0.0.0", "::", ""].contains(client.host), advertisedClientEndpoint == nil {
            throw ConfigurationProblem(
                setting: "advertise.client", problem: "the client port listens on every address: say which one clients use (--advertise-client)")
        }
        switch role {
        case .primary:
            guard let peer = values.endpoint("peer.address") else {
                throw ConfigurationProblem(setting: "peer.address", problem: "missing: the primary dials its secondary there (--peer-address)")
            }
            peerAddress = peer
            let licence = try values.require("server.licence-file")
            guard FileManager.default.isReadableFile(atPath: licence) else {
                throw ConfigurationProblem(setting: "server.licence-file", problem: "\(licence) is not a readable file")
            }
            licenceFile = URL(fileURLWithPath: licence)
        case .secondary:
            guard let peer = values.endpoint("listen.peer") else {
                throw ConfigurationProblem(setting: "listen.peer", problem: "missing: the secondary accepts its primary's link there (--peer-listen)")
            }
            peerListen = peer
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
        tls = try Self.transport(values, role: role, primaryId: primaryId)
        for (key, path) in Self.limitPaths { self[keyPath: path] = values.integer(key) }
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
        let peerName = role == .secondary ? values.string("tls.peer-name") ?? primaryId : try values.require("tls.peer-name")
        let contexts: ServerTLSContexts
        do {
            contexts = try ServerTLSContexts(files: TLSFiles(certificate: certificate, privateKey: key, authority: authority))
        } catch {
            throw ConfigurationProblem(setting: "tls.certificate", problem: "\(error)")
        }
        var settings = TransportSettings(contexts: contexts, peerName: peerName)
        settings.clientsUseTLS = values.boolean("tls.clients")
        settings.reloadInterval = .seconds(values.integer("tls.reload-check-s"))
        settings.handshakeLimit = values.integer("tls.handshake-limit")
        return settings
    }

    /// The cluster secret: the raw bytes of a file readable by this user only (one trailing
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
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path), let mode = attributes[.posixPermissions] as? Int,
            mode & 0o077 != 0
        {
            FileHandle.standardError.write(Data("vcom-server: warning: \(path) is readable by other users (mode \(String(mode, radix: 8))); use chmod 600\n".utf8))
        }
        return bytes
    }
}
