import Wire

/// What the replication machines need to know of a store, no more (so tests can give them a
/// plain in-memory log). `ConfigStore` is one.
public protocol ReplicationLog {
    var position: ConfigStore.Position { get }
    func epoch(at revision: UInt64) throws(ConfigError) -> UInt64?
    func lastRevision(notAfter revision: UInt64, epochAtMost epoch: UInt64) throws(ConfigError) -> (revision: UInt64, epoch: UInt64)
}

extension ConfigStore: ReplicationLog {}

/// The active server's side of configuration replication. Pure: events in, actions out; the
/// shell reads the store and writes the peer link.
///
/// On link-up the follower says where it is (`catchUpRequested`). The leader answers with the
/// missing records, a snapshot when the follower is too far behind or asks for one, or a
/// divergence probe when their histories differ. Then it streams every new commit. At most
/// `window` records are in flight; acknowledgements move the window and measure the lag.
public struct ReplicationLeader: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Records sent but not yet acknowledged, at most.
        public var window: Int

        public init(window: Int = 20_000) {
            self.window = window
        }
    }

    public enum Action: Equatable, Sendable {
        /// Send the stored records in (after, upTo], in order.
        case sendRecords(after: UInt64, upTo: UInt64)
        /// Send the whole configuration at the current revision.
        case sendSnapshot(revision: UInt64)
        case sendDivergence(ConfigDivergence)
        /// Synchronous writes up to this revision may now be acknowledged to their callers.
        case releaseWrites(upTo: UInt64)
        /// Every waiting synchronous write is acknowledged on local durability alone.
        case releaseAllWrites(reason: String)
    }

    public enum FollowerState: Equatable, Sendable {
        case disconnected
        /// Linked, waiting for the follower to say where it is.
        case awaitingRequest
        case following
    }

    public let configuration: Configuration
    public private(set) var follower: FollowerState = .disconnected
    /// Highest revision sent to the follower.
    public private(set) var sent: UInt64 = 0
    /// Highest revision the follower has applied and made durable, once known.
    public private(set) var acknowledged: UInt64?
    /// Commit times of records the follower has not acknowledged, oldest first.
    private var unacknowledged: [(revision: UInt64, committedAtMs: UInt64)] = []
    private var waitingWrites: [UInt64] = []

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// How far behind the follower is, in revisions; nil while unknown (link down, or it has
    /// not reported yet).
    public func lag(leaderRevision: UInt64) -> UInt64? {
        guard follower == .following, let acknowledged else { return nil }
        return leaderRevision > acknowledged ? leaderRevision - acknowledged : 0
    }

    /// How long the oldest change the follower has not acknowledged has been waiting.
    public func lagMilliseconds(now: UInt64) -> UInt64 {
        guard let oldest = unacknowledged.first else { return 0 }
        return now > oldest.committedAtMs ? now - oldest.committedAtMs : 0
    }

    public mutating func linkUp() -> [Action] {
        follower = .awaitingRequest
        sent = 0
        acknowledged = nil
        unacknowledged = []
        return []
    }

    public mutating func linkDown() -> [Action] {
        follower = .disconnected
        acknowledged = nil
        unacknowledged = []
        return releaseAll("the peer link is down: acknowledged once durable here only")
    }

    public mutating func catchUpRequested(_ request: CatchUpRequest, log: some ReplicationLog) throws(ConfigError) -> [Action] {
        guard follower != .disconnected else { return [] }
        let position = log.position
        follower = .following
        unacknowledged = []
        if request.lastRevision == 0 {
            // A new follower, or one that diverged and starts again: a snapshot, even of an
            // empty store, so a follower holding changes the leader never had journals them.
            sent = position.revision
            return [.sendSnapshot(revision: position.revision)]
        }
        guard try log.epoch(at: request.lastRevision) == request.lastEpoch else {
            let probe = try log.lastRevision(notAfter: request.lastRevision, epochAtMost: request.lastEpoch)
            follower = .awaitingRequest
            return [.sendDivergence(ConfigDivergence(revision: probe.revision, epoch: probe.epoch))]
        }
        if request.lastRevision + 1 < position.logStart {
            // The records it misses were pruned: a snapshot is the only way.
            sent = position.revision
            return [.sendSnapshot(revision: position.revision)]
        }
        sent = request.lastRevision
        return acknowledge(request.lastRevision) + sendMore(upTo: position.revision)
    }

    /// Records up to `revision` were committed here (`committedAtMs` for the lag figures).
    public mutating func committed(upTo revision: UInt64, committedAtMs: UInt64) -> [Action] {
        guard follower == .following else { return [] }
        if unacknowledged.last.map({ $0.revision < revision }) ?? true {
            unacknowledged.append((revision, committedAtMs))
        }
        return sendMore(upTo: revision)
    }

    public mutating func acknowledgementReceived(_ revision: UInt64, leaderRevision: UInt64) -> [Action] {
        guard follower == .following else { return [] }
        return acknowledge(revision) + sendMore(upTo: leaderRevision)
    }

    /// A synchronous write of `revision` waits for the follower. Released at once when there
    /// is no follower to wait for.
    public mutating func awaitReplication(of revision: UInt64) -> [Action] {
        guard follower == .following else { return [.releaseAllWrites(reason: "no peer is following: acknowledged once durable here only")] }
        if let acknowledged, acknowledged >= revision { return [.releaseWrites(upTo: revision)] }
        waitingWrites.append(revision)
        return []
    }

    private mutating func acknowledge(_ revision: UInt64) -> [Action] {
        acknowledged = max(acknowledged ?? 0, revision)
        unacknowledged.removeAll { $0.revision <= revision }
        guard waitingWrites.contains(where: { $0 <= revision }) else { return [] }
        waitingWrites.removeAll { $0 <= revision }
        return [.releaseWrites(upTo: revision)]
    }

    private mutating func sendMore(upTo revision: UInt64) -> [Action] {
        let base = acknowledged ?? sent
        let limit = base + UInt64(configuration.window)
        let target = min(revision, limit)
        guard target > sent else { return [] }
        defer { sent = target }
        return [.sendRecords(after: sent, upTo: target)]
    }

    private mutating func releaseAll(_ reason: String) -> [Action] {
        guard !waitingWrites.isEmpty else { return [] }
        waitingWrites.removeAll()
        return [.releaseAllWrites(reason: reason)]
    }
}
