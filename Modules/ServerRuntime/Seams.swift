import ActivationPolicy
import ConfigModel
import ConfigStore
import Foundation
import HealthMonitor
import Licensing
import NIOCore
import PairNode
import PairModel
import Wire

// The runtime reaches each module through a small protocol of its own, so a test can give it
// a double for one module while the others run for real. The modules' own types conform.

/// The configuration store: what the runtime writes, applies and replicates.
public protocol ConfigurationStoring: ReplicationLog, Sendable {
    var configuration: SystemConfiguration { get }
    func setWriteEpoch(_ epoch: UInt64?) throws(ConfigError)
    @discardableResult func write(_ changes: [ConfigChange], at now: Date) throws(ConfigError) -> [ChangeRecord]
    @discardableResult func apply(_ records: [ChangeRecord]) throws(ConfigError) -> UInt64
    func snapshot() -> StoreSnapshot
    func installSnapshot(_ snapshot: StoreSnapshot, journalAfter: UInt64?, at now: Date) throws(ConfigError)
    func replicatedChanges(after revision: UInt64, limit: Int) throws(ConfigError) -> [ReplicatedChange]
    /// The divergence journal: changes a split's losing history kept (docs/config-store.md).
    func journal() throws(ConfigError) -> [ConfigStore.JournalEntry]
    func reapplyJournalEntry(_ id: Int64, at now: Date) throws(ConfigError) -> ChangeRecord
    func markJournalEntryReapplied(_ id: Int64, asRevision revision: UInt64) throws(ConfigError)
    func discardJournalEntry(_ id: Int64, note: String) throws(ConfigError)
}

extension ConfigStore: ConfigurationStoring {}

/// Every decision of one server (who serves, the link's liveness, the client census, and the
/// glue between them): `PairNode`. The runtime carries out what it returns, in order.
public protocol PairDeciding: Sendable {
    mutating func handle(_ input: PairInput, at now: MonotonicTime) -> PairEffects
    var nextDeadline: MonotonicTime? { get }
    var state: ServerState { get }
    var epoch: UInt64 { get }
    var activationIncident: String? { get }
    var isLinkUp: Bool { get }
    var peerStatus: PeerStatus? { get }
    var canActivate: Bool { get }
    var isSynced: Bool { get }
    var holdsLogins: Bool { get }
    var peerSeats: Int { get }
    var replicationRole: ReplicationRole { get }
    var inMaintenance: Bool { get }
    /// Why an administrator's switchover would be refused now (nil: it would start).
    func switchoverRefusal(acknowledging: String?) -> String?
    /// The witness as the node sees it (nil: none configured).
    func witnessStatus(at now: MonotonicTime) -> WitnessStatus?
    /// With a witness and the link down: when this server's lease ends (its logins stop then).
    var servingUntil: MonotonicTime? { get }
    /// How long a login held for a takeover may wait (nil: the shell's own hold).
    var takeoverHold: Duration? { get }
}

extension PairDeciding {
    public func witnessStatus(at now: MonotonicTime) -> WitnessStatus? { nil }
    public var servingUntil: MonotonicTime? { nil }
    public var takeoverHold: Duration? { nil }
}

extension PairNode: PairDeciding {}

/// Incidents as operators read them: stored with wall-clock times, listed, acknowledged.
public protocol IncidentRecording: Sendable {
    func record(_ incident: Incident, at wall: Date) throws
    func acknowledge(_ id: String, at wall: Date) throws
    func incidents() throws -> [StoredIncident]
}

/// The server's time: monotonic for decisions, wall-clock for records and licences.
public protocol RuntimeClock: Sendable {
    var now: MonotonicTime { get }
    var wallNow: Date { get }
}

public struct SystemClock: RuntimeClock {
    public init() {}
    public var now: MonotonicTime { MonotonicTime(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds)) }
    public var wallNow: Date { Date() }
}

/// An incident as stored: the policy's record plus when, in wall-clock time.
public struct StoredIncident: Equatable, Sendable, Codable {
    public var id: String
    public var cause: String
    public var role: String
    public var epoch: UInt64
    public var decidedAt: Date
    public var linkLostMsBefore: Int64?
    public var clientLossMsBefore: Int64?
    public var loggedInClients: Int
    public var clientsLost: Int?
    public var clientPopulation: Int?
    public var peer: String?
    public var acknowledgedAt: Date?

    public init(_ incident: Incident, at wall: Date) {
        id = incident.id
        cause = incident.cause.description
        role = incident.role.description
        epoch = incident.epoch
        decidedAt = wall
        linkLostMsBefore = incident.linkLostAt.map { (incident.decidedAt - $0).milliseconds }
        clientLossMsBefore = incident.clientLossAt.map { (incident.decidedAt - $0).milliseconds }
        loggedInClients = incident.loggedInClients
        clientsLost = incident.clientsLost
        clientPopulation = incident.clientPopulation
        peer = incident.peer?.description
        acknowledgedAt = nil
    }
}
