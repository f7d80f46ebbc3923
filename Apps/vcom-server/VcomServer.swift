import ArgumentParser
import Foundation
import Logging
import ServerRuntime
import ServiceLifecycle
import PairModel
import Wire

@main
struct VcomServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcom-server",
        abstract: "A VCOM intercom server: the primary or the secondary of a failover pair.",
        subcommands: [Run.self, Bootstrap.self, HashPassword.self],
        defaultSubcommand: Run.self
    )

    static func main() async {
        FastCrash.restartIfNeeded()
        await main(nil)
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs the server (the default command).",
        discussion: """
            Settings come from the configuration file (--config, TOML) and the flags below, \
            which override it; docs/configuration.md has a complete example pair. The cluster \
            secret is read from a file, never from the command line.

            Once listening, the server prints one JSON line to standard output \
            ({"ready": true, "client": "host:port", ...}) and writes it to --ready-file if given. \
            SIGTERM or SIGINT shuts it down gracefully: a server that serves hands its clients \
            over to its peer when that needs no authorization, then exits 0.

            Exit codes: 0 stopped cleanly; 64 bad command line; 78 a missing or invalid setting \
            (the message names it); 1 a runtime failure after start-up.
            """
    )

    @Option(help: "The configuration file (TOML).") var config: String?
    @Option(help: "primary or secondary (server.role).") var role: String?
    @Option(help: "This server's id; the primary's licence is bound to it (server.id).") var id: String?
    @Option(help: "On the secondary: the id of the primary it pairs with (server.primary-id).") var primaryId: String?
    @Option(help: "Where everything durable is kept (server.data-dir).") var dataDir: String?
    @Option(help: "A file holding the pair's shared secret, at least 32 bytes (server.cluster-secret-file).") var clusterSecretFile: String?
    @Option(help: "The vendor's public key file (server.vendor-key-file).") var vendorKeyFile: String?
    @Option(help: "On the primary: its licence file (server.licence-file).") var licenceFile: String?
    @Option(help: "host:port for clients; port 0 picks a free one (listen.client).") var clientListen: String?
    @Option(help: "On the secondary: host:port for the primary's peer link (listen.peer).") var peerListen: String?
    @Option(help: "host:port for the Prometheus /metrics endpoint (listen.metrics).") var metricsListen: String?
    @Option(help: "host:port for the admin port, where vcom-admin connects (listen.admin); off when absent.") var adminListen: String?
    @Option(help: "host:port clients use to reach this server, when listening on every address (advertise.client).")
    var advertiseClient: String?
    @Option(help: "On the primary: the secondary's peer link address (peer.address).") var peerAddress: String?
    @Option(help: "Where clients reach the other server, overriding what it advertises (peer.client-address).")
    var peerClientAddress: String?
    @Option(help: "Peer heartbeat interval in ms (timings.peer-heartbeat-ms, default 100).") var peerHeartbeatMs: Int?
    @Option(help: "Client heartbeat interval in ms (timings.client-heartbeat-ms, default 1000).") var clientHeartbeatMs: Int?
    @Option(help: "Silent peer heartbeats before the link counts as lost (timings.peer-misses, default 3).") var peerMisses: Int?
    @Option(help: "Missed client heartbeats before either side gives up (timings.client-misses, default 3).") var clientMisses: Int?
    @Option(help: "Session token lifetime in seconds (timings.token-lifetime-s, default 43200).") var tokenLifetimeS: Int?
    @Option(help: "How long a starting server waits to hear its peer, in ms (timings.startup-peer-wait-ms, default 1000).")
    var startupPeerWaitMs: Int?
    @Option(help: "How long a handover waits for the peer, in ms (timings.handover-timeout-ms, default 5000).") var handoverTimeoutMs: Int?
    @Option(help: "How long an authorized switchover waits for the peer, in ms (timings.switchover-timeout-ms, default 5000).")
    var switchoverTimeoutMs: Int?
    @Option(help: "After the peer link closed, how long the watching clients wait to hear that this server serves, in ms (timings.announcement-delay-ms, default 1000).")
    var announcementDelayMs: Int?
    @Option(help: "Event loop threads (server.threads, default: the number of cores).") var threads: Int?
    @Option(help: "This server's certificate, PEM (tls.certificate); `vcom-admin pki init` makes one.") var tlsCertificate: String?
    @Option(help: "Its private key, PEM (tls.key).") var tlsKey: String?
    @Option(help: "The pair's CA certificate, PEM (tls.ca): the only issuer the peer link accepts.") var tlsCa: String?
    @Option(help: "The name the peer's certificate must carry (tls.peer-name; on the secondary, default: the primary's id).")
    var peerName: String?
    @Flag(help: "Serve the client port in clear, on a closed network (tls.clients = false); peer and admin ports keep TLS.")
    var noClientTls = false
    @Flag(help: "No TLS on any port (tls.plaintext = true): closed test networks only.") var plaintext = false
    @Option(help: "Also write the ready line to this file.") var readyFile: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level '\(logLevel)' must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let settings: ServerSettings
        do {
            settings = try resolvedConfiguration().settings()
        } catch let problem as ConfigurationProblem {
            FileHandle.standardError.write(Data("vcom-server: \(problem)\n".utf8))
            throw ExitCode(78)
        }
        var logger = Logger(label: "vcom.server") { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        logger.logLevel = level
        let runtime: ServerRuntime
        do {
            runtime = try await ServerRuntime.start(settings: settings, logger: logger)
        } catch let error as ServerRuntime.StartError {
            FileHandle.standardError.write(Data("vcom-server: \(error)\n".utf8))
            throw ExitCode(78)
        }
        if settings.tls == nil { logger.warning("TLS is off on every port (--plaintext): passwords and configuration cross the network in clear") }
        // SIGHUP: take renewed certificate files now rather than at the next periodic check.
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP)
        hangup.setEventHandler { _ = runtime.reloadCertificates() }
        hangup.resume()
        defer { hangup.cancel() }
        try announceReady(runtime)
        let group = ServiceGroup(
            services: [ServerService(runtime: runtime)], gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        try await group.run()
    }

    /// The file's values, then the flags over them.
    func resolvedConfiguration() throws -> ServerConfiguration {
        var configuration = try config.map(ServerConfiguration.load) ?? ServerConfiguration()
        let overrides: [(String, String?)] = [
            ("server.role", role), ("server.id", id), ("server.primary-id", primaryId), ("server.data-dir", dataDir),
            ("server.cluster-secret-file", clusterSecretFile), ("server.vendor-key-file", vendorKeyFile),
            ("server.licence-file", licenceFile), ("listen.client", clientListen), ("listen.peer", peerListen),
            ("listen.metrics", metricsListen), ("listen.admin", adminListen), ("advertise.client", advertiseClient), ("peer.address", peerAddress),
            ("peer.client-address", peerClientAddress), ("timings.peer-heartbeat-ms", peerHeartbeatMs.map(String.init)),
            ("timings.client-heartbeat-ms", clientHeartbeatMs.map(String.init)),
            ("timings.startup-peer-wait-ms", startupPeerWaitMs.map(String.init)), ("server.threads", threads.map(String.init)),
            ("timings.peer-misses", peerMisses.map(String.init)), ("timings.client-misses", clientMisses.map(String.init)),
            ("timings.token-lifetime-s", tokenLifetimeS.map(String.init)),
            ("timings.handover-timeout-ms", handoverTimeoutMs.map(String.init)),
            ("timings.switchover-timeout-ms", switchoverTimeoutMs.map(String.init)),
            ("timings.announcement-delay-ms", announcementDelayMs.map(String.init)),
            ("tls.certificate", tlsCertificate), ("tls.key", tlsKey), ("tls.ca", tlsCa), ("tls.peer-name", peerName),
            ("tls.clients", noClientTls ? "false" : nil), ("tls.plaintext", plaintext ? "true" : nil),
        ]
        for (name, value) in overrides {
            if let value { configuration.values[name] = value }
        }
        return configuration
    }

    func announceReady(_ runtime: ServerRuntime) throws {
        var ready: [String: Any] = [
            "ready": true, "role": runtime.settings.role.description, "id": runtime.settings.serverId, "pid": Int(getpid()),
            "client": runtime.clientAddress.description,
        ]
        if let peer = runtime.peerAddress { ready["peer"] = peer.description }
        if let metrics = runtime.metricsAddress { ready["metrics"] = metrics.description }
        if let admin = runtime.adminAddress { ready["admin"] = admin.description }
        ready["tls"] = runtime.settings.tls.map { $0.clientsUseTLS ? "on" : "peer-and-admin" } ?? "off"
        let data = try JSONSerialization.data(withJSONObject: ready, options: [.sortedKeys, .withoutEscapingSlashes])
        let line = String(decoding: data, as: UTF8.self)
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
        if let readyFile {
            let temporary = readyFile + ".tmp"
            try Data((line + "\n").utf8).write(to: URL(fileURLWithPath: temporary))
            _ = rename(temporary, readyFile)
        }
    }
}

/// The runtime as a service-lifecycle service: it runs until a graceful shutdown is asked for.
struct ServerService: Service {
    let runtime: ServerRuntime

    func run() async throws {
        try? await gracefulShutdown()
        await runtime.shutdown()
    }
}
