import AdminProtocol
import Foundation
import GRDB
import NIOConcurrencyHelpers

/// Every administrator action, in `audit.sqlite` in the data directory: who, from where, what,
/// when, and how it ended. Appended before the reply is sent; never rewritten.
///
/// What a stranger can make it write is bounded: every field is capped (a 60 KB user name was
/// once written whole, 72 KiB a try), and refused attempts beyond `RefusalSummaries`' budget
/// are counted and written as one summary row per source and minute instead of a row each.
public final class AuditLog: Sendable {
    /// Longest field kept, in characters; the rest is replaced by "…(N bytes)".
    static let fieldLimits = (user: 64, source: 64, action: 256, result: 512)
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

    /// `text` cut to `limit` characters, saying how long it was.
    static func capped(_ text: String, _ limit: Int) -> String {
        guard text.count > limit else { return text }
        return String(text.prefix(limit)) + "…(\(text.utf8.count) bytes)"
    }

    public func append(_ record: AuditRecord) throws {
        let limits = Self.fieldLimits
        try database.write { db in
            try db.execute(
                sql: "INSERT INTO audit (at_ms, user, source, action, result) VALUES (?, ?, ?, ?, ?)",
                arguments: [
                    record.atMs, Self.capped(record.user, limits.user), Self.capped(record.source, limits.source),
                    Self.capped(record.action, limits.action), Self.capped(record.result, limits.result),
                ])
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

/// How many refused attempts are written one by one: the first `perSource` from each source
/// in a minute, and `overall` from all sources; the rest are counted and written as one row
/// per source when its minute ends ("N more refused attempts ... not recorded one by one").
/// A pure value: the caller gives the time and keeps it under a lock.
struct RefusalSummaries: Sendable {
    static let window: TimeInterval = 60
    let perSource: Int
    let overall: Int
    private var windows: [String: (start: Date, written: Int, suppressed: Int, last: Date)] = [:]
    private var overallWindow: (start: Date, written: Int) = (.distantPast, 0)

    init(perSource: Int = 10, overall: Int = 100) {
        self.perSource = perSource
        self.overall = overall
    }

    /// Whether this refusal gets a row of its own; summaries of windows that ended are
    /// returned to be written first.
    mutating func note(source: String, at now: Date) -> (write: Bool, summaries: [AuditRecord]) {
        var summaries = flush(at: now)
        if now.timeIntervalSince(overallWindow.start) >= Self.window { overallWindow = (now, 0) }
        var window = windows[source] ?? (now, 0, 0, now)
        window.last = now
        let write = window.written < perSource && overallWindow.written < overall
        if write {
            window.written += 1
            overallWindow.written += 1
        } else {
            window.suppressed += 1
        }
        windows[source] = window
        if windows.count > 10_000 { summaries += flush(at: .distantFuture) }
        return (write, summaries)
    }

    /// Summary rows for the windows that ended by `now` (all of them at `.distantFuture`).
    mutating func flush(at now: Date) -> [AuditRecord] {
        var rows: [AuditRecord] = []
        for (source, window) in windows where now.timeIntervalSince(window.start) >= Self.window {
            windows[source] = nil
            guard window.suppressed > 0 else { continue }
            rows.append(
                AuditRecord(
                    atMs: Int64(window.last.timeIntervalSince1970 * 1000), user: "-", source: source, action: "refused attempts (summary)",
                    result: "\(window.suppressed) more refused attempts from this address between \(window.start) and \(window.last), not recorded one by one"))
        }
        return rows
    }
}
