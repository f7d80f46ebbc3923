import AdminProtocol
import ConfigModel
import ConfigStore
import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PairModel
import Wire

/// The admin port's logic shared by its sessions: who may log in (SCRAM against the verifiers
/// replicated in the configuration, with the login throttle), what each call does, and the
/// audit log every attempt lands in.
final class AdminService: Sendable {
    let operations: any AdminOperations
    let audit: AuditLog
    let logger: Logger
    let store: any ConfigurationStoring
    /// Makes unknown users' challenges look like real ones, stable per name.
    let decoyKey: [UInt8]
    private let throttle: NIOLockedValueBox<LoginThrottle>
    private let summaries = NIOLockedValueBox(RefusalSummaries())
    /// Longest user name accepted at the login, in UTF-8 bytes (account names are at most 64
    /// ASCII characters): a longer one is refused before anything is looked up or written.
    static let maximumUsernameBytes = 64

    init(
        operations: any AdminOperations, audit: AuditLog, store: any ConfigurationStoring, clusterSecret: [UInt8],
        throttle: LoginThrottle.Rules = LoginThrottle.Rules(), logger: Logger
    ) {
        self.operations = operations
        self.audit = audit
        self.store = store
        self.logger = logger
        self.throttle = NIOLockedValueBox(LoginThrottle(rules: throttle))
        decoyKey = Array(HMAC<SHA256>.authenticationCode(for: Array("vcom admin decoy".utf8), using: SymmetricKey(data: clusterSecret)))
    }

    // MARK: Logins

    /// The account's verifier and role; nil verifier for an unknown name or an account whose
    /// stored hash is not a SCRAM verifier (it must be given a new password).
    func account(_ username: String) -> (verifier: ScramVerifier?, role: AdminRole?) {
        guard let account = store.configuration.admin(username) else { return (nil, nil) }
        return (ScramVerifier(account.passwordHash), account.role)
    }

    /// How long `account` must wait before another attempt from `source` (nil: it may try).
    func lockout(source: String, account: String) -> TimeInterval? {
        throttle.withLockedValue { $0.refusal(account: account, source: source, at: Date()) }
    }

    /// The lock looked up, the proof checked and its outcome counted in one step: proofs that
    /// arrive together on different event loops must not each find the account still open
    /// (8 parallel guesses were once given 6 checks against a limit of 5). The check is a few
    /// HMACs. Returns the check's value, or nil and how long the lock lasts.
    func checkProof<T>(source: String, account: String, _ check: () -> (value: T, succeeded: Bool)) -> (value: T?, lockedFor: TimeInterval?) {
        throttle.withLockedValue { throttle in
            if let wait = throttle.refusal(account: account, source: source, at: Date()) { return (nil, wait) }
            let result = check()
            if result.succeeded {
                throttle.succeeded(account: account, source: source)
            } else {
                throttle.failed(account: account, source: source, at: Date())
            }
            return (result.value, nil)
        }
    }

    /// Audits a failed proof (already counted by `checkProof`).
    func loginFailed(source: String, account: String) {
        refused(user: account, source: source, action: "login", result: "refused: wrong user name or password")
    }

    func loginSucceeded(source: String, account: String, role: AdminRole) {
        record(user: account, source: source, action: "login", result: "ok (\(role))")
    }

    func record(user: String, source: String, action: String, result: String) {
        append(AuditRecord(atMs: Int64(Date().timeIntervalSince1970 * 1000), user: user, source: source, action: action, result: result))
    }

    /// A refused attempt (a failed or locked-out login, a protocol violation before login):
    /// audited one by one up to the budget of `RefusalSummaries`, then in a summary row.
    func refused(user: String, source: String, action: String, result: String) {
        let now = Date()
        let (write, summaries) = self.summaries.withLockedValue { $0.note(source: source, at: now) }
        for summary in summaries { append(summary) }
        if write { record(user: user, source: source, action: action, result: result) }
    }

    /// Writes the summaries of the minutes that ended (called every minute, and at shutdown).
    func flushSummaries(at now: Date = Date()) {
        for summary in summaries.withLockedValue({ $0.flush(at: now) }) { append(summary) }
    }

    private func append(_ entry: AuditRecord) {
        do {
            try audit.append(entry)
        } catch {
            logger.error("the audit log cannot be written: \(error)")
        }
    }

    // MARK: Calls

    /// Runs a call as `user`, whose role is looked up now (not remembered from the login): an
    /// account removed or demoted meanwhile gets what it is now. Nil role: the account is gone.
    func perform(_ call: AdminCall, user: String, role: AdminRole, source: String) async -> AdminAnswer {
        let answer: AdminAnswer
        if role < call.requiredRole {
            answer = .error(.forbidden, "'\(call.summary)' needs the \(call.requiredRole) role; \(user) is a \(role)")
        } else {
            answer = await execute(call, on: operations, user: user, role: role)
        }
        let result: String =
            switch answer {
            case .error(let status, let text): "\(status): \(text)"
            case .done(let text): "ok: \(text)"
            case .written(let receipt): "ok: \(receipt.summary)"
            default: "ok"
            }
        record(user: user, source: source, action: call.summary, result: result)
        if call.requiredRole > .viewer { logger.notice("admin \(user) from \(source): \(call.summary) -> \(result)") }
        return answer
    }

    private func execute(_ call: AdminCall, on runtime: any AdminOperations, user: String, role: AdminRole) async -> AdminAnswer {
        switch call {
        case .maintenance(let change):
            return await maintenance(change, user: user, on: runtime)
        case .status:
            guard let report = await runtime.report() else { return .error(.failed, "the server is stopping") }
            return .status(report)
        case .incidents(let all):
            do {
                let list = try await runtime.incidents().filter { all || $0.acknowledgedAt == nil }
                return .incidents(list.map(Self.report))
            } catch {
                return .error(.failed, "the incident log cannot be read: \(error)")
            }
        case .incident(let id):
            guard let found = try? await runtime.incidents().first(where: { $0.id == id }) else {
                return .error(.notFound, "no incident '\(id)' on this server (vcom-admin incidents list shows them)")
            }
            return .incident(Self.report(found))
        case .acknowledge(let id):
            guard let found = try? await runtime.incidents().first(where: { $0.id == id }) else {
                return .error(.notFound, "no incident '\(id)' on this server")
            }
            if found.acknowledgedAt != nil { return .done("incident \(id) was already acknowledged") }
            do {
                try await runtime.acknowledge(id)
                return .done("incident \(id) acknowledged")
            } catch {
                return .error(.failed, "cannot acknowledge \(id): \(error)")
            }
        case .switchover(let incident, let dryRun):
            return await switchover(incident: incident, dryRun: dryRun, on: runtime)
        case .forceActivate(let reason):
            let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
            guard trimmed.count >= 3 else { return .error(.invalid, "--reason must say why (at least a few words); it is recorded with the incident") }
            switch await runtime.forceActivation(reason: trimmed) {
            case .accepted(let text): return .done(text)
            case .refused(let text): return .error(.refused, text)
            }
        case .audit(let limit):
            do {
                return .audit(try audit.recent(Int(min(limit, 10_000))))
            } catch {
                return .error(.failed, "the audit log cannot be read: \(error)")
            }
        case .configuration:
            let snapshot = store.snapshot()
            // Hashes and verifiers stay on the server below the admin role.
            let configuration = role >= .admin ? snapshot.configuration : snapshot.configuration.redactingSecrets()
            return .configuration(revision: snapshot.revision, configuration)
        case .writeConfiguration(let changes):
            guard !changes.isEmpty else { return .error(.invalid, "no changes") }
            guard let status = await runtime.status(), status.state == .active else {
                return .error(.refused, "this server does not serve: configuration is written on the active server")
            }
            do {
                // A change made from a redacted read carries the marker: the stored hash stays.
                let current = store.configuration
                let restored = try changes.map { change throws(ConfigError) in try change.restoringSecrets(from: current) }
                return .written(try await runtime.writeAcknowledged(restored))
            } catch {
                return .error(.refused, "\(error)")
            }
        case .clients:
            let sessions = runtime.sessions.sorted { $0.id < $1.id }
            return .clients(
                sessions.map {
                    SessionReport(
                        sessionId: $0.id, username: $0.username, address: $0.channel.remoteAddress?.description ?? "unknown",
                        loggedInAtMs: Int64($0.loggedInAt.timeIntervalSince1970 * 1000))
                })
        case .kick(let id):
            guard let session = runtime.session(id) else { return .error(.notFound, "no session \(id) on this server") }
            session.end(Goodbye(reason: .accessRevoked, detail: "ended by an administrator"))
            // Its token must not bring it straight back, here or on the peer after a failover.
            let receipt: WriteReceipt
            do {
                receipt = try await runtime.writeAcknowledged([.revokeSession(session.revocation(at: Date()))])
            } catch {
                return .error(.failed, "session \(id) of \(session.username) ended, but its token could not be revoked: \(error)")
            }
            guard receipt.durability == .replicated else {
                return .done("session \(id) of \(session.username) ended; its token is revoked here, and on the peer once it has the change (\(receipt.durability))")
            }
            return .done("session \(id) of \(session.username) ended; its token is revoked on both servers")
        case .divergence:
            do {
                return .divergence(
                    try store.journal().map {
                        DivergenceReport(
                            id: $0.id, revision: $0.record.revision, epoch: $0.record.epoch, detectedAtMs: $0.detectedAtMs, status: $0.status.rawValue,
                            note: $0.note, change: role >= .admin ? $0.record.change : $0.record.change.redactingSecrets())
                    })
            } catch {
                return .error(.failed, "the divergence journal cannot be read: \(error)")
            }
        case .resolveDivergence(let entry, let resolution):
            // An entry that adds, changes or removes an administrator is the admin role's
            // business, as the same change written directly would be.
            if role < .admin, case .reapplyHere = resolution,
                let found = try? store.journal().first(where: { $0.id == entry }), AdminCall.writeConfiguration([found.record.change]).requiredRole > role
            {
                return .error(.forbidden, "entry \(entry) changes an administrator account: applying it needs the admin role")
            }
            do {
                switch resolution {
                case .discard:
                    try store.discardJournalEntry(entry, note: "discarded by an administrator")
                    return .done("entry \(entry) discarded")
                case .reapplyHere:
                    guard let status = await runtime.status(), status.state == .active else {
                        return .error(.refused, "this server does not serve: apply the change on the active server, then mark the entry here")
                    }
                    let record = try store.reapplyJournalEntry(entry, at: Date())
                    return .done("entry \(entry) applied as revision \(record.revision)")
                case .reappliedElsewhere(let revision):
                    try store.markJournalEntryReapplied(entry, asRevision: revision)
                    return .done("entry \(entry) marked as applied (revision \(revision) on the active server)")
                }
            } catch {
                return .error(.refused, "\(error)")
            }
        case .installLicence(let text):
            switch await runtime.installLicence(text) {
            case .accepted(let message): return .done(message)
            case .refused(let message): return .error(.refused, message)
            }
        }
    }

    /// The policy decides, with its own checks (the peer reachable, able to serve, caught up,
    /// the incident named); a dry run asks the same checks without acting.
    /// Maintenance mode is a replicated setting written on the active server (so both servers
    /// pause, and a restart keeps the pause); a standby refuses it, even with the link down:
    /// it would end the pause on one server only. There, `--for` ends it, and `activate --force`
    /// is the manual way to serve.
    private func maintenance(_ change: AdminCall.MaintenanceChange, user: String, on runtime: any AdminOperations) async -> AdminAnswer {
        guard let status = await runtime.status(), status.state == .active else {
            return .error(
                .refused,
                "this server does not serve: maintenance mode is set on the active server, which replicates it here (a standby cut off from it ends maintenance at its --for time; vcom-admin activate --force serves at once)")
        }
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let written: ConfigChange
        let done: String
        switch change {
        case .on(let reason, let seconds):
            let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
            guard trimmed.count >= 3, !trimmed.contains("\n") else { return .error(.invalid, "--reason must say why, on one line; it is shown in status and audited") }
            if let seconds, seconds < 10 || seconds > 7 * 86_400 { return .error(.invalid, "--for must be from 10 seconds to 7 days") }
            let window = MaintenanceWindow(reason: trimmed, by: user, sinceMs: now, endsAt: seconds.map { now + UInt64($0) * 1000 })
            written = .setSetting(key: MaintenanceWindow.settingKey, value: window.settingValue)
            done = "maintenance mode on for the pair" + (seconds.map { " for \($0) s" } ?? " until turned off")
                + ": no automatic failover, self-deactivation or handover; switchover and activate --force still work"
        case .off:
            guard status.maintenance != nil else { return .done("maintenance mode was not on") }
            written = .removeSetting(key: MaintenanceWindow.settingKey)
            done = "maintenance mode off: automatic failover decisions resume on both servers"
        }
        do {
            _ = try await runtime.write([written])
            return .done(done)
        } catch {
            return .error(.failed, "\(error)")
        }
    }

    private func switchover(incident: String?, dryRun: Bool, on runtime: any AdminOperations) async -> AdminAnswer {
        guard let status = await runtime.status() else { return .error(.failed, "the server is stopping") }
        let plan = "service moves from \(status.serverId) to the \(status.role == .primary ? "secondary" : "primary"); \(status.clientsLoggedIn) clients are redirected"
        if dryRun {
            if let refusal = await runtime.switchoverRefusal(acknowledging: incident) { return .error(.refused, refusal) }
            return .done("would switch over: \(plan)")
        }
        switch await runtime.switchover(acknowledging: incident) {
        case .accepted(let text): return .done("\(text) (\(plan))")
        case .refused(let text): return .error(.refused, text)
        }
    }

    static func report(_ incident: StoredIncident) -> IncidentReport {
        IncidentReport(
            id: incident.id, cause: incident.cause, role: incident.role, epoch: incident.epoch,
            decidedAtMs: Int64(incident.decidedAt.timeIntervalSince1970 * 1000), linkLostMsBefore: incident.linkLostMsBefore,
            clientLossMsBefore: incident.clientLossMsBefore, loggedInClients: UInt32(clamping: incident.loggedInClients),
            clientsLost: incident.clientsLost.map { UInt32(clamping: $0) }, clientPopulation: incident.clientPopulation.map { UInt32(clamping: $0) },
            peer: incident.peer, acknowledgedAtMs: incident.acknowledgedAt.map { Int64($0.timeIntervalSince1970 * 1000) })
    }
}
