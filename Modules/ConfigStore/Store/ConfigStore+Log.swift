import ConfigModel
import Foundation
import GRDB
import NIOCore
import PairModel
import Wire

extension ConfigStore {
    // MARK: The log, for catching a peer up

    /// What this store holds at `revision`; nil beyond its last record, or when that part of
    /// its history is unknown.
    public func mark(at revision: UInt64) throws(ConfigError) -> LogMark? {
        try writer.withLock { _ throws(ConfigError) in try markLocked(at: revision, state.withLock { $0 }) }
    }

    func markLocked(at revision: UInt64, _ current: State) throws(ConfigError) -> LogMark? {
        if revision == 0 { return .origin }
        guard revision <= current.position.revision else { return nil }
        if revision == current.position.revision { return LogMark(revision: revision, epoch: current.position.epoch, chain: current.head) }
        if revision >= current.position.logStart {
            return try read { db in
                try Row.fetchOne(db, sql: "SELECT epoch, chain FROM changes WHERE revision = ?", arguments: [Int64(revision)]).map {
                    LogMark(revision: revision, epoch: UInt64($0["epoch"] as Int64), chain: ConfigDatabase.chain($0["chain"]))
                }
            }
        }
        if revision == current.position.logStart - 1 { return LogMark(revision: revision, epoch: current.baseEpoch, chain: current.base) }
        return Self.epoch(at: revision, in: current.epochs).map { LogMark(revision: revision, epoch: $0, chain: nil) }
    }

    /// The last record not after `revision` whose epoch is at most `epoch`: where a history
    /// that ends at (revision, epoch) may still agree with this one.
    public func lastMark(notAfter revision: UInt64, epochAtMost epoch: UInt64) throws(ConfigError) -> LogMark {
        try writer.withLock { _ throws(ConfigError) in
            let current = state.withLock { $0 }
            let limit = min(revision, current.position.revision)
            // The newest epoch no later than `epoch` that started by `limit`, and where it ends.
            guard let index = current.epochs.lastIndex(where: { $0.epoch <= epoch && $0.startRevision <= limit }) else { return .origin }
            let end = index + 1 < current.epochs.count ? current.epochs[index + 1].startRevision - 1 : current.position.revision
            return try markLocked(at: min(limit, end), current) ?? .origin
        }
    }

    static func epoch(at revision: UInt64, in history: [EpochStart]) -> UInt64? {
        history.last { $0.startRevision <= revision }?.epoch
    }

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
                    committedAtMs: UInt64(row["committed_at_ms"] as Int64), chain: ConfigDatabase.chain(row["chain"]) ?? .zero,
                    body: ByteBuffer(bytes: body))
            }
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
    /// the active one: the write and the entry's mark are one transaction, decided under the
    /// writer lock, so an entry is re-applied exactly once however many callers race.
    /// (Usually the journal is on the standby that lost a split: then the change is written
    /// on the active server and marked here with `markJournalEntryReapplied`.)
    @discardableResult
    public func reapplyJournalEntry(_ id: Int64, at now: Date = Date()) throws(ConfigError) -> ChangeRecord {
        try writer.withLock { _ throws(ConfigError) in
            let entry = try openJournalEntry(id)
            let records = try writeLocked([entry.record.change], at: now) { db, records in
                let note = "re-applied as revision \(records.first?.revision ?? 0)"
                guard try Self.markOpenEntry(id, .reapplied, note: note, in: db) else {
                    throw ConfigError.journal("journal entry \(id) was handled meanwhile")
                }
            }
            guard let record = records.first else { throw .journal("journal entry \(id) changed nothing") }
            return record
        }
    }

    /// Records that an open entry was re-applied elsewhere (on the active server) as `revision`.
    public func markJournalEntryReapplied(_ id: Int64, asRevision revision: UInt64) throws(ConfigError) {
        try markJournalEntry(id, .reapplied, note: "re-applied on the active server as revision \(revision)")
    }

    public func discardJournalEntry(_ id: Int64, note: String = "discarded by an administrator") throws(ConfigError) {
        try markJournalEntry(id, .discarded, note: note)
    }

    private func openJournalEntry(_ id: Int64) throws(ConfigError) -> JournalEntry {
        let entry = try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM journal WHERE id = ?", arguments: [id]).map { row in
                JournalEntry(
                    id: row["id"], record: try ConfigDatabase.record(from: row), detectedAtMs: UInt64(row["detected_at_ms"] as Int64),
                    status: JournalEntry.Status(rawValue: row["status"]) ?? .open, note: row["note"])
            }
        }
        guard let entry else { throw .journal("journal entry \(id) does not exist") }
        guard entry.status == .open else { throw .journal("journal entry \(id) was already \(entry.status.rawValue)") }
        return entry
    }

    /// Checks and marks in one statement under the writer lock: of two racing callers, one
    /// marks and the other is told the entry was already handled.
    private func markJournalEntry(_ id: Int64, _ status: JournalEntry.Status, note: String) throws(ConfigError) {
        try writer.withLock { _ throws(ConfigError) in
            _ = try openJournalEntry(id)
            var marked = false
            try transaction { db in marked = try Self.markOpenEntry(id, status, note: note, in: db) }
            if !marked { _ = try openJournalEntry(id) }
        }
    }

    private static func markOpenEntry(_ id: Int64, _ status: JournalEntry.Status, note: String, in db: Database) throws -> Bool {
        try db.execute(
            sql: "UPDATE journal SET status = ?, note = ? WHERE id = ? AND status = 'open'", arguments: [status.rawValue, note, id])
        return db.changesCount == 1
    }
}
