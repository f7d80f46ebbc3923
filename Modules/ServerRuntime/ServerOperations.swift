import ActivationPolicy
import AdminProtocol
import ConfigModel
import ConfigStore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import PairModel
import PairNode

/// What the admin port asks of the server: the control loop's answers and commands, the
/// sessions, the journal. `ServerOperations` is the runtime's; a test gives the admin port
/// another.
protocol AdminOperations: Sendable {
    func status() async -> RuntimeStatus?
    func report() async -> ServerReport?
    func incidents() async throws -> [StoredIncident]
    func acknowledge(_ incident: String) async throws
    func switchover(acknowledging incident: String?) async -> AdminOutcome
    func switchoverRefusal(acknowledging incident: String?) async -> String?
    func forceActivation(reason: String) async -> AdminOutcome
    func installLicence(_ text: String) async -> AdminOutcome
    func write(_ changes: [ConfigChange]) async throws -> [ChangeRecord]
    /// An administrator's write, answered once the write concern decides.
    func writeAcknowledged(_ changes: [ConfigChange]) async throws -> WriteReceipt
    /// The sessions logged in here, and one of them.
    var sessions: [ClientSessionRef] { get }
    func session(_ id: UInt64) -> ClientSessionRef?
}

/// The server's control-loop API, in one place: made before any port is bound (the admin port
/// needs it), used by the admin port and by `ServerRuntime`'s public methods. Every call goes
/// to the control loop and answers at once once the server stopped.
final class ServerOperations: AdminOperations {
    let controller: NIOLoopBound<Controller>
    let loop: EventLoop
    let clients: ClientService
    let store: any ConfigurationStoring
    let settings: ServerSettings
    /// Set once stopped: the loops are gone, and every call answers at once.
    private let stopped = NIOLockedValueBox(false)

    init(controller: NIOLoopBound<Controller>, loop: EventLoop, clients: ClientService, store: any ConfigurationStoring, settings: ServerSettings) {
        self.controller = controller
        self.loop = loop
        self.clients = clients
        self.store = store
        self.settings = settings
    }

    /// True for the first caller only.
    func markStopped() -> Bool {
        stopped.withLockedValue { value in
            defer { value = true }
            return !value
        }
    }

    var isStopped: Bool { stopped.withLockedValue { $0 } }

    /// This server's state (nil once it was stopped), every due deadline acted on first.
    func status() async -> RuntimeStatus? {
        guard !isStopped else { return nil }
        return try? await loop.submit {
            self.controller.value.catchUp()
            return self.controller.value.status()
        }.get()
    }

    /// Every due deadline acted on, before /metrics or a health path is read.
    func catchUp() async {
        guard !isStopped else { return }
        try? await loop.submit { self.controller.value.catchUp() }.get()
    }

    /// Moves service to the peer (on the active server); a switch back after a failover must
    /// name the incident this server holds.
    func switchover(acknowledging incident: String?) async -> AdminOutcome {
        guard !isStopped else { return .refused("the server is stopped") }
        return (try? await loop.submit { self.controller.value.admin(.switchover(acknowledging: incident)) }.get()) ?? .refused("shutting down")
    }

    /// Why a switchover would be refused now, by the node's own checks (nil: it would start).
    func switchoverRefusal(acknowledging incident: String?) async -> String? {
        guard !isStopped else { return "the server is stopped" }
        do {
            return try await loop.submit { self.controller.value.node.switchoverRefusal(acknowledging: incident) }.get()
        } catch {
            return "shutting down"
        }
    }

    func forceActivation(reason: String) async -> AdminOutcome {
        guard !isStopped else { return .refused("the server is stopped") }
        return (try? await loop.submit { self.controller.value.admin(.forceActivation(reason: reason)) }.get()) ?? .refused("shutting down")
    }

    func installLicence(_ text: String) async -> AdminOutcome {
        guard !isStopped else { return .refused("the server is stopped") }
        return (try? await loop.submit { self.controller.value.installLicence(text) }.get()) ?? .refused("shutting down")
    }

    /// Writes configuration changes on the active server and streams them to the peer.
    func write(_ changes: [ConfigChange]) async throws -> [ChangeRecord] {
        try await loop.flatSubmit { self.controller.value.write(changes) }.get()
    }

    func writeAcknowledged(_ changes: [ConfigChange]) async throws -> WriteReceipt {
        let both = settings.writeConcern.both
        let (records, durability) = try await loop.flatSubmit { self.controller.value.writeAcknowledged(changes) }.get()
        let met = !both || durability == .replicated
        return WriteReceipt(changes: UInt32(clamping: records.count), revision: records.last?.revision ?? 0, durability: durability, concernMet: met)
    }

    /// What `vcom-admin status` shows of this server.
    func report() async -> ServerReport? {
        guard !isStopped, let status = await status() else { return nil }
        let incidents = (try? await incidents()) ?? []
        let divergence = ((try? store.journal()) ?? []).filter { $0.status == .open }.count
        var report = ServerReport(
            serverId: status.serverId, role: status.role, state: status.state, epoch: status.epoch, peerLinkUp: status.peerLinkUp,
            peerState: status.peer?.state, peerCanActivate: status.peer?.canActivate, clientsLoggedIn: UInt32(clamping: status.clientsLoggedIn),
            clientsWatching: UInt32(clamping: clients.watcherCount), licenceId: status.licenceId,
            licenceExpiresMs: status.licenceExpires.map { Int64($0.timeIntervalSince1970 * 1000) }, configRevision: status.configRevision,
            replicationLag: status.replicationLag, synced: status.synced, canActivate: status.canActivate,
            activationIncident: status.activationIncident, openIncidents: UInt32(clamping: incidents.filter { $0.acknowledgedAt == nil }.count),
            openDivergence: UInt32(clamping: divergence),
            certificateExpiresMs: settings.tls.map { Int64($0.contexts.current.certificate.notValidAfter.timeIntervalSince1970 * 1000) },
            transport: settings.tls.map { $0.clientsUseTLS ? "tls" : "tls, clients in clear" } ?? "plaintext")
        report.warnings = status.warnings
        report.maintenance = status.maintenance
        report.witness = status.witness
        return report
    }

    func acknowledge(_ incident: String) async throws {
        try await loop.submit { try self.controller.value.incidents.acknowledge(incident, at: self.controller.value.clock.wallNow) }.get()
    }

    func incidents() async throws -> [StoredIncident] {
        try await loop.submit { try self.controller.value.incidents.incidents() }.get()
    }

    var sessions: [ClientSessionRef] { clients.registry.all }
    func session(_ id: UInt64) -> ClientSessionRef? { clients.registry.session(id) }

    /// The Prometheus exposition of this server's figures.
    func metricsText() async -> String {
        (try? await loop.submit { self.controller.value.metrics.exposition() }.get()) ?? ""
    }

    /// Waits until this server is in `state` (bounded by `timeout`); true when it got there.
    func waitForState(_ state: ServerState, timeout: Duration) async -> Bool {
        guard !isStopped else { return false }
        let loop = self.loop
        let reached = loop.flatSubmit { self.controller.value.waitForState(state).map { true } }
        let expired = loop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { false }
        return (try? await reached.or(expired.futureResult).get()) ?? false
    }
}
