import AdminProtocol
import ArgumentParser
import ConfigModel
import Foundation
import PairModel
import Wire

// MARK: licence

struct LicenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "licence", abstract: "The pair's licence.", subcommands: [Show.self, Install.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each server's licence and its expiry (warned 30 days ahead).")
        @OptionGroup var connection: Connection
        func run() async throws {
            let results = try await connection.eachServer { session in try await session.call(.status) }
            var rows: [[String: Any]] = []
            for (endpoint, result) in results {
                switch result {
                case .success(.status(let report)):
                    let days = report.licenceExpiresMs.map { Int((Double($0) / 1000 - Date().timeIntervalSince1970) / 86_400) }
                    if connection.json {
                        var row: [String: Any] = ["server": report.serverId, "address": "\(endpoint)"]
                        row["licence"] = report.licenceId
                        row["expires"] = report.licenceExpiresMs.map(formatTime)
                        row["days_left"] = days
                        rows.append(row)
                    } else if let id = report.licenceId, let expires = report.licenceExpiresMs, let days {
                        print("\(report.serverId): licence \(id), expires \(formatTime(expires)), \(days) days left" + (days < 30 ? ": RENEW SOON" : ""))
                    } else {
                        print("\(report.serverId): NO LICENCE")
                    }
                case .success(.error(_, let text)): printError("\(endpoint): \(text)")
                case .failure(let failure): printError("\(failure)")
                default: break
                }
            }
            if connection.json { printJSON(["licences": rows]) }
            try finish(worstExit(results, allowPartial: true))
        }
    }

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install a licence file on the primary (admin role): verified there, enforced at once, shared with the secondary.")
        @OptionGroup var connection: Connection
        @Argument(help: "The licence file from the vendor.") var file: String
        func run() async throws {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                printError("cannot read \(file)")
                throw ExitCode(64)
            }
            let results = try await connection.eachServer { session in try await session.call(.status) }
            guard let primary = results.first(where: { if case .success(.status(let report)) = $0.1 { report.role == .primary } else { false } })?.0
            else {
                printError("the primary is not among the servers that answered: licences are installed on the primary")
                throw ExitCode(2)
            }
            try await connection.act(.installLicence(text), on: primary)
        }
    }
}

// MARK: clients

struct Clients: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Client sessions.", subcommands: [List.self, Kick.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every logged-in client, on each server.")
        @OptionGroup var connection: Connection
        func run() async throws {
            let results = try await connection.eachServer { session in try await session.call(.clients) }
            var rows: [[String: Any]] = []
            for (endpoint, result) in results {
                switch result {
                case .success(.clients(let sessions)):
                    for session in sessions {
                        if connection.json {
                            rows.append([
                                "server": "\(endpoint)", "session": session.sessionId, "username": session.username, "address": session.address,
                                "logged_in_at": formatTime(session.loggedInAtMs),
                            ])
                        } else {
                            print("\(session.sessionId)  \(session.username)  \(session.address)  since \(formatTime(session.loggedInAtMs))  [\(endpoint)]")
                        }
                    }
                    if sessions.isEmpty && !connection.json { print("\(endpoint): no clients") }
                case .success(.error(_, let text)): printError("\(endpoint): \(text)")
                case .failure(let failure): printError("\(failure)")
                default: break
                }
            }
            if connection.json { printJSON(["clients": rows]) }
            try finish(worstExit(results, allowPartial: true))
        }
    }

    struct Kick: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a session (operator role); the client may log in again.")
        @OptionGroup var connection: Connection
        @Argument(help: "The session number from clients list.") var session: UInt64
        func run() async throws {
            let id = session
            let results = try await connection.eachServer { session in try await session.call(.kick(sessionId: id)) }
            for (endpoint, result) in results {
                if case .success(.done(let text)) = result {
                    if connection.json { printJSON(["result": "ok", "detail": text]) } else { print("\(endpoint): \(text)") }
                    return
                }
            }
            for (_, result) in results {
                switch result {
                case .success(.error(.forbidden, let text)):
                    printError(text)
                    throw ExitCode(1)
                case .failure(let failure): printError("\(failure)")
                default: break
                }
            }
            printError("no session \(id) on the servers given")
            throw ExitCode(1)
        }
    }
}

// MARK: divergence

struct Divergence: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Changes a server lost when a split healed (its divergence journal): list, apply again, discard.",
        discussion: "The journal lives on the server that lost the split. apply writes the change on the active server and marks the entry where it lives.",
        subcommands: [List.self, Apply.self, Discard.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Journal entries on each server (--all: resolved ones too).")
        @OptionGroup var connection: Connection
        @Flag(help: "Include applied and discarded entries.") var all = false
        func run() async throws {
            let results = try await connection.eachServer { session in try await session.call(.divergence) }
            var rows: [[String: Any]] = []
            for (endpoint, result) in results {
                switch result {
                case .success(.divergence(let entries)):
                    for entry in entries where all || entry.status == "open" {
                        if connection.json {
                            rows.append([
                                "server": "\(endpoint)", "id": entry.id, "revision": entry.revision, "epoch": entry.epoch, "status": entry.status,
                                "change": entry.change.auditSummary,
                            ])
                        } else {
                            print("\(entry.id)  revision \(entry.revision) epoch \(entry.epoch)  \(entry.status)  \(entry.change.auditSummary)  [\(endpoint)]")
                        }
                    }
                case .success(.error(_, let text)): printError("\(endpoint): \(text)")
                case .failure(let failure): printError("\(failure)")
                default: break
                }
            }
            if connection.json { printJSON(["divergence": rows]) } else if rows.isEmpty && !results.isEmpty { print("no open divergence entries") }
            try finish(worstExit(results, allowPartial: true))
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write an entry's change again on the active server (operator role), and mark it.")
        @OptionGroup var connection: Connection
        @Argument var entry: Int64
        func run() async throws {
            let (holder, report) = try await Divergence.find(entry, connection)
            let active = try await connection.activeServer()
            if active == holder {
                return try await connection.act(.resolveDivergence(entry: entry, resolution: .reapplyHere), on: holder)
            }
            // Below the admin role the entry came without its password hash: writing it here would
            // apply the change without the password it carries.
            guard !report.change.isRedacted else {
                printError("entry \(entry) carries a password hash, which only the admin role receives: apply it as an administrator")
                throw ExitCode(1)
            }
            guard case .written(let receipt) = try await connection.single(active, { try await $0.call(.writeConfiguration([report.change])) }) else {
                printError("the active server refused the change; the entry stays open")
                throw ExitCode(1)
            }
            print(receipt.summary)
            let revision = receipt.revision
            try await connection.act(.resolveDivergence(entry: entry, resolution: .reappliedElsewhere(revision: revision)), on: holder)
        }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark an entry discarded (operator role): its change is not wanted.")
        @OptionGroup var connection: Connection
        @Argument var entry: Int64
        func run() async throws {
            let (holder, _) = try await Divergence.find(entry, connection)
            try await connection.act(.resolveDivergence(entry: entry, resolution: .discard), on: holder)
        }
    }

    static func find(_ id: Int64, _ connection: Connection) async throws -> (Endpoint, DivergenceReport) {
        let results = try await connection.eachServer { session in try await session.call(.divergence) }
        for (endpoint, result) in results {
            if case .success(.divergence(let entries)) = result, let entry = entries.first(where: { $0.id == id && $0.status == "open" }) {
                return (endpoint, entry)
            }
        }
        printError("no open divergence entry \(id) (vcom-admin divergence list shows them)")
        throw ExitCode(1)
    }
}
