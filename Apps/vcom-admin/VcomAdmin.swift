import AdminProtocol
import ArgumentParser
import Foundation
import TransportSecurity
import PairModel
import Wire

@main
struct VcomAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcom-admin",
        abstract: "The System Administration application of a VCOM failover pair.",
        discussion: """
            Talks to the servers' admin ports (listen.admin). Credentials: --user or VCOM_ADMIN_USER; the password \
            from --password-file, VCOM_ADMIN_PASSWORD or a prompt, never the command line. Logins use SCRAM-SHA-256: \
            the password never crosses the network.
            Exit codes: 0 done, 1 refused (by a server, or a check), 2 unreachable, 64 usage; status and list \
            answer as a monitoring check: 0 healthy, 1 degraded, 2 nobody serves (or both do), 3 unknown.
            Shell completion: vcom-admin --generate-completion-script bash|zsh|fish.
            """,
        subcommands: [
            Status.self, List.self, Maintenance.self, Incidents.self, Switchover.self, Activate.self, Config.self, Users.self, Admins.self, PartyLines.self, Keys.self,
            LicenceCommand.self, Clients.self, Divergence.self, Audit.self, PKI.self,
        ]
    )
}

/// Runs a command body and turns failures into the documented exit codes.
func finish(_ code: Int32) throws {
    if code != 0 { throw ExitCode(code) }
}

// MARK: status

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Who serves, why, since when, and what is at risk: each server's role, state, epoch, peer link, clients, licence, configuration and open incidents.",
        discussion: "Exit codes, for monitoring checks: 0 healthy, 1 degraded (a server unreachable, the link down, lag, an expiry within 30 days, maintenance mode), 2 nobody serves or both do, 3 unknown (no login accepted). vcom-admin list shows the same as one row per server.")

    @OptionGroup var connection: Connection
    @Flag(help: "Refresh every two seconds until interrupted.") var watch = false

    func run() async throws {
        repeat {
            let results = try await connection.eachServer { session in try await session.call(.status) }
            if watch && !connection.json { print("\u{1B}[2J\u{1B}[H", terminator: "") }
            show(results)
            if !watch { try finish(PairVerdict(results).code) }
            if watch { try await Task.sleep(for: .seconds(2)) }
        } while watch
    }

    func show(_ results: [(Endpoint, Result<AdminAnswer, AdminFailure>)]) {
        let reports = results.compactMap { entry -> (Endpoint, ServerReport)? in
            if case .success(.status(let report)) = entry.1 { return (entry.0, report) }
            return nil
        }
        if connection.json {
            printJSON([
                "servers": results.map { entry -> [String: Any] in
                    switch entry.1 {
                    case .success(.status(let report)): return ["address": "\(entry.0)", "reachable": true, "status": Self.object(report)]
                    case .success(.error(_, let text)): return ["address": "\(entry.0)", "reachable": true, "error": text]
                    case .failure(.refused(let text)): return ["address": "\(entry.0)", "reachable": true, "error": text]
                    case .failure(.unreachable(let text)): return ["address": "\(entry.0)", "reachable": false, "error": text]
                    default: return ["address": "\(entry.0)"]
                    }
                },
                "serving": reports.filter { $0.1.state == .active }.map(\.1.serverId),
                "health": PairVerdict(results).summary, "problems": PairVerdict(results).problems,
            ])
            return
        }
        let serving = reports.filter { $0.1.state == .active }
        switch serving.count {
        case 0 where reports.isEmpty: print("no server answered")
        case 0: print("NOBODY SERVES" + (reports.count < results.count ? " (of the servers that answered)" : ""))
        case 1:
            let report = serving[0].1
            print("serving: \(report.serverId) (\(report.role)), epoch \(report.epoch)"
                + (report.activationIncident.map { ", because of incident \($0)" } ?? ""))
        default: print("BOTH SERVE (a split): " + serving.map { "\($0.1.serverId) epoch \($0.1.epoch)" }.joined(separator: ", "))
        }
        let verdict = PairVerdict(results)
        print("pair: \(verdict.summary)" + (verdict.problems.isEmpty ? "" : " (\(verdict.problems.joined(separator: "; ")))"))
        for (endpoint, result) in results {
            print("")
            switch result {
            case .success(.status(let report)): print(Self.text(report, at: endpoint))
            case .success(.error(_, let text)): print("\(endpoint): \(text)")
            case .failure(.unreachable(let text)): print("\(endpoint): UNREACHABLE: \(text)")
            case .failure(.refused(let text)): print("\(endpoint): REFUSED: \(text)")
            default: break
            }
        }
    }

    static func text(_ report: ServerReport, at endpoint: Endpoint) -> String {
        var lines = ["\(report.serverId) (\(report.role)) at \(endpoint): \(report.state.description.uppercased()), epoch \(report.epoch)"]
        let peer =
            report.peerLinkUp
            ? "peer link up; the peer is \(report.peerState?.description ?? "unknown")" + (report.peerCanActivate == false ? " and CANNOT serve" : "")
            : "PEER LINK DOWN"
        lines.append("  \(peer)")
        lines.append("  clients: \(report.clientsLoggedIn) logged in, \(report.clientsWatching) watching")
        if let id = report.licenceId, let expires = report.licenceExpiresMs {
            let days = Int((Double(expires) / 1000 - Date().timeIntervalSince1970) / 86_400)
            lines.append("  licence \(id), expires \(formatTime(expires)) (\(days) days)" + (days < 30 ? "  RENEW SOON" : ""))
        } else {
            lines.append("  NO LICENCE: this server cannot serve")
        }
        lines.append(
            "  configuration revision \(report.configRevision)" + (report.replicationLag.map { ", the peer is \($0) behind" } ?? "")
                + (report.synced ? "" : ", NOT YET SYNCED"))
        if report.state != .active { lines.append("  can serve: \(report.canActivate ? "yes" : "NO")") }
        if let incident = report.activationIncident {
            lines.append("  serves because of incident \(incident): a switch back needs --incident \(incident)")
        }
        lines.append("  open incidents: \(report.openIncidents), open divergence entries: \(report.openDivergence)")
        if let witness = report.witness { lines.append("  witness: \(witness)") }
        if let expires = report.certificateExpiresMs {
            let days = Int(((Double(expires) / 1000 - Date().timeIntervalSince1970) / 86_400).rounded(.down))
            lines.append(
                "  TLS certificate expires \(formatTime(expires)) (\(days) days)"
                    + (days <= CertificateFacts.warningDays ? "  RENEW SOON (vcom-admin pki issue; no restart needed)" : "")
                    + (report.transport == "tls" ? "" : "; \(report.transport ?? "")"))
        } else if report.transport == "plaintext" {
            lines.append("  TLS OFF on every port (--plaintext)")
        }
        if report.state == .awaitingAuthorization {
            lines.append("  waits for an authorized switchover (vcom-admin switchover --to \(report.role) --incident ID)")
        }
        if let window = report.maintenance {
            lines.append(
                "  MAINTENANCE MODE since \(formatTime(Int64(window.sinceMs))) by \(window.by): \(window.reason); "
                    + (window.endsAt.map { "ends \(formatTime(Int64($0)))" } ?? "until `vcom-admin maintenance off`")
                    + ": no automatic failover")
        }
        for warning in report.warnings { lines.append("  WARNING: \(warning)") }
        return lines.joined(separator: "\n")
    }

    static func object(_ report: ServerReport) -> [String: Any] {
        var object: [String: Any] = [
            "id": report.serverId, "role": "\(report.role)", "state": "\(report.state)", "epoch": report.epoch, "peer_link_up": report.peerLinkUp,
            "clients_logged_in": report.clientsLoggedIn, "clients_watching": report.clientsWatching, "config_revision": report.configRevision,
            "synced": report.synced, "can_activate": report.canActivate, "open_incidents": report.openIncidents,
            "open_divergence": report.openDivergence,
        ]
        object["peer_state"] = report.peerState.map { "\($0)" }
        object["licence"] = report.licenceId
        object["licence_expires"] = report.licenceExpiresMs.map(formatTime)
        object["replication_lag"] = report.replicationLag
        object["activation_incident"] = report.activationIncident
        object["certificate_expires"] = report.certificateExpiresMs.map(formatTime)
        object["certificate_days_left"] = report.certificateExpiresMs.map { Int(((Double($0) / 1000 - Date().timeIntervalSince1970) / 86_400).rounded(.down)) }
        object["transport"] = report.transport
        object["warnings"] = report.warnings
        object["witness"] = report.witness
        if let window = report.maintenance {
            object["maintenance"] = [
                "reason": window.reason, "by": window.by, "since": formatTime(Int64(window.sinceMs)),
                "ends": window.endsAt.map { formatTime(Int64($0)) } ?? "when turned off",
            ]
        }
        return object
    }
}

// MARK: incidents

struct Incidents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The failover incidents each server recorded: list, show, acknowledge.", subcommands: [List.self, Show.self, Ack.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open incidents (--all: acknowledged ones too), on every server.")
        @OptionGroup var connection: Connection
        @Flag(help: "Include acknowledged incidents.") var all = false

        func run() async throws {
            let all = all
            let results = try await connection.eachServer { session in try await session.call(.incidents(includeAcknowledged: all)) }
            var rows: [[String: Any]] = []
            for (endpoint, result) in results {
                switch result {
                case .success(.incidents(let list)):
                    for incident in list {
                        if connection.json {
                            var row = Show.object(incident)
                            row["server"] = "\(endpoint)"
                            rows.append(row)
                        } else {
                            print("\(incident.id)  \(formatTime(incident.decidedAtMs))  epoch \(incident.epoch)  \(incident.cause)"
                                + (incident.acknowledgedAtMs == nil ? "" : "  (acknowledged)") + "  [\(endpoint)]")
                        }
                    }
                    if list.isEmpty && !connection.json { print("\(endpoint): no \(all ? "" : "open ")incidents") }
                case .success(.error(_, let text)): printError("\(endpoint): \(text)")
                case .failure(let failure): printError("\(failure)")
                default: break
                }
            }
            if connection.json { printJSON(["incidents": rows]) }
            try finish(worstExit(results, allowPartial: true))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One incident: cause, timeline, client counts, epochs.")
        @OptionGroup var connection: Connection
        @Argument(help: "The incident's id (from incidents list or status).") var id: String

        func run() async throws {
            let id = id
            let results = try await connection.eachServer { session in try await session.call(.incident(id: id)) }
            for (endpoint, result) in results {
                guard case .success(.incident(let incident)) = result else { continue }
                if connection.json {
                    var object = Self.object(incident)
                    object["server"] = "\(endpoint)"
                    printJSON(object)
                } else {
                    print(Self.text(incident, from: endpoint))
                }
                return
            }
            for (_, result) in results {
                if case .failure(let failure) = result { printError("\(failure)") }
            }
            if results.contains(where: { if case .success = $0.1 { true } else { false } }) {
                printError("no incident '\(id)' on \(results.map { "\($0.0)" }.joined(separator: " or "))")
                throw ExitCode(1)
            }
            throw ExitCode(2)
        }

        static func text(_ incident: IncidentReport, from endpoint: Endpoint) -> String {
            var lines = ["incident \(incident.id), recorded by the \(incident.role) at \(endpoint)", "  cause: \(incident.cause)"]
            lines.append("  decided at \(formatTime(incident.decidedAtMs)), serving epoch \(incident.epoch) from then on")
            if let before = incident.linkLostMsBefore { lines.append("  timeline: the peer link was lost \(before) ms before the decision") }
            if let before = incident.clientLossMsBefore {
                lines.append("  timeline: clients were lost \(before) ms before the decision"
                    + (incident.clientsLost.map { " (\($0) of \(incident.clientPopulation ?? 0))" } ?? ""))
            }
            lines.append("  clients logged in here at the decision: \(incident.loggedInClients)")
            if let peer = incident.peer { lines.append("  peer: \(peer)") }
            lines.append(
                incident.acknowledgedAtMs.map { "  acknowledged at \(formatTime($0))" }
                    ?? "  open: the switch back must name it (vcom-admin switchover --to primary --incident \(incident.id))")
            return lines.joined(separator: "\n")
        }

        static func object(_ incident: IncidentReport) -> [String: Any] {
            var object: [String: Any] = [
                "id": incident.id, "cause": incident.cause, "role": incident.role, "epoch": incident.epoch,
                "decided_at": formatTime(incident.decidedAtMs), "logged_in_clients": incident.loggedInClients,
            ]
            object["link_lost_ms_before"] = incident.linkLostMsBefore
            object["client_loss_ms_before"] = incident.clientLossMsBefore
            object["clients_lost"] = incident.clientsLost
            object["client_population"] = incident.clientPopulation
            object["peer"] = incident.peer
            object["acknowledged_at"] = incident.acknowledgedAtMs.map(formatTime)
            return object
        }
    }

    struct Ack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Acknowledge an incident (operator role): its cause was looked at.")
        @OptionGroup var connection: Connection
        @Argument(help: "The incident's id.") var id: String

        func run() async throws {
            let id = id
            let results = try await connection.eachServer { session -> AdminAnswer in
                guard case .incident = try await session.call(.incident(id: id)) else { return .error(.notFound, "") }
                return try await session.call(.acknowledge(incident: id))
            }
            for (endpoint, result) in results {
                if case .success(.done(let text)) = result {
                    if connection.json { printJSON(["server": "\(endpoint)", "result": text]) } else { print("\(endpoint): \(text)") }
                    return
                }
            }
            for (_, result) in results {
                switch result {
                case .success(.error(let status, let text)) where status != .notFound: printError(text)
                case .failure(let failure): printError("\(failure)")
                default: break
                }
            }
            if results.contains(where: { if case .success(.error(.forbidden, _)) = $0.1 { true } else { false } }) { throw ExitCode(1) }
            if results.contains(where: { if case .success = $0.1 { true } else { false } }) {
                printError("no incident '\(id)' found")
                throw ExitCode(1)
            }
            throw ExitCode(2)
        }
    }
}

// MARK: switchover

struct Switchover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move service to the primary or the secondary, clients redirected.",
        discussion: """
            Without --incident it is a planned switchover (maintenance). After a failover the server that took over holds \
            an incident, and the switch back must name it: the cause must have been evaluated first. Shows what will happen \
            and asks for confirmation (or --yes); refused with the reason when the target is unreachable, cannot serve or \
            lags behind.
            """)

    @OptionGroup var connection: Connection
    @Option(help: "Where service should go: primary or secondary.") var to: String
    @Option(help: "The incident that caused the failover being reversed.") var incident: String?
    @Flag(help: "Do not ask for confirmation.") var yes = false

    func validate() throws {
        guard to == "primary" || to == "secondary" else { throw ValidationError("--to must be primary or secondary (not '\(to)')") }
    }

    func run() async throws {
        let target: ServerRole = to == "primary" ? .primary : .secondary
        let statuses = try await connection.eachServer { session in try await session.call(.status) }
        let reports = statuses.compactMap { entry -> (Endpoint, ServerReport)? in
            if case .success(.status(let report)) = entry.1 { return (entry.0, report) }
            return nil
        }
        if reports.contains(where: { $0.1.role == target && $0.1.state == .active }) {
            return say("the \(target) already serves; nothing to do", code: 0)
        }
        guard let (source, active) = reports.first(where: { $0.1.state == .active && $0.1.role != target }) else {
            for (_, result) in statuses { if case .failure(let failure) = result { printError("\(failure)") } }
            return say("no reachable server serves, so there is nothing to switch over from (to start serving without a peer: activate --force)", code: reports.isEmpty ? 2 : 1)
        }
        let incident = incident
        let check = try await connection.single(source) { session in try await session.call(.switchover(incident: incident, dryRun: true)) }
        guard case .done(let plan) = check else {
            if case .error(_, let text) = check { return say("refused: \(text)", code: 1) }
            return say("unexpected answer", code: 2)
        }
        if !connection.json { print("\(active.serverId): \(plan)") }
        if !yes {
            guard isatty(STDIN_FILENO) == 1 else { return say("not confirmed: add --yes to switch over without a terminal", code: 1) }
            print("Proceed? [y/N] ", terminator: "")
            guard let answer = readLine(), answer.lowercased().hasPrefix("y") else { return say("not confirmed; nothing changed", code: 1) }
        }
        let done = try await connection.single(source) { session in try await session.call(.switchover(incident: incident, dryRun: false)) }
        switch done {
        case .done(let text):
            if connection.json { printJSON(["result": "switching", "from": active.serverId, "to": "\(target)", "detail": text]) } else { print(text) }
        case .error(_, let text): return say("refused: \(text)", code: 1)
        default: return say("unexpected answer", code: 2)
        }
        // Wait (bounded) for the target to serve, and say so.
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(300))
            let now = try await connection.eachServer { session in try await session.call(.status) }
            for (_, result) in now {
                if case .success(.status(let report)) = result, report.role == target, report.state == .active {
                    if !connection.json { print("\(report.serverId) serves, epoch \(report.epoch)") }
                    return
                }
            }
        }
        say("the \(target) did not report serving within 15 s; check vcom-admin status", code: 1)
    }

    func say(_ text: String, code: Int32) {
        if connection.json { printJSON(["result": code == 0 ? "ok" : "refused", "detail": text]) } else if code == 0 { print(text) } else { printError(text) }
        if code != 0 { Foundation.exit(code) }
    }
}

extension Connection {
    /// One call on one server, failures turned into exit codes.
    func single(_ endpoint: Endpoint, _ body: @escaping @Sendable (inout AdminClient) async throws -> AdminAnswer) async throws -> AdminAnswer {
        do {
            return try await AdminClient.with(endpoint, tls: try transport(), user: try username(), password: try password(), timeout: wait, body)
        } catch let failure as AdminFailure {
            printError("\(failure)")
            throw ExitCode(failure.exitCode)
        }
    }
}

// MARK: activate

struct Activate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Emergency: make this server serve although its peer and network are gone (admin role); recorded as an incident.",
        discussion: "Give exactly one server in --servers. Both servers may then serve: use it only when the other is known to be down.")

    @OptionGroup var connection: Connection
    @Flag(help: "Required: says you know this overrides the failover rules.") var force = false
    @Option(help: "Why (recorded with the incident).") var reason: String

    func validate() throws {
        guard force else { throw ValidationError("activate overrides the failover rules: add --force to confirm") }
    }

    func run() async throws {
        let endpoints = try connection.endpoints()
        guard endpoints.count == 1 else { throw ValidationError("activate acts on one server: give exactly one in --servers") }
        let reason = reason
        switch try await connection.single(endpoints[0], { session in try await session.call(.forceActivate(reason: reason)) }) {
        case .done(let text):
            if connection.json { printJSON(["result": "ok", "detail": text]) } else { print(text) }
        case .error(_, let text):
            if connection.json { printJSON(["result": "refused", "detail": text]) } else { printError("refused: \(text)") }
            throw ExitCode(1)
        default: throw ExitCode(2)
        }
    }
}

// MARK: audit

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The servers' audit logs: who did what, from where, when, with what result.")
    @OptionGroup var connection: Connection
    @Option(help: "The newest this many entries per server.") var limit: UInt32 = 50

    func run() async throws {
        let limit = limit
        let results = try await connection.eachServer { session in try await session.call(.audit(limit: limit)) }
        var rows: [[String: Any]] = []
        for (endpoint, result) in results {
            switch result {
            case .success(.audit(let records)):
                for record in records {
                    if connection.json {
                        rows.append([
                            "server": "\(endpoint)", "at": formatTime(record.atMs), "user": record.user, "source": record.source, "action": record.action,
                            "result": record.result,
                        ])
                    } else {
                        print("\(formatTime(record.atMs))  \(record.user)@\(record.source)  \(record.action)  -> \(record.result)  [\(endpoint)]")
                    }
                }
            case .success(.error(_, let text)): printError("\(endpoint): \(text)")
            case .failure(let failure): printError("\(failure)")
            default: break
            }
        }
        if connection.json { printJSON(["audit": rows]) }
        try finish(worstExit(results, allowPartial: true))
    }
}
