import PairModel
import Wire

/// What the replication machines need to know of a store, no more (so tests can give them a
/// plain in-memory log). `ConfigStore` is one.
public protocol ReplicationLog {
    var position: LogPosition { get }
    /// The last record.
    var head: LogMark { get }
    /// What the store holds at `revision`; nil beyond its last record or when unknown.
    func mark(at revision: UInt64) throws(ConfigError) -> LogMark?
    /// The last record not after `revision` whose epoch is at most `epoch`.
    func lastMark(notAfter revision: UInt64, epochAtMost epoch: UInt64) throws(ConfigError) -> LogMark
}


/// A peer broke the replication protocol; the shell drops the link and logs the reason.
public struct ReplicationViolation: Error, Equatable, Sendable, CustomStringConvertible {
    public var detail: String
    public init(_ detail: String) { self.detail = detail }
    public var description: String { "replication protocol violation: \(detail)" }
}

extension LogMark {
    init(_ request: CatchUpRequest) { self.init(revision: request.lastRevision, epoch: request.lastEpoch, chain: request.lastChain) }
    init(_ probe: ConfigDivergence) { self.init(revision: probe.revision, epoch: probe.epoch, chain: probe.chain) }
    var probe: ConfigDivergence { ConfigDivergence(revision: revision, epoch: epoch, chain: chain) }
    var catchUpRequest: CatchUpRequest { CatchUpRequest(lastRevision: revision, lastEpoch: epoch, lastChain: chain) }
}

/// The active server's side of configuration replication. Pure: events in, actions out; the
/// shell reads the store and writes the peer link.
///
/// On link-up the follower says where it is (`catchUpRequested`). The leader answers with the
/// missing records when it holds the follower's last record (same revision, epoch and
/// chain; or, for a record it pruned, the same epoch at that revision), a snapshot when the
/// follower asks for one or is behind the pruned log, or a divergence probe otherwise. Then it
/// streams every new commit. At most `window` records are in flight beyond what the follower
/// acknowledged (or was given in its snapshot); acknowledgements move the window and measure
/// the lag. A follower that stops acknowledging is marked lagging after a timeout, and memory
/// stays bounded however long it stays so.
public struct ReplicationLeader: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Records sent but not yet acknowledged, at most.
        public var window: Int
        /// A follower that acknowledged nothing new for this long while records were in flight
        /// is lagging: waiting synchronous writes are released, new ones are not held.
        public var acknowledgementTimeoutMs: UInt64
        /// Commit times kept for the lag figure; beyond this, neighbours are merged (keeping
        /// the older time, so the lag is never under-reported).
        public var trackedCommits: Int

        public init(window: Int = 20_000, acknowledgementTimeoutMs: UInt64 = 5_000, trackedCommits: Int = 1_024) {
            self.window = max(1, window)
            self.acknowledgementTimeoutMs = acknowledgementTimeoutMs
            self.trackedCommits = max(2, trackedCommits)
        }
    }

    public enum Action: Equatable, Sendable {
        /// Send the stored records in (after, upTo], in order.
        case sendRecords(after: UInt64, upTo: UInt64)
        /// Send the store's snapshot (`ConfigStore.snapshot()`, in chunks), then call
        /// `snapshotSent(revision:leaderRevision:at:)` with its revision.
        case sendSnapshot
        case sendDivergence(ConfigDivergence)
        /// Synchronous writes up to this revision may now be acknowledged to their callers.
        case releaseWrites(upTo: UInt64)
        /// Every waiting synchronous write is acknowledged on local durability alone.
        case releaseAllWrites(reason: String)
        /// The follower stopped acknowledging (for logs and metrics).
        case followerLagging(String)
    }

    public enum FollowerState: Equatable, Sendable {
        case disconnected
        /// Linked, waiting for the follower to say where it is.
        case awaitingRequest
        /// A snapshot is being read and sent.
        case sendingSnapshot
        case following
    }

    public let configuration: Configuration
    public private(set) var follower: FollowerState = .disconnected
    /// Highest revision sent to the follower.
    public private(set) var sent: UInt64 = 0
    /// Highest revision the follower has applied and made durable, once known.
    public private(set) var acknowledged: UInt64?
    /// The follower stopped acknowledging for longer than the timeout.
    public private(set) var lagging = false
    /// What the follower is known to hold without an acknowledgement: its catch-up position,
    /// or the revision of the snapshot sent to it. The window counts from here until acked.
    private var base: UInt64 = 0
    private var lastProgressMs: UInt64 = 0
    /// Commit times of records the follower has not acknowledged, oldest first, merged
    /// pairwise beyond `trackedCommits`.
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

    /// Commit times held for the lag figure (bounded by `trackedCommits`).
    public var trackedCommitCount: Int { unacknowledged.count }
    public var waitingWriteCount: Int { waitingWrites.count }

    public mutating func linkUp() -> [Action] {
        follower = .awaitingRequest
        sent = 0
        base = 0
        acknowledged = nil
        lagging = false
        unacknowledged = []
        return []
    }

    public mutating func linkDown() -> [Action] {
        follower = .disconnected
        acknowledged = nil
        lagging = false
        unacknowledged = []
        return releaseAll("the peer link is down: acknowledged once durable here only")
    }

    public mutating func catchUpRequested(_ request: CatchUpRequest, log: some ReplicationLog, at nowMs: UInt64) throws(ConfigError) -> [Action] {
        guard follower != .disconnected else { return [] }
        unacknowledged = []
        acknowledged = nil
        lagging = false
        if request.lastRevision == 0 {
            // A new follower, or one that diverged and starts again: a snapshot, even of an
            // empty store, so a follower holding changes the leader never had journals them.
            follower = .sendingSnapshot
            return [.sendSnapshot]
        }
        let requested = LogMark(request)
        guard let own = try log.mark(at: request.lastRevision), own.agrees(with: requested) else {
            follower = .awaitingRequest
            return [.sendDivergence(try log.lastMark(notAfter: request.lastRevision, epochAtMost: request.lastEpoch).probe)]
        }
        if request.lastRevision + 1 < log.position.logStart {
            // Only behind: the records it misses were pruned, so a snapshot, with nothing to
            // journal on its side (same epoch at its position, the same history).
            follower = .sendingSnapshot
            return [.sendSnapshot]
        }
        follower = .following
        sent = request.lastRevision
        base = request.lastRevision
        lastProgressMs = nowMs
        return acknowledge(request.lastRevision) + sendMore(upTo: log.head.revision)
    }

    /// The follower asks whether this store holds `probe` (the search for where two histories
    /// part): answers with this store's last record not after it, of an epoch no later.
    public func probeReceived(_ probe: ConfigDivergence, log: some ReplicationLog) throws(ConfigError) -> [Action] {
        guard follower != .disconnected else { return [] }
        return [.sendDivergence(try log.lastMark(notAfter: probe.revision, epochAtMost: probe.epoch).probe)]
    }

    /// The snapshot at `revision` went out; stream what was committed since.
    public mutating func snapshotSent(revision: UInt64, leaderRevision: UInt64, at nowMs: UInt64) -> [Action] {
        guard follower == .sendingSnapshot else { return [] }
        follower = .following
        sent = revision
        base = revision
        lastProgressMs = nowMs
        return sendMore(upTo: leaderRevision)
    }

    /// Records up to `revision` were committed here (`committedAtMs` for the lag figures).
    public mutating func committed(upTo revision: UInt64, committedAtMs: UInt64) -> [Action] {
        guard follower == .following else { return [] }
        if unacknowledged.last.map({ $0.revision < revision }) ?? true {
            if unacknowledged.isEmpty { lastProgressMs = max(lastProgressMs, committedAtMs) }
            unacknowledged.append((revision, committedAtMs))
            if unacknowledged.count > configuration.trackedCommits { mergeTrackedCommits() }
        }
        return sendMore(upTo: revision)
    }

    /// An acknowledgement beyond what was sent is a protocol violation (it would release
    /// synchronous writes the follower never received).
    public mutating func acknowledgementReceived(_ revision: UInt64, leaderRevision: UInt64, at nowMs: UInt64) throws(ReplicationViolation)
        -> [Action]
    {
        guard follower == .following else { return [] }
        guard revision <= sent else {
            throw ReplicationViolation("the follower acknowledged revision \(revision) but only \(sent) were sent")
        }
        if revision > (acknowledged ?? 0) { lastProgressMs = nowMs }
        let actions = acknowledge(revision)
        if lagging, revision >= sent { lagging = false }
        return actions + sendMore(upTo: leaderRevision)
    }

    /// A synchronous write of `revision` waits for the follower. Released at once when there
    /// is no follower to wait for, or it is lagging.
    public mutating func awaitReplication(of revision: UInt64) -> [Action] {
        guard follower == .following else { return [.releaseAllWrites(reason: "no peer is following: acknowledged once durable here only")] }
        if let acknowledged, acknowledged >= revision { return [.releaseWrites(upTo: revision)] }
        if lagging { return [.releaseAllWrites(reason: "the peer is lagging: acknowledged once durable here only")] }
        waitingWrites.append(revision)
        return []
    }

    /// Time passed: a follower silent on records in flight for longer than the timeout is
    /// marked lagging, and writes waiting for it are released.
    public mutating func tick(at nowMs: UInt64) -> [Action] {
        guard follower == .following, !lagging, sent > (acknowledged ?? base) || !waitingWrites.isEmpty,
            nowMs >= lastProgressMs + configuration.acknowledgementTimeoutMs
        else { return [] }
        lagging = true
        let reason =
            "the peer acknowledged nothing for \(nowMs - lastProgressMs) ms (revision \(acknowledged ?? base) of \(sent) sent): marked lagging, writes acknowledged once durable here only"
        return [.followerLagging(reason)] + releaseAll(reason)
    }

    /// When `tick` must next be called; nil while nothing is timed.
    public var nextDeadlineMs: UInt64? {
        guard follower == .following, !lagging, sent > (acknowledged ?? base) || !waitingWrites.isEmpty else { return nil }
        return lastProgressMs + configuration.acknowledgementTimeoutMs
    }

    private mutating func acknowledge(_ revision: UInt64) -> [Action] {
        acknowledged = max(acknowledged ?? 0, revision)
        if let first = unacknowledged.firstIndex(where: { $0.revision > revision }) {
            unacknowledged.removeFirst(first)
        } else {
            unacknowledged.removeAll()
        }
        guard waitingWrites.contains(where: { $0 <= revision }) else { return [] }
        waitingWrites.removeAll { $0 <= revision }
        return [.releaseWrites(upTo: revision)]
    }

    private mutating func sendMore(upTo revision: UInt64) -> [Action] {
        let limit = (acknowledged ?? base) + UInt64(configuration.window)
        let target = min(revision, limit)
        guard target > sent else { return [] }
        defer { sent = target }
        return [.sendRecords(after: sent, upTo: target)]
    }

    /// Halves the tracked commits: each pair becomes one entry with the later revision and the
    /// earlier time.
    private mutating func mergeTrackedCommits() {
        var merged: [(revision: UInt64, committedAtMs: UInt64)] = []
        merged.reserveCapacity(unacknowledged.count / 2 + 1)
        var index = 0
        while index < unacknowledged.count {
            let first = unacknowledged[index]
            let last = index + 1 < unacknowledged.count ? unacknowledged[index + 1] : first
            merged.append((last.revision, first.committedAtMs))
            index += 2
        }
        unacknowledged = merged
    }

    private mutating func releaseAll(_ reason: String) -> [Action] {
        guard !waitingWrites.isEmpty else { return [] }
        waitingWrites.removeAll()
        return [.releaseAllWrites(reason: reason)]
    }
}
