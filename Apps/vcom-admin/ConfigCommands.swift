import AdminProtocol
import ArgumentParser
import ConfigModel
import Foundation
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

extension Connection {
    /// The server that serves among those given (configuration is read and written there).
    func activeServer() async throws -> Endpoint {
        let results = try await eachServer { session in try await session.call(.status) }
        for (endpoint, result) in results {
            if case .success(.status(let report)) = result, report.state == .active { return endpoint }
        }
        for (_, result) in results { if case .failure(let failure) = result { printError("\(failure)") } }
        let reachable = results.contains { if case .success = $0.1 { true } else { false } }
        printError(reachable ? "no server given serves: configuration is written on the active server" : "no server answered")
        throw ExitCode(reachable ? 1 : 2)
    }

    /// The active server's configuration and revision.
    func configuration() async throws -> (Endpoint, UInt64, SystemConfiguration) {
        let endpoint = try await activeServer()
        guard case .configuration(let revision, let configuration) = try await single(endpoint, { try await $0.call(.configuration) }) else {
            printError("\(endpoint): the configuration could not be read")
            throw ExitCode(2)
        }
        return (endpoint, revision, configuration)
    }

    /// Writes `changes` on the active server and prints how far the write got: exit 0 once
    /// the server's write concern is met (with `both`: the peer has it too), 1 when it was
    /// acknowledged as local only (kept on the serving server; a failover before the peer gets
    /// it may leave it in a divergence journal) or refused.
    @discardableResult
    func write(_ changes: [ConfigChange], to endpoint: Endpoint? = nil) async throws -> WriteReceipt {
        let target: Endpoint
        if let endpoint { target = endpoint } else { target = try await activeServer() }
        switch try await single(target, { try await $0.call(.writeConfiguration(changes)) }) {
        case .written(let receipt):
            let replication = receipt.durability.description
            if json {
                printJSON(["result": receipt.concernMet ? "ok" : "local_only", "detail": receipt.summary, "revision": receipt.revision, "replication": replication])
            } else if receipt.concernMet {
                print(receipt.summary)
            } else {
                printError("\(receipt.summary): the peer does not have it yet; a failover before it does may set it aside (vcom-admin divergence list)")
            }
            guard receipt.concernMet else { throw ExitCode(1) }
            return receipt
        case .error(_, let text):
            if json { printJSON(["result": "refused", "detail": text]) } else { printError("refused: \(text)") }
            throw ExitCode(1)
        default: throw ExitCode(2)
        }
    }

    /// A call whose answer is a sentence: printed, or exit 1 with the reason.
    func act(_ call: AdminCall, on endpoint: Endpoint) async throws {
        switch try await single(endpoint, { try await $0.call(call) }) {
        case .done(let text):
            if json { printJSON(["result": "ok", "detail": text]) } else { print(text) }
        case .error(_, let text):
            if json { printJSON(["result": "refused", "detail": text]) } else { printError("refused: \(text)") }
            throw ExitCode(1)
        default: throw ExitCode(2)
        }
    }
}

/// The value, or exit 1 with `message` (a name that does not exist, say).
func found<T>(_ value: T?, _ message: @autoclosure () -> String) throws -> T {
    guard let value else {
        printError(message())
        throw ExitCode(1)
    }
    return value
}

/// A new password for an operator or administrator: VCOM_NEW_PASSWORD, --new-password-file, or
/// typed twice on a terminal. Never the command line.
func newPassword(file: String?, for name: String) throws -> String {
    if let file {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("--new-password-file: cannot read \(file)") }
        let password = text.trimmingCharacters(in: .newlines)
        guard password.count >= 8 else { throw ValidationError("the new password must have at least 8 characters") }
        return password
    }
    if let password = ProcessInfo.processInfo.environment["VCOM_NEW_PASSWORD"] {
        guard password.count >= 8 else { throw ValidationError("the new password must have at least 8 characters") }
        return password
    }
    guard isatty(STDIN_FILENO) == 1, let first = getpass("New password for \(name): ").map({ String(cString: $0) }),
        let second = getpass("Again: ").map({ String(cString: $0) })
    else { throw ValidationError("no new password: give --new-password-file, set VCOM_NEW_PASSWORD, or run on a terminal") }
    guard first == second else { throw ValidationError("the two passwords differ") }
    guard first.count >= 8 else { throw ValidationError("the new password must have at least 8 characters") }
    return first
}

// MARK: config

struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The pair's configuration: settings, and the whole document (export, import, diff).",
        subcommands: [Get.self, Set.self, List.self, Export.self, Import.self, Diff.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One setting's value.")
        @OptionGroup var connection: Connection
        @Argument var key: String
        func run() async throws {
            let (_, _, configuration) = try await connection.configuration()
            let value = try found(configuration.settings[key], "no setting '\(key)' (vcom-admin config list shows them)")
            if connection.json { printJSON([key: value]) } else { print(value) }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a setting (operator role); written on the active server, replicated at once.")
        @OptionGroup var connection: Connection
        @Argument var key: String
        @Argument var value: String
        func run() async throws { try await connection.write([.setSetting(key: key, value: value)]) }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every setting, and how many operators, party lines and administrators there are.")
        @OptionGroup var connection: Connection
        func run() async throws {
            let (_, revision, configuration) = try await connection.configuration()
            let settings = configuration.settings.sorted { $0.key < $1.key }
            if connection.json {
                printJSON([
                    "revision": revision, "settings": Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0.value) }),
                    "operators": configuration.operators.count, "party_lines": configuration.partyLines.count, "admins": configuration.admins.count,
                ])
                return
            }
            print("revision \(revision): \(configuration.operators.count) operators, \(configuration.partyLines.count) party lines, \(configuration.admins.count) administrators")
            for (key, value) in settings { print("\(key) = \(value)") }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The whole configuration as a document (JSON), to a file or standard output.")
        @OptionGroup var connection: Connection
        @Option(help: "Write here instead of standard output.") var output: String?
        func run() async throws {
            let (_, revision, configuration) = try await connection.configuration()
            let text = ConfigDocument.export(configuration, revision: revision)
            if let output {
                try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
                print("revision \(revision) exported to \(output)")
            } else {
                print(text)
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the configuration what a document says (operator role; admin if it changes administrators): only the differences are written.")
        @OptionGroup var connection: Connection
        @Argument(help: "The document (as config export writes it).") var file: String
        func run() async throws {
            let (endpoint, _, current) = try await connection.configuration()
            let target = try Diff.load(file, current: current)
            let changes = target.changes(from: current)
            guard !changes.isEmpty else { return print("no differences: nothing written") }
            try await connection.write(changes, to: endpoint)
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What importing a document would change (nothing is written).")
        @OptionGroup var connection: Connection
        @Argument var file: String
        func run() async throws {
            let (_, _, current) = try await connection.configuration()
            let lines = try Self.load(file, current: current).differences(from: current)
            if connection.json { printJSON(["differences": lines]) } else { print(lines.isEmpty ? "no differences" : lines.joined(separator: "\n")) }
        }

        static func load(_ file: String, current: SystemConfiguration) throws -> SystemConfiguration {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                printError("cannot read \(file)")
                throw ExitCode(64)
            }
            do {
                return try ConfigDocument.parse(text, current: current)
            } catch {
                printError("\(file): \(error)")
                throw ExitCode(1)
            }
        }
    }
}

// MARK: users (operators) and admins

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator accounts (the people at the panels).", subcommands: [List.self, Add.self, Remove.self, Passwd.self, Disable.self, Enable.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every operator, enabled or not.")
        @OptionGroup var connection: Connection
        func run() async throws {
            let (_, _, configuration) = try await connection.configuration()
            let rows = configuration.sortedOperators
            if connection.json {
                printJSON(["users": rows.map { ["username": $0.username, "display_name": $0.displayName, "enabled": $0.enabled, "id": $0.id] as [String: Any] }])
            } else {
                for user in rows { print("\(user.username)  \(user.displayName)" + (user.enabled ? "" : "  (disabled)")) }
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A new operator (operator role); the password is hashed here, never sent.")
        @OptionGroup var connection: Connection
        @Argument var username: String
        @Option(help: "The name shown on panels.") var displayName: String?
        @Option(help: "A file holding the new password (else VCOM_NEW_PASSWORD, else a prompt).") var newPasswordFile: String?
        func run() async throws {
            let (endpoint, _, configuration) = try await connection.configuration()
            if configuration.operator(username) != nil {
                printError("operator '\(username)' exists (vcom-admin users passwd changes a password)")
                throw ExitCode(1)
            }
            let hash = try PasswordHasher().hash(try newPassword(file: newPasswordFile, for: username))
            try await connection.write([.putOperator(Operator(username: username, displayName: displayName ?? username, passwordHash: hash))], to: endpoint)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an operator (operator role); their sessions end on both servers.")
        @OptionGroup var connection: Connection
        @Argument var username: String
        func run() async throws { try await connection.write([.removeOperator(username: username)]) }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A new password for an operator; their session tokens stop working at once.")
        @OptionGroup var connection: Connection
        @Argument var username: String
        @Option(help: "A file holding the new password (else VCOM_NEW_PASSWORD, else a prompt).") var newPasswordFile: String?
        func run() async throws {
            let (endpoint, _, configuration) = try await connection.configuration()
            var user = try found(configuration.operator(username), "no operator '\(username)'")
            user.passwordHash = try PasswordHasher().hash(try newPassword(file: newPasswordFile, for: username))
            try await connection.write([.putOperator(user)], to: endpoint)
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable an operator: logins and session tokens refused at once, on both servers.")
        @OptionGroup var connection: Connection
        @Argument var username: String
        func run() async throws { try await Users.setEnabled(false, username, connection) }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled operator again.")
        @OptionGroup var connection: Connection
        @Argument var username: String
        func run() async throws { try await Users.setEnabled(true, username, connection) }
    }

    static func setEnabled(_ enabled: Bool, _ username: String, _ connection: Connection) async throws {
        let (endpoint, _, configuration) = try await connection.configuration()
        var user = try found(configuration.operator(username), "no operator '\(username)'")
        user.enabled = enabled
        try await connection.write([.putOperator(user)], to: endpoint)
    }
}

struct Admins: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Administrator accounts (admin role to change them); stored as SCRAM verifiers, replicated like the rest.",
        subcommands: [List.self, Add.self, Remove.self, Passwd.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every administrator and role.")
        @OptionGroup var connection: Connection
        func run() async throws {
            let (_, _, configuration) = try await connection.configuration()
            if connection.json {
                printJSON(["admins": configuration.sortedAdmins.map { ["username": $0.username, "role": "\($0.role)"] }])
            } else {
                for admin in configuration.sortedAdmins { print("\(admin.username)  \(admin.role)") }
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A new administrator: viewer, operator or admin.")
        @OptionGroup var connection: Connection
        @Argument var username: String
        @Option(help: "viewer, operator or admin.") var role: String
        @Option(help: "A file holding the new password (else VCOM_NEW_PASSWORD, else a prompt).") var newPasswordFile: String?
        func validate() throws {
            guard AdminRole.allCases.contains(where: { $0.description == role }) else { throw ValidationError("--role must be viewer, operator or admin") }
        }
        func run() async throws {
            let role = AdminRole.allCases.first { $0.description == self.role }!
            let verifier = try ScramVerifier(password: try newPassword(file: newPasswordFile, for: username)).text
            try await connection.write([.putAdmin(AdminAccount(username: username, passwordHash: verifier, role: role))])
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an administrator (never the last one with the admin role).")
        @OptionGroup var connection: Connection
        @Argument var username: String
        func run() async throws { try await connection.write([.removeAdmin(username: username)]) }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A new password for an administrator (also converts an old scrypt account).")
        @OptionGroup var connection: Connection
        @Argument var username: String
        @Option(help: "A file holding the new password (else VCOM_NEW_PASSWORD, else a prompt).") var newPasswordFile: String?
        func run() async throws {
            let (endpoint, _, configuration) = try await connection.configuration()
            var admin = try found(configuration.admin(username), "no administrator '\(username)'")
            admin.passwordHash = try ScramVerifier(password: try newPassword(file: newPasswordFile, for: username)).text
            try await connection.write([.putAdmin(admin)], to: endpoint)
        }
    }
}

// MARK: party lines and keys

struct PartyLines: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "partylines", abstract: "Party lines.", subcommands: [List.self, Add.self, Remove.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every party line.")
        @OptionGroup var connection: Connection
        func run() async throws {
            let (_, _, configuration) = try await connection.configuration()
            if connection.json {
                printJSON(["party_lines": configuration.sortedPartyLines.map { ["name": $0.name, "id": $0.id] as [String: Any] }])
            } else {
                for line in configuration.sortedPartyLines { print("\(line.name)  (id \(line.id))") }
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A new party line.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        func run() async throws { try await connection.write([.putPartyLine(PartyLine(name: name))]) }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a party line (refused while keys use it).")
        @OptionGroup var connection: Connection
        @Argument var name: String
        func run() async throws { try await connection.write([.removePartyLine(name: name)]) }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "An operator's panel keys.", subcommands: [List.self, Set.self, Clear.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "An operator's keys.")
        @OptionGroup var connection: Connection
        @Argument var username: String
        func run() async throws {
            let (_, _, configuration) = try await connection.configuration()
            guard configuration.operator(username) != nil else {
                printError("no operator '\(username)'")
                throw ExitCode(1)
            }
            let keys = configuration.keys(of: username)
            if connection.json {
                printJSON(["keys": keys.map { ["slot": $0.slot, "talk": $0.talk, "listen": $0.listen, "latching": $0.latching, "target": Keys.describe($0.target)] as [String: Any] }])
            } else {
                for key in keys {
                    print("slot \(key.slot): \([key.talk ? "talk" : nil, key.listen ? "listen" : nil].compactMap { $0 }.joined(separator: "+")) \(Keys.describe(key.target))"
                        + (key.latching ? " (latching)" : ""))
                }
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set one key of an operator's panel (the other keys stay).")
        @OptionGroup var connection: Connection
        @Argument var username: String
        @Option(help: "Slot 1 to 64.") var slot: Int
        @Option(help: "A party line's name.") var line: String?
        @Option(name: .customLong("to-user"), help: "Another operator's user name (a direct call).") var toUser: String?
        @Flag(help: "The key talks.") var talk = false
        @Flag(help: "The key listens.") var listen = false
        @Flag(help: "Latching instead of momentary.") var latching = false
        func validate() throws {
            guard (line == nil) != (toUser == nil) else { throw ValidationError("give exactly one of --line or --to-user") }
            guard talk || listen else { throw ValidationError("a key talks, listens or both: give --talk and/or --listen") }
        }
        func run() async throws {
            let (endpoint, _, configuration) = try await connection.configuration()
            let target: KeyBinding = line.map { .partyLine($0) } ?? .operator(toUser!)
            var keys = configuration.keys(of: username).filter { $0.slot != slot }
            keys.append(PanelKey(slot: slot, talk: talk, listen: listen, target: target, latching: latching))
            try await connection.write([.setKeys(username: username, keys: keys.sorted { $0.slot < $1.slot })], to: endpoint)
        }
    }

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove one key of an operator's panel.")
        @OptionGroup var connection: Connection
        @Argument var username: String
        @Option(help: "Slot 1 to 64.") var slot: Int
        func run() async throws {
            let (endpoint, _, configuration) = try await connection.configuration()
            let keys = configuration.keys(of: username)
            guard keys.contains(where: { $0.slot == slot }) else {
                printError("\(username) has no key in slot \(slot)")
                throw ExitCode(1)
            }
            try await connection.write([.setKeys(username: username, keys: keys.filter { $0.slot != slot })], to: endpoint)
        }
    }

    static func describe(_ target: KeyBinding) -> String {
        switch target {
        case .partyLine(let name): "line \(name)"
        case .operator(let name): "user \(name)"
        }
    }
}
