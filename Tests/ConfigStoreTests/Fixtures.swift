import ConfigModel
import ConfigStore
import Foundation
import PairModel
import Wire

/// A fixed, valid hash: tests that do not test hashing should not pay scrypt's cost.
let sampleHash = "$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0$" + Data(repeating: 7, count: 32).base64EncodedString()

func ann() -> Operator { Operator(username: "ann", displayName: "Ann Smith", passwordHash: sampleHash) }
func bob() -> Operator { Operator(username: "bob", displayName: "Bob Jones", passwordHash: sampleHash) }
func talkListen(_ slot: Int, _ target: KeyBinding, latching: Bool = false) -> PanelKey {
    PanelKey(slot: slot, talk: true, listen: true, target: target, latching: latching)
}

/// A store in a fresh temporary directory, removed when the test ends.
final class TemporaryStore {
    let directory: URL
    let store: ConfigStore

    init(epoch: UInt64? = 2, retention: UInt64 = ConfigStore.defaultRetention) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = try ConfigStore(path: directory.appendingPathComponent("config.sqlite").path, retention: retention)
        try store.setWriteEpoch(epoch)
    }

    var path: String { directory.appendingPathComponent("config.sqlite").path }

    func reopen() throws -> ConfigStore { try ConfigStore(path: path) }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

/// A small working configuration: two party lines, two operators with keys, an admin.
func seed(_ store: ConfigStore) throws {
    try store.write([
        .putPartyLine(PartyLine(name: "Fire-Ops")),
        .putPartyLine(PartyLine(name: "Police")),
        .putOperator(ann()),
        .putOperator(bob()),
        .setKeys(username: "ann", keys: [talkListen(1, .partyLine("Fire-Ops"), latching: true), talkListen(2, .operator("bob"))]),
        .setKeys(username: "bob", keys: [talkListen(1, .partyLine("Fire-Ops"))]),
        .putAdmin(AdminAccount(username: "root", passwordHash: sampleHash, role: .admin)),
        .setSetting(key: "site.name", value: "Metro Dispatch"),
    ])
}

/// A plain in-memory history for driving the replication machines without a store: record
/// r has epoch `epochs[r - 1]` and a chain computed from a body naming `tag` and r.
struct MemoryLog: ReplicationLog {
    var marks: [LogMark] = []
    var logStart: UInt64 = 1

    init(epochs: [UInt64], tag: String = "a") {
        var chain = ChainHash.zero
        for (index, epoch) in epochs.enumerated() {
            let revision = UInt64(index + 1)
            chain = ConfigChain.next(after: chain, revision: revision, epoch: epoch, body: Array("\(tag)\(revision)".utf8))
            marks.append(LogMark(revision: revision, epoch: epoch, chain: chain))
        }
    }

    var position: ConfigStore.Position {
        ConfigStore.Position(revision: UInt64(marks.count), epoch: marks.last?.epoch ?? 0, logStart: logStart)
    }
    var head: LogMark { marks.last ?? .origin }

    func mark(at revision: UInt64) -> LogMark? {
        if revision == 0 { return .origin }
        guard revision <= UInt64(marks.count) else { return nil }
        return marks[Int(revision) - 1]
    }

    func lastMark(notAfter revision: UInt64, epochAtMost epoch: UInt64) -> LogMark {
        marks.last { $0.revision <= revision && $0.epoch <= epoch } ?? .origin
    }
}

extension LogMark {
    var request: CatchUpRequest { CatchUpRequest(lastRevision: revision, lastEpoch: epoch, lastChain: chain) }
}

/// A record that continues `store`'s history exactly (for tests that feed `apply` by hand).
func nextRecord(after store: ConfigStore, epoch: UInt64, _ change: ConfigChange, revision: UInt64? = nil) throws -> ChangeRecord {
    let head = store.head
    return try ChangeRecord(
        revision: revision ?? head.revision + 1, epoch: epoch, committedAtMs: 0, change: change, after: head.chain ?? .zero)
}
