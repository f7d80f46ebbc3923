import ActivationPolicy
import ConfigModel
import ConfigStore
import Foundation
import Licensing
import Logging
import NIOCore
import PairModel
import PairNode
import Testing
import Wire

@testable import ServerRuntime

/// A seam that holds (issue 25, 9): the runtime started with a substitute for one module uses
/// the substitute, and the rest goes on as usual. (The incident log's test is in
/// RuntimeScenarioTests.)
@Suite(.serialized) struct SeamTests {
    @Test func theStoreSeam_writesAndReplicationGoThroughTheSubstitute() async throws {
        let pair = try InProcessPair()
        let store = CountingStore(try ConfigStore(path: pair.dataDirectory(.primary).appendingPathComponent("config.sqlite").path))
        try await pair.startSecondary()
        try await pair.startPrimary(modules: .init(store: store))
        #expect(await pair.primary.waitForState(.active, timeout: .seconds(10)))
        let records = try await pair.primary.write([.setSetting(key: "seam.test", value: "through the substitute")])
        #expect(store.writes == 1, "the runtime wrote through the substitute")
        #expect(await eventually { await pair.secondary.status()?.configRevision == records.last?.revision })
        #expect(store.reads > 0, "replication read the store through it (a snapshot, the log)")
        await pair.shutdown()
    }

    @Test func theNodeSeam_everyInputReachesTheSubstitute() async throws {
        let pair = try InProcessPair()
        let inputs = InputLog()
        try await pair.startSecondary()
        let configuration = pair.settings(.primary).nodeConfiguration
        try await pair.startPrimary(
            modules: .init(node: { persisted, synced in
                RecordingNode(PairNode(role: .primary, configuration: configuration, persisted: persisted, synced: synced), log: inputs)
            }))
        #expect(await pair.primary.waitForState(.active, timeout: .seconds(10)))
        let client = RecordingClient([pair.primary.clientAddress], username: "op1")
        #expect(await client.waitLoggedIn(to: pair.primary.clientAddress))
        // The login reaches the node a moment after the client hears it accepted.
        #expect(await eventually(.seconds(5)) { inputs.names.contains("clients") }, "\(Set(inputs.names))")
        client.connection.stop()
        let seen = inputs.names
        for name in ["start", "licence", "peerConnected", "peerSignal", "clients"] { #expect(seen.contains(name), "\(name) in \(Set(seen))") }
        await pair.shutdown()
    }

    @Test func theLicenceSeam_theSubstituteVerifierDecides() async throws {
        let pair = try InProcessPair()
        // A licence from another vendor: the configured vendor key refuses it...
        let otherVendor = VendorSigningKey()
        let licence = try otherVendor.sign(
            Licence(
                licenceId: "LIC-SEAM", licensee: "Seam", issued: Date().addingTimeInterval(-86_400), expires: Date().addingTimeInterval(86_400),
                maxClients: 1, features: [.failover], serverId: "vcom-primary"))
        try Data(licence.text.utf8).write(to: pair.licenceFile)
        try await pair.startSecondary()
        await #expect(throws: ServerRuntime.StartError.self) { try await pair.startPrimary() }
        // ...the substitute that trusts that vendor takes it, and the runtime enforces it.
        try await pair.startPrimary(modules: .init(licences: LicenceVerifier(trustedKeys: [otherVendor.publicKey])))
        #expect(await pair.primary.waitForState(.active, timeout: .seconds(10)))
        let first = RecordingClient([pair.primary.clientAddress], username: "op1")
        #expect(await first.waitLoggedIn(to: pair.primary.clientAddress))
        #expect(try await loginOnce(pair.primary.clientAddress, username: "op2", credential: .password(InProcessPair.password)) == .refused(.licenceLimit))
        first.connection.stop()
        await pair.shutdown()
    }

    @Test func theTransportSeam_everyConnectionPassesTheSubstitute() async throws {
        let pair = try InProcessPair()
        let transport = RecordingTransport()
        try await pair.startSecondary(modules: .init(transport: transport))
        try await pair.startPrimary(modules: .init(transport: transport))
        #expect(await pair.primary.waitForState(.active, timeout: .seconds(10)))
        let client = RecordingClient([pair.primary.clientAddress], username: "op1")
        #expect(await client.waitLoggedIn(to: pair.primary.clientAddress))
        client.connection.stop()
        #expect(transport.seen.contains("accepted client"), "\(transport.seen)")
        #expect(transport.seen.contains("accepted peer") && transport.seen.contains("dialled"), "\(transport.seen)")
        await pair.shutdown()
    }
}

/// A store that counts what goes through it, and forwards everything to a real one.
final class CountingStore: ConfigurationStoring, @unchecked Sendable {
    let inner: ConfigStore
    private let lock = NSLock()
    private var counts = (writes: 0, reads: 0)
    init(_ inner: ConfigStore) { self.inner = inner }

    var writes: Int { lock.withLock { counts.writes } }
    var reads: Int { lock.withLock { counts.reads } }
    private func note(write: Bool) { lock.withLock { if write { counts.writes += 1 } else { counts.reads += 1 } } }

    var configuration: SystemConfiguration { inner.configuration }
    var position: LogPosition { inner.position }
    var head: LogMark { inner.head }
    func mark(at revision: UInt64) throws(ConfigError) -> LogMark? { try inner.mark(at: revision) }
    func lastMark(notAfter revision: UInt64, epochAtMost epoch: UInt64) throws(ConfigError) -> LogMark {
        try inner.lastMark(notAfter: revision, epochAtMost: epoch)
    }
    func setWriteEpoch(_ epoch: UInt64?) throws(ConfigError) { try inner.setWriteEpoch(epoch) }
    func write(_ changes: [ConfigChange], at now: Date) throws(ConfigError) -> [ChangeRecord] {
        note(write: true)
        return try inner.write(changes, at: now)
    }
    func apply(_ records: [ChangeRecord]) throws(ConfigError) -> UInt64 { try inner.apply(records) }
    func snapshot() -> StoreSnapshot {
        note(write: false)
        return inner.snapshot()
    }
    func installSnapshot(_ snapshot: StoreSnapshot, journalAfter: UInt64?, at now: Date) throws(ConfigError) {
        try inner.installSnapshot(snapshot, journalAfter: journalAfter, at: now)
    }
    func replicatedChanges(after revision: UInt64, limit: Int) throws(ConfigError) -> [ReplicatedChange] {
        note(write: false)
        return try inner.replicatedChanges(after: revision, limit: limit)
    }
    func journal() throws(ConfigError) -> [ConfigStore.JournalEntry] { try inner.journal() }
    func reapplyJournalEntry(_ id: Int64, at now: Date) throws(ConfigError) -> ChangeRecord { try inner.reapplyJournalEntry(id, at: now) }
    func markJournalEntryReapplied(_ id: Int64, asRevision revision: UInt64) throws(ConfigError) {
        try inner.markJournalEntryReapplied(id, asRevision: revision)
    }
    func discardJournalEntry(_ id: Int64, note: String) throws(ConfigError) { try inner.discardJournalEntry(id, note: note) }
}

/// The inputs a node was given, by name.
final class InputLog: @unchecked Sendable {
    private let lock = NSLock()
    private var kept: [String] = []
    func note(_ input: PairInput) {
        let name = String("\(input)".prefix { $0.isLetter })
        lock.withLock { kept.append(name) }
    }
    var names: [String] { lock.withLock { kept } }
}

/// A node that notes every input, then decides as the real one does.
struct RecordingNode: PairDeciding {
    var node: PairNode
    let log: InputLog
    init(_ node: PairNode, log: InputLog) {
        self.node = node
        self.log = log
    }

    mutating func handle(_ input: PairInput, at now: MonotonicTime) -> PairEffects {
        log.note(input)
        return node.handle(input, at: now)
    }
    var nextDeadline: MonotonicTime? { node.nextDeadline }
    var state: ServerState { node.state }
    var epoch: UInt64 { node.epoch }
    var activationIncident: String? { node.activationIncident }
    var isLinkUp: Bool { node.isLinkUp }
    var peerStatus: PeerStatus? { node.peerStatus }
    var canActivate: Bool { node.canActivate }
    var isSynced: Bool { node.isSynced }
    var holdsLogins: Bool { node.holdsLogins }
    var peerSeats: Int { node.peerSeats }
    var replicationRole: ReplicationRole { node.replicationRole }
    var inMaintenance: Bool { node.inMaintenance }
    func switchoverRefusal(acknowledging incident: String?) -> String? { node.switchoverRefusal(acknowledging: incident) }
}

/// A transport in clear that notes every connection it is given.
final class RecordingTransport: ConnectionSecuring, @unchecked Sendable {
    private let lock = NSLock()
    private var kept: [String] = []
    var seen: [String] { lock.withLock { kept } }

    func addAccepted(_ port: ServerPort, to channel: Channel) throws { lock.withLock { kept.append("accepted \(port.rawValue)") } }
    func addDialing(to channel: Channel, address: String, logger: Logger) throws { lock.withLock { kept.append("dialled") } }
}
