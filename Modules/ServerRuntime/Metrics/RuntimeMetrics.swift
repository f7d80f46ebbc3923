import ConfigModel
import Foundation
import Prometheus
import PairModel
import TransportSecurity

#if canImport(Glibc)
import Glibc
#endif

/// The server's figures in a Prometheus registry served at `/metrics`, every family with its
/// HELP and TYPE lines, every counter present at 0 from the start (a rate over a series that
/// appears only at its first event misses that event). Each runtime has its own registry
/// (tests run several in one process). docs/server.md, "Metrics", lists them.
final class RuntimeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let epoch: Gauge
    private let stateGauges: [ServerState: Gauge]
    private let peerLinkUp: Gauge
    private let clientsLoggedIn: Gauge
    private let clientsWatching: Gauge
    private let witnessHolding: Gauge
    private let witnessReachable: Gauge
    private let witnessLeaseLeft: Gauge
    private let passwordLogins: Counter
    private let tokenLogins: Counter
    private let replicationLagRevisions: Gauge
    private let replicationLag: Gauge
    private let failovers: Counter
    private let lastFailover: Gauge
    private let openIncidents: Gauge
    private let configRevision: Gauge
    private let licenceExpiry: Gauge
    private let certificateExpiry: Gauge
    private let maintenanceGauge: Gauge
    private let maintenanceEnd: Gauge
    private let roundTrip: Gauge
    private let processStart: Gauge
    private let residentMemory: Gauge
    private let openDescriptors: Gauge
    private let maximumDescriptors: Gauge

    static let help: [String: String] = [
        "vcom_build_info": "1, labelled with the server's version and the commit it was built from.",
        "vcom_server_info": "1, labelled with this server's configured role and id.",
        "vcom_state": "1 for this server's current serving state, 0 for the others.",
        "vcom_epoch": "The serving epoch this server holds.",
        "vcom_peer_link_up": "1 while the peer link is authenticated and heard.",
        "vcom_peer_link_round_trip_seconds": "The peer link's first-frame round trip, when it came near the loss timeout (0: never).",
        "vcom_clients_logged_in": "Client sessions logged in on this server.",
        "vcom_clients_watching": "Clients of the other server keeping a watch connection here.",
        "vcom_witness_holding": "1 while this server holds the witness's key in etcd (0 without a witness configured).",
        "vcom_witness_reachable": "1 when the witness's last answer came (0: refused or no answer, or no witness).",
        "vcom_witness_lease_seconds_left": "Time left on this server's witness lease by its own clock (0: none held).",
        "vcom_logins_total": "Accepted logins, by credential (password or session token).",
        "vcom_login_refusals_total": "Refused logins, by reason.",
        "vcom_connections_refused_total": "Connections refused before they authenticated, by port and reason.",
        "vcom_replication_lag_revisions": "Configuration revisions the follower is behind the leader (on both ends; 0 when not replicating).",
        "vcom_replication_lag_seconds": "How long the oldest change the follower has not confirmed has waited, on the leader.",
        "vcom_failovers_total": "Activations caused by an incident since this process started.",
        "vcom_last_failover_timestamp_seconds": "When this server last took over service because of an incident (Unix time; 0: never).",
        "vcom_open_incidents": "Incidents not yet acknowledged.",
        "vcom_config_revision": "The configuration revision this server holds.",
        "vcom_licence_expiry_timestamp_seconds": "When the licence this server holds expires (Unix time; 0: no licence).",
        "vcom_certificate_expiry_timestamp_seconds": "When this server's TLS certificate expires (Unix time; 0: TLS off).",
        "vcom_maintenance": "1 while maintenance mode pauses every automatic failover decision of the pair.",
        "vcom_maintenance_end_timestamp_seconds": "When maintenance mode ends by itself (Unix time; 0: off, or until turned off).",
        "vcom_state_change_hook_runs_total": "Runs of hooks.on-state-change, by outcome.",
        "process_start_time_seconds": "Start time of the process since the Unix epoch, in seconds.",
        "process_resident_memory_bytes": "Resident memory size in bytes.",
        "process_open_fds": "Number of open file descriptors.",
        "process_max_fds": "Maximum number of open file descriptors.",
    ]

    /// Read at each scrape: a reloaded certificate shows at once.
    private let tls: ServerTLSContexts?

    init(role: ServerRole, serverId: String = "", tls: ServerTLSContexts? = nil) {
        self.tls = tls
        let registry = self.registry
        func gauge(_ name: String, _ labels: [(String, String)] = []) -> Gauge {
            registry.makeGauge(name: name, labels: labels, help: Self.help[name]!)
        }
        func counter(_ name: String, _ labels: [(String, String)] = []) -> Counter {
            registry.makeCounter(name: name, labels: labels, help: Self.help[name]!)
        }
        gauge("vcom_build_info", [("version", BuildInfo.version), ("commit", BuildInfo.commit)]).set(1.0)
        gauge("vcom_server_info", [("role", role.description), ("id", serverId)]).set(1.0)
        epoch = gauge("vcom_epoch")
        var states: [ServerState: Gauge] = [:]
        for state in ServerState.allCases { states[state] = gauge("vcom_state", [("state", state.hookName)]) }
        stateGauges = states
        peerLinkUp = gauge("vcom_peer_link_up")
        roundTrip = gauge("vcom_peer_link_round_trip_seconds")
        clientsLoggedIn = gauge("vcom_clients_logged_in")
        clientsWatching = gauge("vcom_clients_watching")
        witnessHolding = gauge("vcom_witness_holding")
        witnessReachable = gauge("vcom_witness_reachable")
        witnessLeaseLeft = gauge("vcom_witness_lease_seconds_left")
        passwordLogins = counter("vcom_logins_total", [("credential", "password")])
        tokenLogins = counter("vcom_logins_total", [("credential", "token")])
        for code in UInt8(1)...11 { _ = counter("vcom_login_refusals_total", [("reason", Self.label(RefusalReason(rawValue: code)))]) }
        for port in ["client", "admin", "peer", "metrics"] {
            for reason in ["over_cap", "deadline"] { _ = counter("vcom_connections_refused_total", [("port", port), ("reason", reason)]) }
        }
        replicationLagRevisions = gauge("vcom_replication_lag_revisions")
        replicationLag = gauge("vcom_replication_lag_seconds")
        failovers = counter("vcom_failovers_total")
        lastFailover = gauge("vcom_last_failover_timestamp_seconds")
        openIncidents = gauge("vcom_open_incidents")
        configRevision = gauge("vcom_config_revision")
        licenceExpiry = gauge("vcom_licence_expiry_timestamp_seconds")
        certificateExpiry = gauge("vcom_certificate_expiry_timestamp_seconds")
        maintenanceGauge = gauge("vcom_maintenance")
        maintenanceEnd = gauge("vcom_maintenance_end_timestamp_seconds")
        for outcome in ["succeeded", "failed", "timed_out", "not_started"] { _ = counter("vcom_state_change_hook_runs_total", [("outcome", outcome)]) }
        processStart = gauge("process_start_time_seconds")
        residentMemory = gauge("process_resident_memory_bytes")
        openDescriptors = gauge("process_open_fds")
        maximumDescriptors = gauge("process_max_fds")
        processStart.set(ProcessFigures.startTime())
    }

    /// A refusal reason as a label value: `not_the_active_server`, `server_busy_retry`.
    static func label(_ reason: RefusalReason) -> String {
        let words = reason.description.lowercased().split { !($0.isLetter || $0.isNumber) }
        return words.joined(separator: "_")
    }

    func state(_ state: ServerState, epoch value: UInt64) {
        for (each, gauge) in stateGauges { gauge.set(each == state ? 1.0 : 0.0) }
        epoch.set(Double(value))
    }

    func peerLink(up: Bool) { peerLinkUp.set(up ? 1.0 : 0.0) }
    func clients(_ count: Int) { clientsLoggedIn.set(Double(count)) }
    /// Clients of the other server keeping a watch connection here.
    func watchers(_ count: Int) { clientsWatching.set(Double(count)) }
    func witness(holding: Bool, reachable: Bool, leaseLeft: Duration?) {
        witnessHolding.set(Double(holding ? 1 : 0))
        witnessReachable.set(Double(reachable ? 1 : 0))
        witnessLeaseLeft.set(Double(leaseLeft?.milliseconds ?? 0) / 1000)
    }
    func loginAccepted(withToken: Bool) { (withToken ? tokenLogins : passwordLogins).increment() }

    func loginRefused(_ reason: RefusalReason) {
        registry.makeCounter(name: "vcom_login_refusals_total", labels: [("reason", Self.label(reason))], help: Self.help["vcom_login_refusals_total"]!)
            .increment()
    }

    /// The peer's first frame after a connect, when it neared the loss timeout.
    func peerRoundTrip(_ value: Duration) { roundTrip.set(Double(value.milliseconds) / 1000) }

    /// A connection refused before it authenticated (`port`: client, admin, peer, metrics).
    func connectionRefused(port: String, reason: String) {
        registry.makeCounter(
            name: "vcom_connections_refused_total", labels: [("port", port), ("reason", reason)], help: Self.help["vcom_connections_refused_total"]!
        ).increment()
    }

    func replicationLag(revisions: UInt64?, milliseconds: UInt64) {
        replicationLagRevisions.set(Double(revisions ?? 0))
        replicationLag.set(Double(milliseconds) / 1000)
    }

    func failover(at wall: Date) {
        failovers.increment()
        lastFailover.set(wall.timeIntervalSince1970)
    }

    /// The latest failover known at start (from the incidents on disk).
    func lastFailover(at wall: Date) { lastFailover.set(wall.timeIntervalSince1970) }
    func incidents(open: Int) { openIncidents.set(Double(open)) }
    func revision(_ value: UInt64) { configRevision.set(Double(value)) }
    func licenceExpires(_ date: Date?) { licenceExpiry.set(date?.timeIntervalSince1970 ?? 0) }

    func maintenance(_ window: MaintenanceWindow?) {
        maintenanceGauge.set(window == nil ? 0.0 : 1.0)
        maintenanceEnd.set(window?.endsAt.map { Double($0) / 1000 } ?? 0)
    }

    func hookRan(_ outcome: StateChangeHooks.Outcome) {
        let label = switch outcome {
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .timedOut: "timed_out"
        case .couldNotStart: "not_started"
        }
        registry.makeCounter(name: "vcom_state_change_hook_runs_total", labels: [("outcome", label)], help: Self.help["vcom_state_change_hook_runs_total"]!)
            .increment()
    }

    /// The Prometheus text exposition; the process's figures are read now.
    func exposition() -> String {
        certificateExpiry.set(tls?.current.certificate.notValidAfter.timeIntervalSince1970 ?? 0)
        residentMemory.set(ProcessFigures.residentBytes())
        openDescriptors.set(ProcessFigures.openDescriptors())
        maximumDescriptors.set(ProcessFigures.maximumDescriptors())
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// The process figures Prometheus's client libraries export under the same names.
enum ProcessFigures {
    static func startTime() -> Double {
        // /proc/self/stat's 22nd field: start time in clock ticks after boot.
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let afterName = stat.range(of: ")", options: .backwards)
        else { return Date().timeIntervalSince1970 }
        let fields = stat[afterName.upperBound...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]), let boot = bootTime() else { return Date().timeIntervalSince1970 }
        return boot + ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("btime ") }.flatMap { Double($0.dropFirst(6)) }
    }

    static func residentBytes() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func openDescriptors() -> Double {
        Double((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0)
    }

    static func maximumDescriptors() -> Double {
        var limit = rlimit()
        return getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Double(limit.rlim_cur) : 0
    }
}
