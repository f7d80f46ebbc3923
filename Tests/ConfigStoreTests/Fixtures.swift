import ConfigStore
import Foundation
import Wire

/// A fixed, valid hash: tests that do not test hashing should not pay scrypt's cost.
let sampleHash = "$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0$" + Data(repeating: 7, count: 32).base64EncodedString()

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
        store.setWriteEpoch(epoch)
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
