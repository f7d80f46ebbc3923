import ConfigModel
import Foundation
import GRDB
import NIOCore
import PairModel
import Wire

/// The SQLite schema and the row-level reads and writes behind `ConfigStore`.
///
/// WAL journal with `synchronous = FULL`: a transaction that returned has reached the disk,
/// so an acknowledged change survives a `kill -9` and a power cut alike. A crash mid-write
/// leaves SQLite's previous committed state, never half of a change.
enum ConfigDatabase {
    static func open(path: String) throws -> DatabaseQueue {
        var configuration = GRDB.Configuration()
        configuration.journalMode = .wal
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Checkpoints run in the background (WALCheckpointer), never inside a commit.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
        }
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try migrator.migrate(queue)
        return queue
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE operators (
                        username_key TEXT PRIMARY KEY, username TEXT NOT NULL, id INTEGER NOT NULL,
                        display_name TEXT NOT NULL, password_hash TEXT NOT NULL, enabled INTEGER NOT NULL);
                    CREATE TABLE party_lines (name_key TEXT PRIMARY KEY, name TEXT NOT NULL, id INTEGER NOT NULL);
                    CREATE TABLE panel_keys (
                        owner_key TEXT NOT NULL, slot INTEGER NOT NULL, talk INTEGER NOT NULL, listen INTEGER NOT NULL,
                        target_kind INTEGER NOT NULL, target TEXT NOT NULL, latching INTEGER NOT NULL,
                        PRIMARY KEY (owner_key, slot));
                    CREATE TABLE admins (username_key TEXT PRIMARY KEY, username TEXT NOT NULL, password_hash TEXT NOT NULL, role INTEGER NOT NULL);
                    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE changes (revision INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, committed_at_ms INTEGER NOT NULL, body BLOB NOT NULL);
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                    CREATE TABLE journal (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, revision INTEGER NOT NULL, epoch INTEGER NOT NULL,
                        committed_at_ms INTEGER NOT NULL, body BLOB NOT NULL, detected_at_ms INTEGER NOT NULL,
                        status TEXT NOT NULL DEFAULT 'open', note TEXT NOT NULL DEFAULT '');
                    """)
        }
        migrator.registerMigration("v2: chain hashes and epoch history") { db in
            // Content identity of every record, and where each epoch starts (never pruned),
            // so replication can compare histories by content and judge a follower that is
            // far behind (docs/config-store.md, "Replication").
            try db.execute(
                sql: """
                    ALTER TABLE changes ADD COLUMN chain BLOB;
                    CREATE TABLE epochs (epoch INTEGER PRIMARY KEY, start_revision INTEGER NOT NULL);
                    CREATE TABLE anchors (key TEXT PRIMARY KEY, value BLOB NOT NULL);
                    """)
            // Existing records get their chains; a log that was already pruned starts from an
            // unknown base, recorded as the zero chain.
            var chain = ChainHash.zero
            for row in try Row.fetchAll(db, sql: "SELECT revision, epoch, body FROM changes ORDER BY revision") {
                let body: Data = row["body"]
                chain = ConfigChain.next(after: chain, revision: UInt64(row["revision"] as Int64), epoch: UInt64(row["epoch"] as Int64), body: body)
                try db.execute(sql: "UPDATE changes SET chain = ? WHERE revision = ?", arguments: [Data(chain.bytes), row["revision"] as Int64])
            }
            try db.execute(sql: "INSERT INTO epochs (epoch, start_revision) SELECT epoch, MIN(revision) FROM changes GROUP BY epoch")
            let logStart = max(1, try meta("log_start", in: db))
            if logStart > 1 {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO epochs (epoch, start_revision) VALUES (?, ?)",
                    arguments: [Int64(try meta("base_epoch", in: db)), Int64(logStart - 1)])
            }
        }
        migrator.registerMigration("v3: revoked sessions") { db in
            try db.execute(
                sql: """
                    CREATE TABLE revoked_sessions (
                        key TEXT PRIMARY KEY, username TEXT NOT NULL, issued_at_ms INTEGER NOT NULL,
                        expires_at_ms INTEGER NOT NULL, revoked_at_ms INTEGER NOT NULL);
                    """)
        }
        return migrator
    }

    /// Runs a statement from the connection's cache: applying a catch-up of 100,000 records
    /// runs the same dozen statements over and over, and compiling each one every time
    /// would cost more than executing it.
    static func run(_ db: Database, sql: String, arguments: StatementArguments = StatementArguments()) throws {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }

    // MARK: Entities

    static func persist(_ change: ConfigChange, in db: Database) throws {
        switch change {
        case .putOperator(let value):
            try run(db, 
                sql: """
                    INSERT INTO operators (username_key, username, id, display_name, password_hash, enabled) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (username_key) DO UPDATE SET username = excluded.username, id = excluded.id,
                    display_name = excluded.display_name, password_hash = excluded.password_hash, enabled = excluded.enabled
                    """,
                arguments: [nameKey(value.username), value.username, value.id, value.displayName, value.passwordHash, value.enabled])
        case .removeOperator(let username):
            try run(db, sql: "DELETE FROM operators WHERE username_key = ?", arguments: [nameKey(username)])
            try run(db, sql: "DELETE FROM panel_keys WHERE owner_key = ?", arguments: [nameKey(username)])
        case .putPartyLine(let value):
            try run(db, 
                sql: "INSERT INTO party_lines (name_key, name, id) VALUES (?, ?, ?) ON CONFLICT (name_key) DO UPDATE SET name = excluded.name, id = excluded.id",
                arguments: [nameKey(value.name), value.name, value.id])
        case .removePartyLine(let name):
            try run(db, sql: "DELETE FROM party_lines WHERE name_key = ?", arguments: [nameKey(name)])
        case .setKeys(let username, let keys):
            try run(db, sql: "DELETE FROM panel_keys WHERE owner_key = ?", arguments: [nameKey(username)])
            for key in keys {
                let (kind, target): (Int, String) =
                    switch key.target {
                    case .partyLine(let name): (1, name)
                    case .operator(let name): (2, name)
                    }
                try run(db, 
                    sql: "INSERT INTO panel_keys (owner_key, slot, talk, listen, target_kind, target, latching) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    arguments: [nameKey(username), key.slot, key.talk, key.listen, kind, target, key.latching])
            }
        case .putAdmin(let value):
            try run(db, 
                sql: """
                    INSERT INTO admins (username_key, username, password_hash, role) VALUES (?, ?, ?, ?)
                    ON CONFLICT (username_key) DO UPDATE SET username = excluded.username, password_hash = excluded.password_hash, role = excluded.role
                    """,
                arguments: [nameKey(value.username), value.username, value.passwordHash, Int(value.role.rawValue)])
        case .removeAdmin(let username):
            try run(db, sql: "DELETE FROM admins WHERE username_key = ?", arguments: [nameKey(username)])
        case .setSetting(let key, let value):
            try run(db, sql: "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", arguments: [key, value])
        case .removeSetting(let key):
            try run(db, sql: "DELETE FROM settings WHERE key = ?", arguments: [key])
        case .revokeSession(let value):
            try run(
                db, sql: "INSERT OR REPLACE INTO revoked_sessions (key, username, issued_at_ms, expires_at_ms, revoked_at_ms) VALUES (?, ?, ?, ?, ?)",
                arguments: [value.key, value.username, Int64(value.issuedAtMs), Int64(value.expiresAtMs), Int64(value.revokedAtMs)])
        }
    }

    /// Writes the final state of every entry the transaction touched, once each, however
    /// many of its changes touched it: a batch of 2,000 records that edits 200 operators
    /// writes 200 operator rows, not 2,000 (the change log still gets every record).
    static func persistFinalState(of subjects: Set<ChangeSubject>, from configuration: SystemConfiguration, in db: Database) throws {
        for subject in subjects {
            switch subject {
            case .operator(let key):
                try persist(configuration.operators[key].map { .putOperator($0) } ?? .removeOperator(username: key), in: db)
            case .keys(let key):
                try persist(.setKeys(username: key, keys: configuration.keys[key] ?? []), in: db)
            case .partyLine(let key):
                try persist(configuration.partyLines[key].map { .putPartyLine($0) } ?? .removePartyLine(name: key), in: db)
            case .admin(let key):
                try persist(configuration.admins[key].map { .putAdmin($0) } ?? .removeAdmin(username: key), in: db)
            case .setting(let key):
                try persist(configuration.settings[key].map { .setSetting(key: key, value: $0) } ?? .removeSetting(key: key), in: db)
            case .revokedSession(let key, let prunedUpTo):
                // The same entries the in-memory apply dropped (`Validation`): expired by then.
                try run(db, sql: "DELETE FROM revoked_sessions WHERE expires_at_ms <= ?", arguments: [Int64(prunedUpTo)])
                if let value = configuration.revokedSessions[key] {
                    try persist(.revokeSession(value), in: db)
                } else {
                    try run(db, sql: "DELETE FROM revoked_sessions WHERE key = ?", arguments: [key])
                }
            }
        }
    }

    /// Replaces every entity with the given configuration.
    static func replaceAll(with configuration: SystemConfiguration, in db: Database) throws {
        for table in ["operators", "party_lines", "panel_keys", "admins", "settings", "revoked_sessions"] {
            try db.execute(sql: "DELETE FROM \(table)")
        }
        for value in configuration.operators.values { try persist(.putOperator(value), in: db) }
        for value in configuration.partyLines.values { try persist(.putPartyLine(value), in: db) }
        for (owner, keys) in configuration.keys { try persist(.setKeys(username: owner, keys: keys), in: db) }
        for value in configuration.admins.values { try persist(.putAdmin(value), in: db) }
        for (key, value) in configuration.settings { try persist(.setSetting(key: key, value: value), in: db) }
        for value in configuration.revokedSessions.values { try persist(.revokeSession(value), in: db) }
    }

    static func loadConfiguration(_ db: Database) throws -> SystemConfiguration {
        var configuration = SystemConfiguration()
        for row in try Row.fetchAll(db, sql: "SELECT * FROM operators") {
            let value = Operator(
                id: UInt32(row["id"] as Int64), username: row["username"], displayName: row["display_name"],
                passwordHash: row["password_hash"], enabled: row["enabled"])
            configuration.operators[nameKey(value.username)] = value
        }
        for row in try Row.fetchAll(db, sql: "SELECT * FROM party_lines") {
            let value = PartyLine(id: UInt32(row["id"] as Int64), name: row["name"])
            configuration.partyLines[nameKey(value.name)] = value
        }
        for row in try Row.fetchAll(db, sql: "SELECT * FROM panel_keys ORDER BY owner_key, slot") {
            let target: String = row["target"]
            let key = PanelKey(
                slot: row["slot"], talk: row["talk"], listen: row["listen"],
                target: (row["target_kind"] as Int) == 1 ? .partyLine(target) : .operator(target), latching: row["latching"])
            configuration.keys[row["owner_key"], default: []].append(key)
        }
        for row in try Row.fetchAll(db, sql: "SELECT * FROM admins") {
            guard let role = AdminRole(rawValue: UInt8(row["role"] as Int)) else { continue }
            let value = AdminAccount(username: row["username"], passwordHash: row["password_hash"], role: role)
            configuration.admins[nameKey(value.username)] = value
        }
        for row in try Row.fetchAll(db, sql: "SELECT * FROM settings") {
            configuration.settings[row["key"]] = row["value"]
        }
        for row in try Row.fetchAll(db, sql: "SELECT * FROM revoked_sessions") {
            let value = RevokedSession(
                username: row["username"], issuedAtMs: UInt64(row["issued_at_ms"] as Int64), expiresAtMs: UInt64(row["expires_at_ms"] as Int64),
                revokedAtMs: UInt64(row["revoked_at_ms"] as Int64))
            configuration.revokedSessions[value.key] = value
        }
        configuration.rebuildIndexes(idFloor: UInt32(clamping: try meta("id_high_water", in: db)))
        return configuration
    }

    // MARK: The change log

    static func insert(_ record: ChangeRecord, in db: Database) throws {
        try run(
            db, sql: "INSERT INTO changes (revision, epoch, committed_at_ms, body, chain) VALUES (?, ?, ?, ?, ?)",
            arguments: [
                Int64(record.revision), Int64(record.epoch), Int64(record.committedAtMs), Data(try record.body()),
                Data(record.chain.bytes),
            ])
    }

    static func record(from row: Row) throws -> ChangeRecord {
        let body: Data = row["body"]
        var buffer = ByteBuffer(bytes: body)
        return ChangeRecord(
            revision: UInt64(row["revision"] as Int64), epoch: UInt64(row["epoch"] as Int64),
            committedAtMs: UInt64(row["committed_at_ms"] as Int64), change: try ConfigChange(wire: &buffer),
            chain: chain(row["chain"]) ?? .zero)
    }

    static func chain(_ value: Data?) -> ChainHash? { value.flatMap { ChainHash($0) } }

    static func anchor(_ key: String, in db: Database) throws -> ChainHash? {
        chain(try Data.fetchOne(db, sql: "SELECT value FROM anchors WHERE key = ?", arguments: [key]))
    }

    static func setAnchor(_ key: String, _ value: ChainHash, in db: Database) throws {
        try run(db, sql: "INSERT OR REPLACE INTO anchors (key, value) VALUES (?, ?)", arguments: [key, Data(value.bytes)])
    }

    static func epochHistory(in db: Database) throws -> [EpochStart] {
        try Row.fetchAll(db, sql: "SELECT epoch, start_revision FROM epochs ORDER BY start_revision, epoch").map {
            EpochStart(epoch: UInt64($0["epoch"] as Int64), startRevision: UInt64($0["start_revision"] as Int64))
        }
    }

    static func replaceEpochHistory(_ history: [EpochStart], in db: Database) throws {
        try db.execute(sql: "DELETE FROM epochs")
        for start in history { try addEpoch(start, in: db) }
    }

    static func addEpoch(_ start: EpochStart, in db: Database) throws {
        try run(
            db, sql: "INSERT OR IGNORE INTO epochs (epoch, start_revision) VALUES (?, ?)",
            arguments: [Int64(start.epoch), Int64(start.startRevision)])
    }

    static func meta(_ key: String, in db: Database) throws -> UInt64 {
        UInt64(try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) ?? 0)
    }

    static func setMeta(_ key: String, _ value: UInt64, in db: Database) throws {
        try run(db, sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [key, Int64(value)])
    }
}
