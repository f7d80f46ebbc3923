import AdminProtocol
import ArgumentParser
import ConfigModel
import Foundation
import PairModel
import TransportSecurity

/// How healthy the pair is, from what its servers answered: the exit code a monitoring check
/// reads (Nagios's convention), and why.
struct PairVerdict {
    /// 0 healthy; 1 degraded; 2 nobody serves, or both do; 3 unknown (no server let us in).
    var code: Int32
    var summary: String
    var problems: [String]

    init(_ results: [(Endpoint, Result<AdminAnswer, AdminFailure>)], now: Date = Date()) {
        var problems: [String] = []
        var reports: [ServerReport] = []
        var refused = 0
        for (endpoint, result) in results {
            switch result {
            case .success(.status(let report)): reports.append(report)
            case .success(.error(_, let text)), .failure(.refused(let text)):
                refused += 1
                problems.append("\(endpoint): \(text)")
            case .failure(.unreachable): problems.append("\(endpoint) unreachable")
            default: problems.append("\(endpoint): unexpected answer")
            }
        }
        let serving = reports.filter { $0.state == .active }
        for report in reports {
            let name = report.serverId
            if !report.peerLinkUp { problems.append("\(name): peer link down") }
            if let lag = report.replicationLag, lag > 0 { problems.append("\(name): the peer is \(lag) revisions behind") }
            if !report.synced { problems.append("\(name): not yet synced") }
            if let expires = report.licenceExpiresMs {
                let days = Self.days(until: expires, now: now)
                if days < 30 { problems.append("\(name): licence expires in \(days) days") }
            } else {
                problems.append("\(name): no licence")
            }
            if let expires = report.certificateExpiresMs, Self.days(until: expires, now: now) < 30 {
                problems.append("\(name): TLS certificate expires in \(Self.days(until: expires, now: now)) days")
            }
            if report.maintenance != nil { problems.append("\(name): maintenance mode (no automatic failover)") }
            if report.openDivergence > 0 { problems.append("\(name): \(report.openDivergence) open divergence entries") }
            if report.state == .awaitingAuthorization { problems.append("\(name): awaiting an authorized switchover") }
        }
        // One report per server: the maintenance and link lines come from both, once is enough.
        var seen = Set<String>()
        self.problems = problems.filter { seen.insert($0).inserted }
        if reports.isEmpty && refused == results.count && refused > 0 {
            (code, summary) = (3, "UNKNOWN: no server accepted the login")
        } else if serving.count == 1 {
            (code, summary) = self.problems.isEmpty ? (0, "healthy: \(serving[0].serverId) serves") : (1, "DEGRADED: \(serving[0].serverId) serves")
        } else if serving.isEmpty, let witness = reports.first(where: { $0.peerLinkUp && $0.peerState == .active }) {
            // Only the standby was asked (--servers with one address): it hears its peer serve.
            (code, summary) = self.problems.isEmpty ? (0, "healthy: the peer of \(witness.serverId) serves") : (1, "DEGRADED: the peer of \(witness.serverId) serves")
        } else if serving.count > 1 {
            (code, summary) = (2, "CRITICAL: both servers serve (a split)")
        } else {
            (code, summary) = (2, reports.isEmpty ? "CRITICAL: no server answered" : "CRITICAL: no server serves")
        }
    }

    static func days(until ms: Int64, now: Date) -> Int {
        Int(((Double(ms) / 1000 - now.timeIntervalSince1970) / 86_400).rounded(.down))
    }
}

// MARK: list

/// `vcom-admin list`: one row per server, as `patronictl list` shows a cluster.
struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One row per server (role, state, epoch, link, clients, revision, lag, expiries, maintenance) and the pair's health.",
        discussion: "Exit codes, for monitoring checks: 0 healthy, 1 degraded (a server unreachable, the link down, lag, an expiry within 30 days, maintenance), 2 nobody serves or both do, 3 unknown (no login accepted).")

    @OptionGroup var connection: Connection

    func run() async throws {
        let results = try await connection.eachServer { session in try await session.call(.status) }
        let verdict = PairVerdict(results)
        let now = Date()
        if connection.json {
            let rows = results.map { entry -> [String: Any] in
                guard case .success(.status(let report)) = entry.1 else { return ["address": "\(entry.0)", "reachable": false] }
                var row = Status.object(report)
                row["address"] = "\(entry.0)"
                row["reachable"] = true
                return row
            }
            printJSON(["servers": rows, "health": verdict.summary, "exit": verdict.code, "problems": verdict.problems])
            throw ExitCode(verdict.code)
        }
        var table = [["SERVER", "ADDRESS", "ROLE", "STATE", "EPOCH", "LINK", "CLIENTS", "REVISION", "LAG", "LICENCE", "CERT", "MAINTENANCE"]]
        for (endpoint, result) in results {
            guard case .success(.status(let r)) = result else {
                table.append(["?", "\(endpoint)", "?", "UNREACHABLE", "", "", "", "", "", "", "", ""])
                continue
            }
            table.append([
                r.serverId, "\(endpoint)", "\(r.role)", r.state.listName, "\(r.epoch)", r.peerLinkUp ? "up" : "DOWN", "\(r.clientsLoggedIn)",
                "\(r.configRevision)", r.replicationLag.map(String.init) ?? "-",
                r.licenceExpiresMs.map { "\(PairVerdict.days(until: $0, now: now))d" } ?? "NONE",
                r.certificateExpiresMs.map { "\(PairVerdict.days(until: $0, now: now))d" } ?? "-",
                r.maintenance.map { window in window.endsAt.map { "until \(formatTime(Int64($0)))" } ?? "on" } ?? "-",
            ])
        }
        let widths = (0..<table[0].count).map { column in table.map { $0[column].count }.max() ?? 0 }
        for row in table {
            print(zip(row, widths).map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        for case (_, .success(.status(let r))) in results { if let witness = r.witness { print("\(r.serverId) witness: \(witness)") } }
        print("")
        print(verdict.summary)
        for problem in verdict.problems { print("  \(problem)") }
        throw ExitCode(verdict.code)
    }
}

extension ServerState {
    var listName: String {
        switch self {
        case .active: "active"
        case .standby: "standby"
        case .awaitingAuthorization: "awaiting-auth"
        }
    }
}

// MARK: maintenance

struct Maintenance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pause every automatic failover decision of the pair (operator role), as patronictl pause does.",
        discussion: """
            While on, neither server fails over, deactivates itself or hands over on its own; \
            switchover and activate --force still work. It is written on the active server, \
            replicated to the other, shown by status, list and /metrics (vcom_maintenance), audited, \
            and ends by itself after --for. If the peer link is down when it ends, the standby \
            takes over then.
            """,
        subcommands: [On.self, Off.self])

    struct On: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Turn maintenance mode on.")
        @OptionGroup var connection: Connection
        @Option(help: "Why (shown in status, recorded in the audit log).") var reason: String
        @Option(name: .customLong("for"), help: "How long: 30s, 90m, 2h, 1d (10 seconds to 7 days); absent: until `maintenance off`.")
        var duration: String?

        func validate() throws {
            if let duration, Self.seconds(duration) == nil { throw ValidationError("--for '\(duration)': a number with s, m, h or d (90m, 2h)") }
        }

        static func seconds(_ text: String) -> UInt32? {
            guard let unit = text.last, let number = UInt32(text.dropLast()) else { return nil }
            let scale: UInt32? = ["s": 1, "m": 60, "h": 3600, "d": 86_400][String(unit)]
            guard let scale else { return nil }
            let (value, overflow) = number.multipliedReportingOverflow(by: scale)
            return overflow ? nil : value
        }

        func run() async throws {
            let active = try await connection.activeServer()
            try await connection.act(.maintenance(.on(reason: reason, seconds: duration.flatMap(Self.seconds))), on: active)
        }
    }

    struct Off: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Turn maintenance mode off: automatic decisions resume on both servers.")
        @OptionGroup var connection: Connection
        func run() async throws {
            let active = try await connection.activeServer()
            try await connection.act(.maintenance(.off), on: active)
        }
    }
}
