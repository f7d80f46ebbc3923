import NIOCore
import PairModel
import Wire

/// The standby's side of configuration replication. Pure: the shell applies what it is told
/// to the store and reports back.
///
/// It catches up from its last record, applies the leader's stream in order, asks again at
/// once when records are missing, and, when the histories differ, searches with the leader
/// for the last record both hold: what it holds after that goes to the divergence journal
/// when the leader's snapshot is installed.
public struct ReplicationFollower: Sendable {
    public enum Action: Equatable, Sendable {
        case sendCatchUp(CatchUpRequest)
        /// Ask the leader whether it holds this record (the search for the common point).
        case sendProbe(ConfigDivergence)
        /// Apply these records to the store (in order, skipping those already there), then
        /// call `applied(upTo:log:)`, or `applyFailed(_:log:)` if the store refused them.
        case apply([ChangeRecord])
        /// Install this snapshot (`AssembledSnapshot.decoded()`); with a revision, first move
        /// this store's records after it to the divergence journal. Then call `applied`.
        case installSnapshot(AssembledSnapshot, journalAfter: UInt64?)
        case sendAck(ConfigAck)
    }

    enum Phase: Equatable, Sendable {
        case unlinked
        /// A catch-up request is out: the leader streams, sends a snapshot, or probes.
        case catchingUp
        /// Exchanging probes to find where the histories part.
        case searching
        /// The common point is known; the snapshot that replaces what follows it is coming.
        case awaitingSnapshot
    }

    var phase: Phase = .unlinked
    /// Set once this store's history was found to differ from the leader's after this
    /// revision: the records after it go to the journal when the snapshot arrives.
    public private(set) var divergedAfter: UInt64?
    var assembly: SnapshotAssembly?
    /// A catch-up went out because records were missing; later gaps wait for its answer.
    var resendRequested = false
    /// The batch being applied ended at a gap: ask again once it is applied.
    var gapAfterBatch = false
    /// Divergences met in the stream in a row; a leader that keeps sending records that do not
    /// fit is broken, not diverged.
    var restarts = 0
    var searchRounds = 0

    public init() {}

    public var linked: Bool { phase != .unlinked }

    public mutating func linkUp(log: some ReplicationLog) -> [Action] {
        reset(to: .catchingUp)
        return [.sendCatchUp(log.head.catchUpRequest)]
    }

    public mutating func linkDown() {
        reset(to: .unlinked)
    }

    private mutating func reset(to phase: Phase) {
        self.phase = phase
        divergedAfter = nil
        assembly = nil
        resendRequested = false
        gapAfterBatch = false
        searchRounds = 0
    }

    public mutating func recordsReceived(_ records: [ChangeRecord], log: some ReplicationLog) -> [Action] {
        // During a search or while a snapshot is due, records from an earlier stream are stale.
        guard phase == .catchingUp, let first = records.first else { return [] }
        let head = log.head.revision
        if first.revision > head + 1 {
            return askAgainForGap(log)
        }
        // The run that continues this store (records it holds are passed too: the store checks
        // they are the same ones); anything after a break waits for a new catch-up.
        var batch: [ChangeRecord] = []
        var next = head + 1
        for record in records {
            if record.revision <= head || record.revision == next {
                batch.append(record)
                if record.revision == next { next += 1 }
            } else {
                gapAfterBatch = true
                break
            }
        }
        if next > head + 1 { resendRequested = false }
        return [.apply(batch)]
    }

    private mutating func askAgainForGap(_ log: some ReplicationLog) -> [Action] {
        guard !resendRequested else { return [] }
        resendRequested = true
        return [.sendCatchUp(log.head.catchUpRequest)]
    }

    /// The store reached `revision` (records applied or snapshot installed, durably).
    public mutating func applied(upTo revision: UInt64, log: some ReplicationLog) -> [Action] {
        guard linked else { return [] }
        restarts = 0
        if phase == .awaitingSnapshot { reset(to: .catchingUp) }
        var actions: [Action] = [.sendAck(ConfigAck(revision: revision))]
        if gapAfterBatch {
            gapAfterBatch = false
            resendRequested = false
            actions += askAgainForGap(log)
        }
        return actions
    }

    /// The store refused the records. Another history in the stream restarts the catch-up
    /// (the leader then probes); an older epoch, or repeated divergence, is the leader's fault.
    public mutating func applyFailed(_ error: ConfigError, log: some ReplicationLog) throws(ReplicationViolation) -> [Action] {
        guard linked else { return [] }
        gapAfterBatch = false
        switch error {
        case .diverged:
            restarts += 1
            guard restarts <= 3 else { throw ReplicationViolation("records keep contradicting the catch-up agreed on: \(error)") }
            reset(to: .catchingUp)
            return [.sendCatchUp(log.head.catchUpRequest)]
        case .staleEpoch:
            throw ReplicationViolation("the leader sent a record of an older epoch: \(error)")
        default:
            throw ReplicationViolation("the leader's records cannot be applied: \(error)")
        }
    }

    /// One chunk of a snapshot. The whole one is installed once its last chunk is in.
    public mutating func snapshotChunkReceived(_ chunk: ConfigSnapshot) throws(ReplicationViolation) -> [Action] {
        guard phase == .catchingUp || phase == .awaitingSnapshot else { return [] }
        if chunk.offset == 0 {
            assembly = try SnapshotAssembly(first: chunk)
        } else {
            guard var current = assembly else { throw ReplicationViolation("a snapshot chunk at offset \(chunk.offset) without its start") }
            try current.append(chunk)
            assembly = current
        }
        guard let complete = assembly?.complete else { return [] }
        assembly = nil
        return [.installSnapshot(complete, journalAfter: divergedAfter)]
    }

    /// The leader's probe: its last record not after the one asked about. If this store holds
    /// the same record, that is where the histories part: what follows here is journalled
    /// and a snapshot requested. Otherwise ask about an earlier record of this store.
    public mutating func divergenceReported(_ probe: ConfigDivergence, log: some ReplicationLog) throws(ConfigError) -> [Action] {
        guard phase == .catchingUp || phase == .searching else { return [] }
        searchRounds += 1
        let leader = LogMark(probe)
        let own = try log.mark(at: probe.revision)
        if let own, own.agrees(with: leader) {
            return settle(at: probe.revision)
        }
        guard probe.revision > 0 else { return settle(at: 0) }
        // Same epoch with another chain: that epoch was reused for another history (a server
        // restored from a backup), so step back before it. Otherwise step back to this store's
        // last record of an epoch the leader may share.
        let epochLimit = own.map { $0.epoch == probe.epoch && probe.epoch > 0 ? probe.epoch - 1 : probe.epoch } ?? probe.epoch
        let candidate = try log.lastMark(notAfter: probe.revision - 1, epochAtMost: epochLimit)
        guard candidate.revision > 0 else { return settle(at: 0) }
        phase = .searching
        return [.sendProbe(candidate.probe)]
    }

    private mutating func settle(at revision: UInt64) -> [Action] {
        divergedAfter = revision
        phase = .awaitingSnapshot
        return [.sendCatchUp(CatchUpRequest(lastRevision: 0, lastEpoch: 0, lastChain: nil))]
    }
}

/// A snapshot received whole: the header of its first chunk and the concatenated body.
public struct AssembledSnapshot: Equatable, Sendable {
    public var epoch: UInt64
    public var revision: UInt64
    public var chain: ChainHash
    public var epochHistory: [EpochStart]
    public var body: ByteBuffer

    /// Decodes the body (costly for a large configuration: call off the event loop).
    public func decoded() throws(ConfigError) -> StoreSnapshot {
        var buffer = body
        let configuration: SystemConfiguration
        do {
            configuration = try SystemConfiguration(wire: &buffer)
        } catch {
            throw .invalid(["the snapshot body is not a configuration: \(error)"])
        }
        guard buffer.readableBytes == 0 else { throw .invalid(["the snapshot body has \(buffer.readableBytes) bytes after its end"]) }
        return StoreSnapshot(configuration: configuration, revision: revision, epoch: epoch, chain: chain, epochHistory: epochHistory)
    }
}

/// Collects the chunks of one snapshot, in order, up to `ConfigLimits.snapshotBytes`.
struct SnapshotAssembly: Equatable, Sendable {
    var snapshot: AssembledSnapshot
    var totalLength: UInt64

    init(first chunk: ConfigSnapshot) throws(ReplicationViolation) {
        guard chunk.totalLength <= UInt64(ConfigLimits.snapshotBytes) else {
            throw ReplicationViolation("a snapshot of \(chunk.totalLength) bytes is above the limit of \(ConfigLimits.snapshotBytes)")
        }
        totalLength = chunk.totalLength
        var body = ByteBuffer()
        body.reserveCapacity(Int(chunk.totalLength))
        snapshot = AssembledSnapshot(epoch: chunk.epoch, revision: chunk.revision, chain: chunk.chain, epochHistory: chunk.epochHistory, body: body)
        try append(chunk)
    }

    mutating func append(_ chunk: ConfigSnapshot) throws(ReplicationViolation) {
        guard chunk.revision == snapshot.revision, chunk.epoch == snapshot.epoch, chunk.totalLength == totalLength,
            chunk.offset == UInt64(snapshot.body.readableBytes)
        else {
            throw ReplicationViolation(
                "snapshot chunk of revision \(chunk.revision) at offset \(chunk.offset) does not continue the snapshot of revision \(snapshot.revision) at \(snapshot.body.readableBytes)")
        }
        guard UInt64(snapshot.body.readableBytes + chunk.body.readableBytes) <= totalLength else {
            throw ReplicationViolation("snapshot chunks exceed the announced \(totalLength) bytes")
        }
        var body = chunk.body
        snapshot.body.writeBuffer(&body)
    }

    var complete: AssembledSnapshot? { UInt64(snapshot.body.readableBytes) == totalLength ? snapshot : nil }
}

extension StoreSnapshot {
    /// The snapshot as the chunks the leader sends (the epoch history in the first).
    public func chunks(maximumChunkBytes: Int = ConfigLimits.snapshotChunkBytes) throws(WireError) -> [ConfigSnapshot] {
        var body = ByteBuffer()
        try configuration.write(to: &body)
        let total = UInt64(body.readableBytes)
        var chunks: [ConfigSnapshot] = []
        var offset: UInt64 = 0
        repeat {
            let slice = body.readSlice(length: min(maximumChunkBytes, body.readableBytes)) ?? ByteBuffer()
            chunks.append(
                ConfigSnapshot(
                    epoch: epoch, revision: revision, chain: chain, totalLength: total, offset: offset,
                    epochHistory: offset == 0 ? epochHistory : [], body: slice))
            offset += UInt64(slice.readableBytes)
        } while body.readableBytes > 0
        return chunks
    }
}
