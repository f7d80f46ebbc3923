import Wire

/// The standby's side of configuration replication. Pure: the shell applies what it is told
/// to the store and reports back.
public struct ReplicationFollower: Sendable {
    public enum Action: Equatable, Sendable {
        case sendCatchUp(CatchUpRequest)
        /// Apply these records to the store (in order, skipping those already there), then
        /// call `applied(upTo:)`.
        case apply([ChangeRecord])
        /// Install the snapshot just received; with a revision, first move this store's
        /// records after it to the divergence journal. Then call `applied(upTo:)`.
        case installSnapshot(journalAfter: UInt64?)
        case sendAck(ConfigAck)
    }

    public private(set) var linked = false
    /// Set once this store's history was found to differ from the leader's after this
    /// revision: the records after it go to the journal when the snapshot arrives.
    public private(set) var divergedAfter: UInt64?

    public init() {}

    public mutating func linkUp(log: some ReplicationLog) -> [Action] {
        linked = true
        divergedAfter = nil
        let position = log.position
        return [.sendCatchUp(CatchUpRequest(lastRevision: position.revision, lastEpoch: position.epoch))]
    }

    public mutating func linkDown() {
        linked = false
        divergedAfter = nil
    }

    public mutating func recordsReceived(_ records: [ChangeRecord], log: some ReplicationLog) -> [Action] {
        guard linked, let first = records.first else { return [] }
        let position = log.position
        if first.revision > position.revision + 1 {
            // A gap (records were lost or reordered): start over from where this store is.
            return [.sendCatchUp(CatchUpRequest(lastRevision: position.revision, lastEpoch: position.epoch))]
        }
        return [.apply(records)]
    }

    public mutating func snapshotReceived() -> [Action] {
        guard linked else { return [] }
        defer { divergedAfter = nil }
        return [.installSnapshot(journalAfter: divergedAfter)]
    }

    /// The store reached `revision` (records applied or snapshot installed, durably).
    public func applied(upTo revision: UInt64) -> [Action] {
        linked ? [.sendAck(ConfigAck(revision: revision))] : []
    }

    /// The leader does not have this store's last change. If this store has the leader's
    /// probe (same revision, same epoch), that is where the two agree: what follows here is
    /// journalled and a snapshot requested. Otherwise ask again from an earlier change.
    public mutating func divergenceReported(_ probe: ConfigDivergence, log: some ReplicationLog) throws(ConfigError) -> [Action] {
        guard linked else { return [] }
        let ownEpoch = probe.revision == 0 ? 0 : try log.epoch(at: probe.revision)
        if ownEpoch == probe.epoch {
            divergedAfter = probe.revision
            return [.sendCatchUp(CatchUpRequest(lastRevision: 0, lastEpoch: 0))]
        }
        let earlier = try log.lastRevision(notAfter: probe.revision - 1, epochAtMost: probe.epoch)
        if earlier.revision == 0 {
            divergedAfter = 0
            return [.sendCatchUp(CatchUpRequest(lastRevision: 0, lastEpoch: 0))]
        }
        return [.sendCatchUp(CatchUpRequest(lastRevision: earlier.revision, lastEpoch: earlier.epoch))]
    }
}
