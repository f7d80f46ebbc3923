import PairModel
import Wire

/// A position in a history and what identifies it there.
public struct LogMark: Equatable, Sendable, CustomStringConvertible {
    public var revision: UInt64
    public var epoch: UInt64
    /// Nil when the record was pruned: only its epoch is known (from the epoch history).
    public var chain: ChainHash?

    public init(revision: UInt64, epoch: UInt64, chain: ChainHash?) {
        self.revision = revision
        self.epoch = epoch
        self.chain = chain
    }

    package init(_ record: ChangeRecord) { self.init(revision: record.revision, epoch: record.epoch, chain: record.chain) }

    public static let origin = LogMark(revision: 0, epoch: 0, chain: .zero)

    /// Whether two marks of the same revision can be the same record: equal epochs, and
    /// equal chains where both are known.
    public func agrees(with other: LogMark) -> Bool {
        revision == other.revision && epoch == other.epoch && (chain == nil || other.chain == nil || chain == other.chain)
    }

    public var description: String { "\(revision)/e\(epoch)" + (chain.map { "/\($0)" } ?? "") }
}


/// The whole configuration at one revision, with what a follower needs to continue the
/// history from it.
public struct StoreSnapshot: Equatable, Sendable {
    public var configuration: SystemConfiguration
    public var revision: UInt64
    public var epoch: UInt64
    public var chain: ChainHash
    public var epochHistory: [EpochStart]

    public init(configuration: SystemConfiguration, revision: UInt64, epoch: UInt64, chain: ChainHash, epochHistory: [EpochStart]) {
        self.configuration = configuration
        self.revision = revision
        self.epoch = epoch
        self.chain = chain
        self.epochHistory = epochHistory
    }
}

/// Where a store is: its last record and the oldest one its log still holds.
public struct LogPosition: Equatable, Sendable {
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
