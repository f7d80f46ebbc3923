import AdminProtocol
import Wire
import ConfigModel
import ConfigStore
import Foundation

/// A new pair's first configuration, written into the primary's data directory before its
/// first start (`vcom-server bootstrap`): a document, demo operators, an administrator.
public enum FirstConfiguration {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    public struct Request: Sendable {
        public var dataDirectory: String
        /// A configuration document (JSON, docs/config-store.md) to import.
        public var document: String?
        /// Demo operators op0, op1, ... with one password and keys on demo party lines.
        public var demoOperators: Int?
        public var demoPassword = "vcom-demo"
        public var operatorsPerLine = 20
        /// An administrator to add, with its role and password (SCRAM verifier stored).
        public var admin: (name: String, role: AdminRole, password: String)?
        /// Replace a configuration already there.
        public var force = false

        public init(dataDirectory: String) { self.dataDirectory = dataDirectory }
    }

    /// Writes what `request` asks for; the summary line to print.
    public static func write(_ request: Request) throws -> String {
        if let count = request.demoOperators, !(1...ConfigLimits.operators).contains(count) {
            throw Failure("--demo-operators must be 1 to \(ConfigLimits.operators)")
        }
        try DataDirectory.secure(URL(fileURLWithPath: request.dataDirectory)).forEach { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }
        let store = try ConfigStore(path: URL(fileURLWithPath: request.dataDirectory).appendingPathComponent("config.sqlite").path)
        let adminOnly = request.document == nil && request.demoOperators == nil
        guard store.position.revision == 0 || request.force || adminOnly else {
            throw Failure("\(request.dataDirectory) already holds a configuration (revision \(store.position.revision)); use --force to replace it")
        }
        // Bootstrap records carry epoch 0: written before any server served.
        try store.setWriteEpoch(max(0, store.position.epoch))
        var written = 0
        if let document = request.document {
            written += try store.importDocument(try String(contentsOfFile: document, encoding: .utf8)).count
        }
        var changes: [ConfigChange] = []
        if let count = request.demoOperators {
            let hash = try PasswordHasher().hash(request.demoPassword)
            let perLine = max(1, request.operatorsPerLine)
            changes += (0..<max(1, (count + perLine - 1) / perLine)).map { .putPartyLine(PartyLine(name: "Line-\($0)")) }
            for n in 0..<count {
                changes.append(.putOperator(Operator(username: "op\(n)", displayName: "Operator \(n)", passwordHash: hash)))
                changes.append(
                    .setKeys(username: "op\(n)", keys: [PanelKey(slot: 1, talk: true, listen: true, target: .partyLine("Line-\(n / perLine)"), latching: true)]))
            }
        }
        if let admin = request.admin {
            // The admin port logs in with SCRAM-SHA-256: what is stored is its verifier.
            changes.append(.putAdmin(AdminAccount(username: admin.name, passwordHash: try ScramVerifier(password: admin.password).text, role: admin.role)))
        }
        for start in stride(from: 0, to: changes.count, by: ConfigLimits.changesPerWrite) {
            written += try store.write(Array(changes[start..<min(start + ConfigLimits.changesPerWrite, changes.count)])).count
        }
        return "bootstrap: \(written) changes written to \(request.dataDirectory)/config.sqlite (revision \(store.position.revision))"
    }
}
