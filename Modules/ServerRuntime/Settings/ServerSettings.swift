import NIOCore
import ActivationPolicy
import Foundation
import NIOSSL
import HealthMonitor
import Licensing
import PairNode
import PairModel
import Wire

/// Everything one server needs to run, already validated (the app reads it from the
/// configuration file and flags: docs/configuration.md).
public struct ServerSettings: Sendable {
    public var role: ServerRole
    /// This server's id; on the primary, the id its licence is bound to.
    public var serverId: String
    /// The primary of the pair (the licence binding). On the primary, `serverId`.
    public var primaryId: String
    /// Where clients connect (port 0: any free port, read back from `ServerRuntime`).
    public var clientListen: Endpoint
    /// Where the secondary accepts the primary's peer link.
    public var peerListen: Endpoint?
    /// Where the primary dials its secondary.
    public var peerAddress: Endpoint?
    /// Where `/metrics` is served over HTTP (nil: not served).
    public var metricsListen: Endpoint?
    /// The admin port (vcom-admin); off when nil.
    public var adminListen: Endpoint?
    /// What clients are told to use to reach this server (default: the client listen
    /// address, with the bound port). Sent to the peer, which gives it to its clients.
    public var advertisedClientEndpoint: Endpoint?
    /// What this server tells its clients about the other server, overriding what the peer
    /// advertises.
    public var peerClientEndpoint: Endpoint?
    public var dataDirectory: URL
    /// The primary's licence file.
    public var licenceFile: URL?
    public var vendorKeys: [VendorPublicKey]
    /// The pair's shared secret; keys for peer authentication and session tokens are derived
    /// from it (HKDF), it never crosses the wire.
    public var clusterSecret: [UInt8]
    public var timings: Timings
    public var eventLoopThreads: Int
    /// TLS on the ports (nil: everything in clear, which the app allows only when asked to).
    public var tls: TransportSettings?
    /// What strangers may hold of each port, and the password-check queue (docs/security.md).
    public var limits = ConnectionLimits()
    /// Failed password checks on the client port, per operator and source, and per source.
    public var clientLoginThrottle = LoginThrottle.Rules(failuresPerAccountAndSource: 5, failuresPerSource: 30)
    /// The same on the admin port.
    public var adminLoginThrottle = LoginThrottle.Rules(failuresPerAccountAndSource: 5, failuresPerSource: 20)
    /// How the app logs (it makes the logger before the runtime starts).
    public var log = LogSettings()
    /// The program run on every change of serving state (off when nil).
    public var stateChangeHook: StateChangeHook?
    /// `metrics.read-token-file`'s token: the metrics port's pages and `/metrics` need it.
    public var metricsReadToken: String?
    /// When a configuration write is acknowledged (docs/config-store.md, "Write concern").
    public var writeConcern = WriteConcern()
    /// The etcd witness (nil: none, the seed's rules exactly).
    public var witness: WitnessSettings?

    public struct WitnessSettings: Sendable, Equatable {
        public var endpoints: [String]
        public var leaseTTL: Duration
        public var margin: Duration
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?

        /// TLS for `https://` endpoints (nil: none given, plain http).
        func tlsConfiguration() throws -> TLSConfiguration? {
            guard let caFile else { return nil }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            if let certFile, let keyFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            }
            return tls
        }
    }

    public struct WriteConcern: Sendable, Equatable {
        /// The peer's confirmation is waited for (`both`), or the server's own disk is enough.
        public var both = true
        /// How long a write waits for the peer before it is acknowledged as local only.
        public var timeout: Duration = .seconds(1)
    }

    public struct LogSettings: Sendable, Equatable {
        /// A swift-log level's name (the table allows only those).
        public var level = "info"
        public var json = false
    }

    /// `hooks.on-state-change`: what runs and how long it may take.
    public struct StateChangeHook: Sendable, Equatable {
        public var program: String
        public var timeout: Duration

        public init(program: String, timeout: Duration = .seconds(30)) {
            self.program = program
            self.timeout = timeout
        }
    }

    /// The deadlines of `limits` in whole milliseconds, as the configuration file gives them.
    public var clientFirstBytesMs: Int {
        get { Int(limits.client.firstBytes?.milliseconds ?? 0) }
        set { limits.client.firstBytes = .milliseconds(newValue) }
    }
    public var clientLoginTimeoutMs: Int {
        get { Int(limits.client.authentication.milliseconds) }
        set { limits.client.authentication = .milliseconds(newValue) }
    }
    public var adminLoginTimeoutMs: Int {
        get { Int(limits.admin.authentication.milliseconds) }
        set { limits.admin.authentication = .milliseconds(newValue) }
    }

    public struct Timings: Sendable, Equatable {
        public var peerHeartbeat: Duration = .milliseconds(100)
        public var peerMisses = 3
        public var clientHeartbeat: Duration = .seconds(1)
        public var clientMisses = 3
        public var tokenLifetime: Duration = .seconds(12 * 3600)
        public var startupPeerWait: Duration = .seconds(1)
        public var handoverTimeout: Duration = .seconds(5)
        public var switchoverTimeout: Duration = .seconds(5)
        /// After the peer link *closed*, how long the clients watching this server wait to hear
        /// that it serves (their own connections closed too; a silent link announces at once).
        /// About the time 10,000 clients of a killed primary take to come over by themselves on
        /// the benchmark's two shared cores (docs/failover-policy.md).
        public var announcementDelayAfterClose: Duration = .seconds(1)
        /// The client census window: at least the clients' own timeout plus one heartbeat.
        public var censusWindow: Duration { clientHeartbeat * (clientMisses + 1) }

        public init() {}
    }

    public init(
        role: ServerRole, serverId: String, primaryId: String, clientListen: Endpoint, peerListen: Endpoint? = nil,
        peerAddress: Endpoint? = nil, metricsListen: Endpoint? = nil, dataDirectory: URL, licenceFile: URL? = nil,
        vendorKeys: [VendorPublicKey], clusterSecret: [UInt8], timings: Timings = Timings(),
        eventLoopThreads: Int = System.coreCount
    ) {
        self.role = role
        self.serverId = serverId
        self.primaryId = primaryId
        self.clientListen = clientListen
        self.peerListen = peerListen
        self.peerAddress = peerAddress
        self.metricsListen = metricsListen
        self.dataDirectory = dataDirectory
        self.licenceFile = licenceFile
        self.vendorKeys = vendorKeys
        self.clusterSecret = clusterSecret
        self.timings = timings
        self.eventLoopThreads = max(1, eventLoopThreads)
    }

    /// The node's timings, from these settings.
    var nodeConfiguration: PairNode.Configuration {
        PairNode.Configuration(
            policy: policyConfiguration, link: linkConfiguration, census: censusConfiguration,
            announcementDelayAfterClose: timings.announcementDelayAfterClose)
    }

    var policyConfiguration: ActivationPolicy.Configuration {
        var configuration = ActivationPolicy.Configuration()
        configuration.startupPeerWait = timings.startupPeerWait
        configuration.handoverTimeout = timings.handoverTimeout
        configuration.switchoverTimeout = timings.switchoverTimeout
        configuration.clientLossLead = timings.peerHeartbeat * timings.peerMisses
        configuration.deactivationSettle = timings.peerHeartbeat * 2
        configuration.witness = witness.map { WitnessTiming(leaseTTL: $0.leaseTTL, driftMargin: $0.margin) }
        configuration.lossCorrelationWindow = timings.censusWindow + .seconds(1)
        return configuration
    }

    var linkConfiguration: PeerLinkMonitor.Configuration {
        PeerLinkMonitor.Configuration(heartbeatInterval: timings.peerHeartbeat, missesBeforeLost: timings.peerMisses)
    }

    var censusConfiguration: ClientCensus.Configuration {
        ClientCensus.Configuration(window: timings.censusWindow)
    }
}
