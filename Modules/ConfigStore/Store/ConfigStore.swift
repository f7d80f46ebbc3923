import ConfigModel
import Foundation
import GRDB
import NIOCore
import Synchronization
import PairModel
import Wire

/// The system configuration of one server: durable in SQLite, served from memory.
///
/// The active server writes; each change is one transaction with the next revision,
/// stamped with the writing server's epoch and chained to the history before it. A standby
/// applies the active server's records in order and idempotently, and refuses what would
/// rewrite its history silently (an older epoch, another record at a position it holds).
/// Calls block on disk I/O: call them off the event loops.
public final class ConfigStore: Sendable {
    public typealias Position = LogPosition

    struct State: Sendable {
        var configuration = SystemConfiguration()
        var position = Position(revision: 0, epoch: 0, logStart: 1)
        /// The chain at `position.revision`.
        var head = ChainHash.zero
        /// The chain at `position.logStart - 1` (the last pruned record, or a snapshot's).
        var base = ChainHash.zero
        var baseEpoch: UInt64 = 0
        /// Where each epoch of this history starts, oldest first.
        var epochs: [EpochStart] = []
        /// Set while this server is active; writes are refused otherwise.
        var writeEpoch: UInt64?
    }

    let database: DatabaseQueue
    private let checkpointer: WALCheckpointer
    let state: Mutex<State>
    /// Serializes writers (and journal decisions); readers only take `state` for a moment.
    let writer = Mutex(())
    /// Records kept in the log for catching up; older ones are pruned.
    public let retention: UInt64

    public static let defaultRetention: UInt64 = 200_000

    public init(path: String, retention: UInt64 = ConfigStore.defaultRetention) throws(ConfigError) {
        self.retention = max(1, retention)
        do {
            database = try ConfigDatabase.open(path: path)
            let loaded = try database.read { db in
                let logStart = max(1, try ConfigDatabase.meta("log_start", in: db))
                let revision = try ConfigDatabase.meta("last_revision", in: db)
                let base = try ConfigDatabase.anchor("base_chain", in: db) ?? .zero
                let head =
                    revision >= logStart
                    ? ConfigDatabase.chain(try Data.fetchOne(db, sql: "SELECT chain FROM changes WHERE revision = ?", arguments: [Int64(revision)]))
                        ?? .zero : base
                return State(
                    configuration: try ConfigDatabase.loadConfiguration(db),
                    position: Position(revision: revision, epoch: try ConfigDatabase.meta("last_epoch", in: db), logStart: logStart),
                    head: head, base: base, baseEpoch: try ConfigDatabase.meta("base_epoch", in: db),
                    epochs: try ConfigDatabase.epochHistory(in: db))
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
    /// The last record: revision, epoch and chain.
    public var head: LogMark {
        state.withLock { LogMark(revision: $0.position.revision, epoch: $0.position.epoch, chain: $0.head) }
    }
    /// Where each epoch of this history starts.
    public var epochHistory: [EpochStart] { state.withLock { $0.epochs } }

    /// Allows writes under `epoch` (this server is active), or refuses them (nil). An epoch
    /// below the one of this store's last record is refused: epochs never go backwards, and a
    /// record stamped with an older epoch would pass for a deposed server's.
    public func setWriteEpoch(_ epoch: UInt64?) throws(ConfigError) {
        try state.withLock { state throws(ConfigError) in
            if let epoch, epoch < state.position.epoch {
                throw .staleEpoch(epoch, current: state.position.epoch)
            }
            state.writeEpoch = epoch
        }
    }

    public var writeEpoch: UInt64? { state.withLock { $0.writeEpoch } }

    /// The whole configuration with the position and history it belongs to, read atomically.
    public func snapshot() -> StoreSnapshot {
        state.withLock {
            StoreSnapshot(
                configuration: $0.configuration, revision: $0.position.revision, epoch: $0.position.epoch, chain: $0.head,
                epochHistory: $0.epochs)
        }
    }

    // MARK: Writing (the active server)

    /// Validates and commits the changes in one transaction: all of them or none.
    @discardableResult
    public func write(_ changes: [ConfigChange], at now: Date = Date()) throws(ConfigError) -> [ChangeRecord] {
        try writer.withLock { _ throws(ConfigError) in try writeLocked(changes, at: now) }
    }

    /// `write` for a caller that holds `writer`; `alsoInTransaction` runs in the same
    /// transaction (a journal entry marked together with its re-application).
    func writeLocked(_ changes: [ConfigChange], at now: Date, alsoInTransaction: ((Database, [ChangeRecord]) throws -> Void)? = nil) throws(ConfigError)
        -> [ChangeRecord]
    {
        let current = state.withLock { $0 }
        guard let epoch = current.writeEpoch else { throw .notActiveServer }
        guard changes.count <= ConfigLimits.changesPerWrite else {
            throw .invalid(["a write holds \(changes.count) changes; the limit is \(ConfigLimits.changesPerWrite) (split it)"])
        }
        var configuration = current.configuration
        var records: [ChangeRecord] = []
        records.reserveCapacity(changes.count)
        var chain = current.head
        let stamp = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        for change in changes {
            let recorded = try configuration.apply(change)
            let revision = current.position.revision + UInt64(records.count) + 1
            do {
                records.append(try ChangeRecord(revision: revision, epoch: epoch, committedAtMs: stamp, change: recorded, after: chain))
            } catch {
                throw .invalid(["the change cannot be encoded: \(error)"])
            }
            chain = records[records.count - 1].chain
        }
        guard !records.isEmpty else { return [] }
        var epochs = current.epochs
        if epochs.last?.epoch != epoch { epochs.append(EpochStart(epoch: epoch, startRevision: records[0].revision)) }
        try commit(records, configuration: configuration, previous: current, epochs: epochs, extra: alsoInTransaction.map { extra in { db in try extra(db, records) } })
        return records
    }

    // MARK: Applying (a standby following the active server)

    /// Applies records in revision order in one transaction, skipping those already held, and
    /// stops before a gap. Returns the revision reached.
    ///
    /// Throws `staleEpoch` for a record older than this store's epoch, and `diverged` for a
    /// record that does not continue this store's history (another record at a position this
    /// store holds, or a chain that does not follow from this store's): both mean this
    /// store's history and the sender's differ, which only the catch-up search may resolve.
    /// Nothing is applied then.
    @discardableResult
    public func apply(_ records: [ChangeRecord]) throws(ConfigError) -> UInt64 {
        try writer.withLock { _ throws(ConfigError) in
            let current = state.withLock { $0 }
            var configuration = current.configuration
            var revision = current.position.revision
            var epoch = current.position.epoch
            var chain = current.head
            var epochs = current.epochs
            var accepted: [ChangeRecord] = []
            for record in records {
                if record.revision <= revision {
                    let own = record.revision > current.position.revision ? accepted.first { $0.revision == record.revision }.map(LogMark.init) : try markLocked(at: record.revision, current)
                    if let own, own.epoch != record.epoch || (own.chain != nil && own.chain != record.chain) {
                        throw .diverged(
                            revision: record.revision,
                            detail: "this store holds revision \(record.revision) of epoch \(own.epoch) and another record arrived (epoch \(record.epoch))")
                    }
                    continue  // Already held: a retransmission.
                }
                guard record.revision == revision + 1 else { break }
                guard record.epoch >= epoch else { throw .staleEpoch(record.epoch, current: epoch) }
                let expected: ChainHash
                do {
                    expected = ConfigChain.next(after: chain, revision: record.revision, epoch: record.epoch, body: try record.body())
                } catch {
                    throw .diverged(revision: record.revision, detail: "the record cannot be encoded: \(error)")
                }
                guard expected == record.chain else {
                    throw .diverged(revision: record.revision, detail: "its chain does not continue this store's history at revision \(revision)")
                }
                // Validated by the server that wrote it: only the referential rules, the limits
                // and the password bounds run again.
                try configuration.apply(record.change, assigningIds: false, checkingFormat: false)
                if epochs.last?.epoch != record.epoch { epochs.append(EpochStart(epoch: record.epoch, startRevision: record.revision)) }
                accepted.append(record)
                revision = record.revision
                epoch = record.epoch
                chain = record.chain
            }
            guard !accepted.isEmpty else { return revision }
            try commit(accepted, configuration: configuration, previous: current, epochs: epochs, extra: nil)
            return revision
        }
    }

    /// Replaces everything with the active server's snapshot. With `journalAfter`, the
    /// records this store made after that revision, which the active server does not have,
    /// are first moved to the divergence journal, in the same transaction. Records after the
    /// snapshot's revision are never dropped silently: without `journalAfter` they are
    /// journalled from the snapshot's revision.
    public func installSnapshot(_ snapshot: StoreSnapshot, journalAfter: UInt64? = nil, at now: Date = Date()) throws(ConfigError) {
        if let problem = snapshot.configuration.replicaProblem() { throw .invalid([problem]) }
        var history = snapshot.epochHistory.filter { $0.startRevision <= snapshot.revision }
        if history.last?.epoch != snapshot.epoch, snapshot.revision > 0 {
            history.append(EpochStart(epoch: snapshot.epoch, startRevision: snapshot.revision))
        }
        try writer.withLock { _ throws(ConfigError) in
            let current = state.withLock { $0 }
            let journalFrom = journalAfter ?? (current.position.revision > snapshot.revision ? snapshot.revision : nil)
            try transaction { db in
                if let journalFrom {
                    try db.execute(
                        sql: """
                            INSERT INTO journal (revision, epoch, committed_at_ms, body, detected_at_ms)
                            SELECT revision, epoch, committed_at_ms, body, ? FROM changes WHERE revision > ? ORDER BY revision
                            """,
                        arguments: [Int64(now.timeIntervalSince1970 * 1000), Int64(journalFrom)])
                }
                try db.execute(sql: "DELETE FROM changes")
                try ConfigDatabase.replaceAll(with: snapshot.configuration, in: db)
                try setPosition(revision: snapshot.revision, epoch: snapshot.epoch, in: db)
                try ConfigDatabase.setMeta("log_start", snapshot.revision + 1, in: db)
                try ConfigDatabase.setMeta("base_epoch", snapshot.epoch, in: db)
                try ConfigDatabase.setAnchor("base_chain", snapshot.chain, in: db)
                try ConfigDatabase.replaceEpochHistory(history, in: db)
                try ConfigDatabase.setMeta("id_high_water", UInt64(snapshot.configuration.idHighWater), in: db)
            }
            state.withLock {
                $0.configuration = snapshot.configuration
                $0.position = Position(revision: snapshot.revision, epoch: snapshot.epoch, logStart: snapshot.revision + 1)
                $0.head = snapshot.chain
                $0.base = snapshot.chain
                $0.baseEpoch = snapshot.epoch
                $0.epochs = history
            }
        }
    }

    /// A consistent copy of the whole store (configuration, log, journal) in a new file,
    /// taken with SQLite's online backup while the server runs.
    public func backup(to path: String) throws(ConfigError) {
        do {
            let target = try DatabaseQueue(path: path)
            try database.backup(to: target)
        } catch {
            throw .storage("cannot back up to \(path): \(error)")
        }
    }

    // MARK: Checks

    /// SQLite's own consistency check; "ok" when the file is sound.
    public func integrityCheck() throws(ConfigError) -> String {
        try read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
    }

    // MARK: Internals

    /// Commits records that follow `previous` and publishes the new state.
    private func commit(
        _ records: [ChangeRecord], configuration: SystemConfiguration, previous: State, epochs: [EpochStart],
        extra: ((Database) throws -> Void)?
    ) throws(ConfigError) {
        let last = records[records.count - 1]
        var pruned: (start: UInt64, epoch: UInt64, chain: ChainHash)?
        try transaction { db in
            for record in records { try ConfigDatabase.insert(record, in: db) }
            try ConfigDatabase.persistFinalState(of: Set(records.flatMap(\.change.subjects)), from: configuration, in: db)
            try setPosition(revision: last.revision, epoch: last.epoch, in: db)
            for start in epochs.dropFirst(previous.epochs.count) { try ConfigDatabase.addEpoch(start, in: db) }
            if configuration.idHighWater != previous.configuration.idHighWater {
                try ConfigDatabase.setMeta("id_high_water", UInt64(configuration.idHighWater), in: db)
            }
            pruned = try prune(after: last.revision, in: db)
            try extra?(db)
        }
        state.withLock {
            $0.configuration = configuration
            $0.position.revision = last.revision
            $0.position.epoch = last.epoch
            $0.head = last.chain
            $0.epochs = epochs
            if let pruned {
                $0.position.logStart = pruned.start
                $0.baseEpoch = pruned.epoch
                $0.base = pruned.chain
            }
        }
    }

    private func setPosition(revision: UInt64, epoch: UInt64, in db: Database) throws {
        try ConfigDatabase.setMeta("last_revision", revision, in: db)
        try ConfigDatabase.setMeta("last_epoch", epoch, in: db)
    }

    /// Keeps the last `retention` records, pruning in steps of at least 1000 so most writes
    /// skip it; remembers the epoch and chain of the newest pruned record.
    private func prune(after revision: UInt64, in db: Database) throws -> (start: UInt64, epoch: UInt64, chain: ChainHash)? {
        let oldStart = max(1, try ConfigDatabase.meta("log_start", in: db))
        guard revision >= retention, revision - retention + 1 >= oldStart + 1000 else { return nil }
        let newStart = revision - retention + 1
        guard let row = try Row.fetchOne(db, sql: "SELECT epoch, chain FROM changes WHERE revision = ?", arguments: [Int64(newStart - 1)])
        else { return nil }
        let epoch = UInt64(row["epoch"] as Int64)
        let chain = ConfigDatabase.chain(row["chain"]) ?? .zero
        try ConfigDatabase.setMeta("base_epoch", epoch, in: db)
        try ConfigDatabase.setAnchor("base_chain", chain, in: db)
        try db.execute(sql: "DELETE FROM changes WHERE revision < ?", arguments: [Int64(newStart)])
        try ConfigDatabase.setMeta("log_start", newStart, in: db)
        return (newStart, epoch, chain)
    }

    func transaction(_ body: (Database) throws -> Void) throws(ConfigError) {
        do {
            try database.write { db in try body(db) }
        } catch let error as ConfigError {
            throw error
        } catch {
            throw .storage("write failed: \(error)")
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws(ConfigError) -> T {
        do {
            return try database.read { db in try body(db) }
        } catch let error as ConfigError {
            throw error
        } catch {
            throw .storage("read failed: \(error)")
        }
    }
}

