import Foundation
import GRDB
import NIOCore
import Wire
import Synchronization

/// The system configuration of one server: durable in SQLite, served from memory.
///
/// The active server writes; each change is one transaction with the next revision,
/// stamped with the writing server's epoch. A standby applies the active server's records
/// in order and idempotently. Calls block on disk I/O: call them off the event loops.
public final class ConfigStore: Sendable {
    public struct Position: Equatable, Sendable {
        public var revision: UInt64
        /// Epoch of the record at `revision` (0 for an empty store).
        public var epoch: UInt64
        /// The oldest revision still in the change log; older ones need a snapshot.
        public var logStart: UInt64

        public init(revision: UInt64, epoch: UInt64, logStart: UInt64) {
            self.revision = revision
            self.epoch = epoch
            self.logStart = logStart
        }
    }

    struct State: Sendable {
        var configuration = SystemConfiguration()
        var position = Position(revision: 0, epoch: 0, logStart: 1)
        /// Set while this server is active; writes are refused otherwise.
        var writeEpoch: UInt64?
    }

    let database: DatabaseQueue
    private let checkpointer: WALCheckpointer
    private let state: Mutex<State>
    /// Serializes writers; readers only take `state` for a moment.
    private let writer = Mutex(())
    /// Records kept in the log for catching up; older ones are pruned.
    public let retention: UInt64

    public static let defaultRetention: UInt64 = 200_000

    public init(path: String, retention: UInt64 = ConfigStore.defaultRetention) throws(ConfigError) {
        self.retention = max(1, retention)
        do {
            database = try ConfigDatabase.open(path: path)
            let loaded = try database.read { db in
                State(
                    configuration: try ConfigDatabase.loadConfiguration(db),
                    position: Position(
                        revision: try ConfigDatabase.meta("last_revision", in: db), epoch: try ConfigDatabase.meta("last_epoch", in: db),
                        logStart: max(1, try ConfigDatabase.meta("log_start", in: db))))
            }
            state = Mutex(loaded)
            checkpointer = try WALCheckpointer(path: path)
        } catch {
            throw .storage("cannot open \(path): \(error)")
        }
    }

    deinit { checkpointer.stop() }

    // MARK: Reading

    public var configuration: SystemConfiguration { state.withLock { $0.configuration } }
    public var position: Position { state.withLock { $0.position } }

    /// Allows writes under `epoch` (this server is active), or refuses them (nil).
    public func setWriteEpoch(_ epoch: UInt64?) { state.withLock { $0.writeEpoch = epoch } }
    public var writeEpoch: UInt64? { state.withLock { $0.writeEpoch } }

    // MARK: Writing (the active server)

    /// Validates and commits the changes in one transaction: all of them or none.
    @discardableResult
    public func write(_ changes: [ConfigChange], at now: Date = Date()) throws(ConfigError) -> [ChangeRecord] {
        try writer.withLock { _ throws(ConfigError) in
            let current = state.withLock { $0 }
            guard let epoch = current.writeEpoch else { throw .notActiveServer }
            var configuration = current.configuration
            var records: [ChangeRecord] = []
            let stamp = UInt64(max(0, now.timeIntervalSince1970 * 1000))
            for change in changes {
                let recorded = try configuration.apply(change)
                records.append(ChangeRecord(revision: current.position.revision + UInt64(records.count) + 1, epoch: epoch, committedAtMs: stamp, change: recorded))
            }
            guard let last = records.last else { return [] }
            var logStart: UInt64?
            try transaction { db in
                for record in records { try ConfigDatabase.insert(record, in: db) }
                try ConfigDatabase.persistFinalState(of: Set(records.flatMap(\.change.subjects)), from: configuration, in: db)
                try setPosition(revision: last.revision, epoch: epoch, in: db)
                logStart = try prune(after: last.revision, in: db)
            }
            commit(configuration, revision: last.revision, epoch: epoch, logStart: logStart)
            return records
        }
    }

    // MARK: Applying (a standby following the active server)

    /// Applies records in revision order, skipping those already applied, in one
    /// transaction. Stops before a gap. Returns the revision reached.
    @discardableResult
    public func apply(_ records: [ChangeRecord]) throws(ConfigError) -> UInt64 {
        try writer.withLock { _ throws(ConfigError) in
            let current = state.withLock { $0 }
            var configuration = current.configuration
            var revision = current.position.revision
            var epoch = current.position.epoch
            var accepted: [ChangeRecord] = []
            for record in records where record.revision > revision {
                guard record.revision == revision + 1 else { break }
                // Validated by the server that wrote it: only the referential rules run again.
                try configuration.apply(record.change, assigningIds: false, checkingFormat: false)
                accepted.append(record)
                revision = record.revision
                epoch = record.epoch
            }
            guard !accepted.isEmpty else { return revision }
            var logStart: UInt64?
            try transaction { db in
                for record in accepted { try ConfigDatabase.insert(record, in: db) }
                try ConfigDatabase.persistFinalState(of: Set(accepted.flatMap(\.change.subjects)), from: configuration, in: db)
                try setPosition(revision: revision, epoch: epoch, in: db)
                logStart = try prune(after: revision, in: db)
            }
            commit(configuration, revision: revision, epoch: epoch, logStart: logStart)
            return revision
        }
    }

    /// Replaces everything with the active server's snapshot. With `journalAfter`, the
    /// records this store made after that revision, which the active server does not have,
    /// are first moved to the divergence journal, in the same transaction.
    public func installSnapshot(
        _ configuration: SystemConfiguration, revision: UInt64, epoch: UInt64, journalAfter: UInt64? = nil, at now: Date = Date()
    ) throws(ConfigError) {
        try writer.withLock { _ throws(ConfigError) in
            try transaction { db in
                if let journalAfter {
                    try db.execute(
                        sql: """
                            INSERT INTO journal (revision, epoch, committed_at_ms, body, detected_at_ms)
                            SELECT revision, epoch, committed_at_ms, body, ? FROM changes WHERE revision > ? ORDER BY revision
                            """,
                        arguments: [Int64(now.timeIntervalSince1970 * 1000), Int64(journalAfter)])
                }
                try db.execute(sql: "DELETE FROM changes")
                try ConfigDatabase.replaceAll(with: configuration, in: db)
                try setPosition(revision: revision, epoch: epoch, in: db)
                try ConfigDatabase.setMeta("log_start", revision + 1, in: db)
                try ConfigDatabase.setMeta("base_epoch", epoch, in: db)
            }
            state.withLock {
                $0.configuration = configuration
                $0.position = Position(revision: revision, epoch: epoch, logStart: revision + 1)
            }
        }
    }

    // MARK: The log, for catching a peer up

    public func records(after revision: UInt64, limit: Int) throws(ConfigError) -> [ChangeRecord] {
        var records: [ChangeRecord] = []
        for message in try replicatedChanges(after: revision, limit: limit) {
            do {
                records.append(try ChangeRecord(message))
            } catch {
                throw .storage("revision \(message.revision) is unreadable: \(error)")
            }
        }
        return records
    }

    /// The records after `revision` as peer-link messages, straight from their stored bytes:
    /// what a leader sends, without decoding and re-encoding each change.
    public func replicatedChanges(after revision: UInt64, limit: Int) throws(ConfigError) -> [ReplicatedChange] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM changes WHERE revision > ? ORDER BY revision LIMIT ?", arguments: [Int64(revision), limit]
            ).map { row in
                let body: Data = row["body"]
                return ReplicatedChange(
                    revision: UInt64(row["revision"] as Int64), epoch: UInt64(row["epoch"] as Int64),
                    committedAtMs: UInt64(row["committed_at_ms"] as Int64), body: ByteBuffer(bytes: body))
            }
        }
    }

    /// The epoch of the record at `revision`: from the log, or the base epoch when it is the
    /// revision just before the log starts (a snapshot's). Nil when unknown.
    public func epoch(at revision: UInt64) throws(ConfigError) -> UInt64? {
        if revision == 0 { return 0 }
        return try read { db in
            if let epoch = try Int64.fetchOne(db, sql: "SELECT epoch FROM changes WHERE revision = ?", arguments: [Int64(revision)]) {
                return UInt64(epoch)
            }
            let logStart = max(1, try ConfigDatabase.meta("log_start", in: db))
            return revision == logStart - 1 ? try ConfigDatabase.meta("base_epoch", in: db) : nil
        }
    }

    /// The last revision, not after `revision`, whose epoch is at most `epoch`; with that
    /// epoch. The point up to which a follower at (revision, epoch) may agree with us.
    public func lastRevision(notAfter revision: UInt64, epochAtMost epoch: UInt64) throws(ConfigError) -> (revision: UInt64, epoch: UInt64) {
        try read { db in
            if let row = try Row.fetchOne(
                db, sql: "SELECT revision, epoch FROM changes WHERE revision <= ? AND epoch <= ? ORDER BY revision DESC LIMIT 1",
                arguments: [Int64(revision), Int64(epoch)])
            {
                return (UInt64(row["revision"] as Int64), UInt64(row["epoch"] as Int64))
            }
            // Nothing in the log: fall back on the snapshot base, if it qualifies.
            let base = max(1, try ConfigDatabase.meta("log_start", in: db)) - 1
            let baseEpoch = try ConfigDatabase.meta("base_epoch", in: db)
            return base > 0 && base <= revision && baseEpoch <= epoch ? (base, baseEpoch) : (0, 0)
        }
    }

    // MARK: The divergence journal

    public struct JournalEntry: Equatable, Sendable {
        public enum Status: String, Sendable { case open, reapplied, discarded }
        public var id: Int64
        public var record: ChangeRecord
        public var detectedAtMs: UInt64
        public var status: Status
        public var note: String
    }

    public func journal() throws(ConfigError) -> [JournalEntry] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM journal ORDER BY id").map { row in
                JournalEntry(
                    id: row["id"], record: try ConfigDatabase.record(from: row), detectedAtMs: UInt64(row["detected_at_ms"] as Int64),
                    status: JournalEntry.Status(rawValue: row["status"]) ?? .open, note: row["note"])
            }
        }
    }

    /// Re-applies an open journal entry of this server as a new change, when this server is
    /// the active one. (Usually the journal is on the standby that lost a split: then the
    /// change is written on the active server and marked here with
    /// `markJournalEntryReapplied`.)
    @discardableResult
    public func reapplyJournalEntry(_ id: Int64, at now: Date = Date()) throws(ConfigError) -> ChangeRecord {
        let entry = try openJournalEntry(id)
        guard let record = try write([entry.record.change], at: now).first else { throw .journal("journal entry \(id) changed nothing") }
        try markJournalEntry(id, .reapplied, note: "re-applied as revision \(record.revision)")
        return record
    }

    /// Records that an open entry was re-applied elsewhere (on the active server) as `revision`.
    public func markJournalEntryReapplied(_ id: Int64, asRevision revision: UInt64) throws(ConfigError) {
        _ = try openJournalEntry(id)
        try markJournalEntry(id, .reapplied, note: "re-applied on the active server as revision \(revision)")
    }

    public func discardJournalEntry(_ id: Int64, note: String = "discarded by an administrator") throws(ConfigError) {
        _ = try openJournalEntry(id)
        try markJournalEntry(id, .discarded, note: note)
    }

    private func openJournalEntry(_ id: Int64) throws(ConfigError) -> JournalEntry {
        guard let entry = try journal().first(where: { $0.id == id }) else { throw .journal("journal entry \(id) does not exist") }
        guard entry.status == .open else { throw .journal("journal entry \(id) was already \(entry.status.rawValue)") }
        return entry
    }

    private func markJournalEntry(_ id: Int64, _ status: JournalEntry.Status, note: String) throws(ConfigError) {
        try writer.withLock { _ throws(ConfigError) in
            try transaction { db in
                try db.execute(sql: "UPDATE journal SET status = ?, note = ? WHERE id = ?", arguments: [status.rawValue, note, id])
            }
        }
    }

    // MARK: Checks

    /// SQLite's own consistency check; "ok" when the file is sound.
    public func integrityCheck() throws(ConfigError) -> String {
        try read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
    }

    // MARK: Internals

    private func commit(_ configuration: SystemConfiguration, revision: UInt64, epoch: UInt64, logStart: UInt64?) {
        state.withLock {
            $0.configuration = configuration
            $0.position.revision = revision
            $0.position.epoch = epoch
            if let logStart { $0.position.logStart = logStart }
        }
    }

    private func setPosition(revision: UInt64, epoch: UInt64, in db: Database) throws {
        try ConfigDatabase.setMeta("last_revision", revision, in: db)
        try ConfigDatabase.setMeta("last_epoch", epoch, in: db)
    }

    /// Keeps the last `retention` records, pruning in steps of at least 1000 so most writes
    /// skip it; remembers the epoch of the newest pruned record. Returns the new log start.
    private func prune(after revision: UInt64, in db: Database) throws -> UInt64? {
        let oldStart = max(1, try ConfigDatabase.meta("log_start", in: db))
        guard revision >= retention, revision - retention + 1 >= oldStart + 1000 else { return nil }
        let newStart = revision - retention + 1
        if let epoch = try Int64.fetchOne(db, sql: "SELECT epoch FROM changes WHERE revision = ?", arguments: [Int64(newStart - 1)]) {
            try ConfigDatabase.setMeta("base_epoch", UInt64(epoch), in: db)
        }
        try db.execute(sql: "DELETE FROM changes WHERE revision < ?", arguments: [Int64(newStart)])
        try ConfigDatabase.setMeta("log_start", newStart, in: db)
        return newStart
    }

    private func transaction(_ body: (Database) throws -> Void) throws(ConfigError) {
        do {
            try database.write { db in try body(db) }
        } catch let error as ConfigError {
            throw error
        } catch {
            throw .storage("write failed: \(error)")
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws(ConfigError) -> T {
        do {
            return try database.read { db in try body(db) }
        } catch let error as ConfigError {
            throw error
        } catch {
            throw .storage("read failed: \(error)")
        }
    }
}
