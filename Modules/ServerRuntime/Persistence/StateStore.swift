import ActivationPolicy
import Foundation
import GRDB
import PairModel
import Wire

/// What the server keeps besides its configuration, in `state.sqlite` in the data
/// directory: the policy's persistent state (durable before the actions that depend on it),
/// the incidents, and a few facts learned from the peer. WAL with synchronous = FULL: a
/// write that returned survives a kill -9 and a power cut.
public final class StateStore: IncidentRecording, Sendable {
    let database: DatabaseQueue

    public init(path: String) throws {
        var configuration = GRDB.Configuration()
        configuration.journalMode = .wal
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        database = try DatabaseQueue(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE policy_state (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
                    CREATE TABLE incidents (
                        id TEXT PRIMARY KEY, sequence INTEGER NOT NULL, json TEXT NOT NULL, acknowledged_at REAL);
                    CREATE TABLE facts (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    """)
        }
        try migrator.migrate(database)
    }

    // MARK: Policy state

    public func loadPolicyState() throws -> PersistentState? {
        try database.read { db in
            try String.fetchOne(db, sql: "SELECT json FROM policy_state WHERE id = 1").map {
                try JSONDecoder().decode(PersistentState.self, from: Data($0.utf8))
            }
        }
    }

    public func savePolicyState(_ state: PersistentState) throws {
        let json = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO policy_state (id, json) VALUES (1, ?)", arguments: [json])
        }
    }

    // MARK: Incidents

    public func record(_ incident: Incident, at wall: Date) throws {
        let stored = StoredIncident(incident, at: wall)
        let json = String(decoding: try JSONEncoder().encode(stored), as: UTF8.self)
        try database.write { db in
            let sequence = (try Int.fetchOne(db, sql: "SELECT MAX(sequence) FROM incidents") ?? 0) + 1
            try db.execute(
                sql: "INSERT OR REPLACE INTO incidents (id, sequence, json) VALUES (?, ?, ?)", arguments: [incident.id, sequence, json])
        }
    }

    public func acknowledge(_ id: String, at wall: Date) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE incidents SET acknowledged_at = ? WHERE id = ?", arguments: [wall.timeIntervalSince1970, id])
        }
    }

    public func incidents() throws -> [StoredIncident] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT json, acknowledged_at FROM incidents ORDER BY sequence").map { row in
                var incident = try JSONDecoder().decode(StoredIncident.self, from: Data((row["json"] as String).utf8))
                incident.acknowledgedAt = (row["acknowledged_at"] as Double?).map { Date(timeIntervalSince1970: $0) }
                return incident
            }
        }
    }

    // MARK: Facts

    public func fact(_ key: String) throws -> String? {
        try database.read { db in try String.fetchOne(db, sql: "SELECT value FROM facts WHERE key = ?", arguments: [key]) }
    }

    public func setFact(_ key: String, _ value: String) throws {
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO facts (key, value) VALUES (?, ?)", arguments: [key, value])
        }
    }
}
