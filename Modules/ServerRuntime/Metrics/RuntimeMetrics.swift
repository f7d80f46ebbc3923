import ActivationPolicy
import CoreMetrics
import Prometheus
import PairModel
import Wire

/// The server's figures, through swift-metrics into a Prometheus registry served at
/// `/metrics`. Each runtime has its own registry (tests run several in one process).
final class RuntimeMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let epoch: CoreMetrics.Gauge
    private let stateGauges: [ServerState: CoreMetrics.Gauge]
    private let peerLinkUp: CoreMetrics.Gauge
    private let clientsLoggedIn: CoreMetrics.Gauge
    private let clientsWatching: CoreMetrics.Gauge
    private let passwordLogins: CoreMetrics.Counter
    private let tokenLogins: CoreMetrics.Counter
    private let replicationLagRevisions: CoreMetrics.Gauge
    private let replicationLagMs: CoreMetrics.Gauge
    private let failovers: CoreMetrics.Counter
    private let openIncidents: CoreMetrics.Gauge
    private let configRevision: CoreMetrics.Gauge

    init(role: ServerRole) {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
        let roleLabel = [("role", role.description)]
        CoreMetrics.Gauge(label: "vcom_server_info", dimensions: roleLabel, factory: factory).record(1)
        epoch = CoreMetrics.Gauge(label: "vcom_epoch", factory: factory)
        var gauges: [ServerState: CoreMetrics.Gauge] = [:]
        for state in ServerState.allCases {
            gauges[state] = CoreMetrics.Gauge(label: "vcom_state", dimensions: [("state", Self.name(state))], factory: factory)
        }
        stateGauges = gauges
        peerLinkUp = CoreMetrics.Gauge(label: "vcom_peer_link_up", factory: factory)
        clientsLoggedIn = CoreMetrics.Gauge(label: "vcom_clients_logged_in", factory: factory)
        clientsWatching = CoreMetrics.Gauge(label: "vcom_clients_watching", factory: factory)
        passwordLogins = CoreMetrics.Counter(label: "vcom_logins_total", dimensions: [("credential", "password")], factory: factory)
        tokenLogins = CoreMetrics.Counter(label: "vcom_logins_total", dimensions: [("credential", "token")], factory: factory)
        replicationLagRevisions = CoreMetrics.Gauge(label: "vcom_replication_lag_revisions", factory: factory)
        replicationLagMs = CoreMetrics.Gauge(label: "vcom_replication_lag_ms", factory: factory)
        failovers = CoreMetrics.Counter(label: "vcom_failovers_total", factory: factory)
        openIncidents = CoreMetrics.Gauge(label: "vcom_open_incidents", factory: factory)
        configRevision = CoreMetrics.Gauge(label: "vcom_config_revision", factory: factory)
    }

    static func name(_ state: ServerState) -> String {
        switch state {
        case .standby: "standby"
        case .active: "active"
        case .awaitingAuthorization: "awaiting_authorization"
        }
    }

    func state(_ state: ServerState, epoch value: UInt64) {
        for (each, gauge) in stateGauges { gauge.record(each == state ? 1 : 0) }
        epoch.record(Double(value))
    }

    func peerLink(up: Bool) { peerLinkUp.record(up ? 1 : 0) }
    func clients(_ count: Int) { clientsLoggedIn.record(count) }
    /// Clients of the other server keeping a watch connection here.
    func watchers(_ count: Int) { clientsWatching.record(count) }
    func loginAccepted(withToken: Bool) { (withToken ? tokenLogins : passwordLogins).increment() }

    func loginRefused(_ reason: RefusalReason) {
        CoreMetrics.Counter(label: "vcom_login_refusals_total", dimensions: [("reason", reason.description.replacingOccurrences(of: " ", with: "_"))], factory: factory)
            .increment()
    }

    /// The peer's first frame after a connect, when it neared the loss timeout.
    func peerRoundTrip(_ value: Duration) {
        CoreMetrics.Gauge(label: "vcom_peer_link_round_trip_ms", factory: factory).record(Double(value.milliseconds))
    }

    /// A connection refused before it authenticated (`port`: client, admin, peer, metrics).
    func connectionRefused(port: String, reason: String) {
        CoreMetrics.Counter(label: "vcom_connections_refused_total", dimensions: [("port", port), ("reason", reason)], factory: factory).increment()
    }

    func replicationLag(revisions: UInt64?, milliseconds: UInt64) {
        replicationLagRevisions.record(Double(revisions ?? 0))
        replicationLagMs.record(Double(milliseconds))
    }

    func failover() { failovers.increment() }
    func incidents(open: Int) { openIncidents.record(open) }
    func revision(_ value: UInt64) { configRevision.record(Double(value)) }

    /// The Prometheus text exposition.
    func exposition() -> String { registry.emitToString() }
}
