import AdminProtocol
import Foundation
import GRDB

/// Every administrator action, in `audit.sqlite` in the data directory: who, from where, what,
/// when, and how it ended. Appended before the reply is sent; never rewritten.
public final class AuditLog: Sendable {
    let database: DatabaseQueue

    public init(path: String) throws {
        var configuration = GRDB.Configuration()
        configuration.journalMode = .wal
        configuration.busyMode = .timeout(5)
        database = try DatabaseQueue(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE audit (
                        sequence INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, user TEXT NOT NULL,
                        source TEXT NOT NULL, action TEXT NOT NULL, result TEXT NOT NULL);
                    """)
        }
        try migrator.migrate(database)
    }

    public func append(_ record: AuditRecord) throws {
        try database.write { db in
            try db.execute(
                sql: "INSERT INTO audit (at_ms, user, source, action, result) VALUES (?, ?, ?, ?, ?)",
                arguments: [record.atMs, record.user, record.source, String(record.action.prefix(1000)), String(record.result.prefix(1000))])
        }
    }

    /// The newest `limit` records, oldest first.
    public func recent(_ limit: Int) throws -> [AuditRecord] {
        try database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT at_ms, user, source, action, result FROM
                    (SELECT * FROM audit ORDER BY sequence DESC LIMIT ?) ORDER BY sequence
                    """, arguments: [max(0, limit)]
            ).map { row in
                AuditRecord(atMs: row["at_ms"], user: row["user"], source: row["source"], action: row["action"], result: row["result"])
            }
        }
    }
}
