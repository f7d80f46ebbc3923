import AdminProtocol
import ArgumentParser
import ConfigModel
import ConfigStore
import Foundation
import PairModel
import Wire

/// `vcom-server bootstrap`: the documented way to give a new pair its first configuration.
struct Bootstrap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Loads a first configuration into a primary's data directory, before its first start.",
        discussion: """
            Imports a configuration document (the JSON of docs/config-store.md: operators with \
            password hashes, party lines, keys, admins, settings) into DATA-DIR/config.sqlite, \
            in one transaction. Refuses a store that already holds a configuration unless \
            --force (then the document replaces it, as one more write). The secondary needs no \
            bootstrap: it copies the primary's configuration over the peer link.

            --demo-operators N adds N operators named op0, op1, ... (all with the password \
            given by --demo-password, hashed once) and party lines for them: what `make demo` \
            and the client simulator use.
            """)

    @Option(help: "The primary's data directory.") var dataDir: String
    @Option(help: "A configuration document (JSON) to import.") var document: String?
    @Option(help: "Add this many demo operators (op0, op1, ...) with keys on demo party lines.") var demoOperators: Int?
    @Option(help: "The demo operators' password.") var demoPassword: String = "vcom-demo"
    @Option(help: "Demo operators per party line.") var operatorsPerLine: Int = 20
    @Option(help: "Also create this administrator (password from VCOM_ADMIN_PASSWORD); alone, adds it to an existing configuration.")
    var admin: String?
    @Option(help: "The administrator's role: viewer, operator or admin.") var adminRole: String = "admin"
    @Flag(help: "Replace an existing configuration.") var force = false

    func run() throws {
        guard document != nil || demoOperators != nil || admin != nil else {
            throw ValidationError("give --document, --demo-operators or --admin")
        }
        if let demoOperators, !(1...ConfigLimits.operators).contains(demoOperators) {
            throw ValidationError("--demo-operators must be 1 to \(ConfigLimits.operators)")
        }
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        let store = try ConfigStore(path: URL(fileURLWithPath: dataDir).appendingPathComponent("config.sqlite").path)
        let adminOnly = document == nil && demoOperators == nil
        guard store.position.revision == 0 || force || adminOnly else {
            throw BootstrapFailure("\(dataDir) already holds a configuration (revision \(store.position.revision)); use --force to replace it")
        }
        // Bootstrap records carry epoch 0: written before any server served.
        try store.setWriteEpoch(max(0, store.position.epoch))
        var written = 0
        if let document {
            let text = try String(contentsOfFile: document, encoding: .utf8)
            written += try store.importDocument(text).count
        }
        var changes: [ConfigChange] = []
        if let demoOperators {
            let hash = try PasswordHasher().hash(demoPassword)
            let lines = max(1, (demoOperators + operatorsPerLine - 1) / max(1, operatorsPerLine))
            changes += (0..<lines).map { .putPartyLine(PartyLine(name: "Line-\($0)")) }
            for n in 0..<demoOperators {
                changes.append(.putOperator(Operator(username: "op\(n)", displayName: "Operator \(n)", passwordHash: hash)))
                changes.append(
                    .setKeys(username: "op\(n)", keys: [PanelKey(slot: 1, talk: true, listen: true, target: .partyLine("Line-\(n / max(1, operatorsPerLine))"), latching: true)]))
            }
        }
        if let admin {
            guard let password = ProcessInfo.processInfo.environment["VCOM_ADMIN_PASSWORD"], !password.isEmpty else {
                throw ValidationError("--admin needs the password in VCOM_ADMIN_PASSWORD (never on the command line)")
            }
            guard let role = AdminRole.allCases.first(where: { $0.description == adminRole }) else {
                throw ValidationError("--admin-role must be viewer, operator or admin (not '\(adminRole)')")
            }
            // The admin port logs in with SCRAM-SHA-256: what is stored is its verifier.
            changes.append(.putAdmin(AdminAccount(username: admin, passwordHash: try ScramVerifier(password: password).text, role: role)))
        }
        for start in stride(from: 0, to: changes.count, by: ConfigLimits.changesPerWrite) {
            written += try store.write(Array(changes[start..<min(start + ConfigLimits.changesPerWrite, changes.count)])).count
        }
        print("bootstrap: \(written) changes written to \(dataDir)/config.sqlite (revision \(store.position.revision))")
    }
}

/// `vcom-server hash-password`: a stored hash for a configuration document.
struct HashPassword: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prints the stored scrypt hash of a password read from standard input (one line).")

    func run() throws {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw ValidationError("no password on standard input") }
        print(try PasswordHasher().hash(line))
    }
}

struct BootstrapFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
