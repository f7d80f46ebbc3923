import AdminProtocol
import ArgumentParser
import ConfigModel
import Foundation
import ServerRuntime
import Wire

/// `vcom-server bootstrap`: the documented way to give a new pair its first configuration.
struct Bootstrap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Loads a first configuration into a primary's data directory, before its first start.",
        discussion: """
            Imports a configuration document (the JSON of docs/config-store.md) into \
            DATA-DIR/config.sqlite in one transaction; refuses a store that already holds a \
            configuration unless --force. The secondary needs no bootstrap: it copies the \
            primary's configuration over the peer link. --demo-operators N adds op0, op1, ... \
            with the --demo-password (what `make demo` uses).
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
        guard document != nil || demoOperators != nil || admin != nil else { throw ValidationError("give --document, --demo-operators or --admin") }
        var request = FirstConfiguration.Request(dataDirectory: dataDir)
        (request.document, request.demoOperators, request.demoPassword) = (document, demoOperators, demoPassword)
        (request.operatorsPerLine, request.force) = (operatorsPerLine, force)
        if let admin {
            guard let password = ProcessInfo.processInfo.environment["VCOM_ADMIN_PASSWORD"], !password.isEmpty else {
                throw ValidationError("--admin needs the password in VCOM_ADMIN_PASSWORD (never on the command line)")
            }
            guard let role = AdminRole.allCases.first(where: { $0.description == adminRole }) else {
                throw ValidationError("--admin-role must be viewer, operator or admin (not '\(adminRole)')")
            }
            request.admin = (admin, role, password)
        }
        print(try FirstConfiguration.write(request))
    }
}

/// `vcom-server hash-password`: a stored hash for a configuration document.
struct HashPassword: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prints the stored scrypt hash of a password read from standard input (one line).")

    func run() throws {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw ValidationError("no password on standard input") }
        print(try PasswordHasher().hash(line))
    }
}
