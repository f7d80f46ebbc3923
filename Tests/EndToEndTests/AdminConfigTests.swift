import ClientRuntime
import Foundation
import Licensing
import Testing
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// vcom-admin's configuration, account, key, client, licence and divergence commands against a
/// real pair: each happy path, and the store's own messages when it refuses.
@Suite(.serialized) struct AdminConfigTests {
    @Test func configurationUsersKeysAndPartyLines_writtenOnTheActiveServerAndReplicated() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && pair.secondary.configRevision == pair.primary.configRevision })

        let set = try await admin(["config", "set", "site.name", "Harbour control"], pair: pair, user: "duty")
        #expect(set.status == 0 && set.output.contains("1 change written"), "\(set.output)\(set.errors)")
        #expect(await eventually { pair.secondary.configRevision == pair.primary.configRevision }, "replicated")
        let get = try await admin(["config", "get", "site.name"], pair: pair, user: "watcher")
        #expect(get.output.trimmingCharacters(in: .newlines) == "Harbour control")
        let missing = try await admin(["config", "get", "no.such"], pair: pair)
        #expect(missing.status == 1 && missing.errors.contains("no setting 'no.such'"))
        let viewerWrite = try await admin(["config", "set", "a", "b"], pair: pair, user: "watcher")
        #expect(viewerWrite.status == 1 && viewerWrite.errors.contains("needs the operator role"), "\(viewerWrite.errors)")

        // Export, the same document back: nothing to do; a broken document: the store's message.
        let file = pair.files.file("exported.json").path
        let export = try await admin(["config", "export", "--output", file], pair: pair)
        #expect(export.status == 0, "\(export.errors)")
        let same = try await admin(["config", "import", file], pair: pair)
        #expect(same.output.contains("no differences"), "\(same.output)\(same.errors)")
        try Data("{\"format\": \"vcom-config\", \"version\": 99}".utf8).write(to: URL(fileURLWithPath: pair.files.file("broken.json").path))
        let broken = try await admin(["config", "import", pair.files.file("broken.json").path], pair: pair)
        #expect(broken.status == 1 && broken.errors.contains("broken.json:"), "\(broken.errors)")

        // An edited document: only its difference is written (the diff says so first).
        var document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
        var settings = document["settings"] as? [String: String] ?? [:]
        settings["imported.key"] = "from a file"
        document["settings"] = settings
        try JSONSerialization.data(withJSONObject: document).write(to: URL(fileURLWithPath: file))
        let diff = try await admin(["config", "diff", file], pair: pair, user: "watcher")
        #expect(diff.output.contains("imported.key"), "\(diff.output)")
        let imported = try await admin(["config", "import", file], pair: pair, user: "duty")
        #expect(imported.status == 0 && imported.output.contains("1 change written"), "\(imported.output)\(imported.errors)")
        let badSlot = try await admin(["keys", "set", "op1", "--slot", "99", "--line", "Line-1", "--listen"], pair: pair, user: "duty")
        #expect(badSlot.status == 1 && badSlot.errors.contains("99"), "a malformed value gets the store's message: \(badSlot.errors)")

        // Operators: add, disable, list; keys; party lines.
        let added = try await admin(["users", "add", "newbie", "--display-name", "New Operator"], pair: pair, user: "duty", environment: ["VCOM_NEW_PASSWORD": "long enough pw"])
        #expect(added.status == 0, "\(added.errors)")
        let short = try await admin(["users", "add", "other"], pair: pair, user: "duty", environment: ["VCOM_NEW_PASSWORD": "short"])
        #expect(short.status == 64 && short.errors.contains("at least 8 characters"))
        #expect(try await admin(["users", "disable", "newbie"], pair: pair, user: "duty").status == 0)
        let users = try await admin(["users", "list", "--json"], pair: pair, user: "watcher")
        let newbie = (users.json?["users"] as? [[String: Any]])?.first { $0["username"] as? String == "newbie" }
        #expect(newbie?["enabled"] as? Bool == false, "\(users.output)")
        #expect(try await admin(["partylines", "add", "Tower"], pair: pair, user: "duty").status == 0)
        let key = try await admin(["keys", "set", "op1", "--slot", "2", "--line", "Tower", "--talk", "--listen"], pair: pair, user: "duty")
        #expect(key.status == 0, "\(key.errors)")
        let keys = try await admin(["keys", "list", "op1"], pair: pair, user: "watcher")
        #expect(keys.output.contains("slot 2: talk+listen line Tower"), "\(keys.output)")
        let inUse = try await admin(["partylines", "remove", "Tower"], pair: pair, user: "duty")
        #expect(inUse.status == 1 && inUse.errors.contains("Tower"), "the store refuses, with its own message: \(inUse.errors)")
        let unknownLine = try await admin(["keys", "set", "op1", "--slot", "3", "--line", "Nowhere", "--listen"], pair: pair, user: "duty")
        #expect(unknownLine.status == 1 && unknownLine.errors.contains("Nowhere"), "\(unknownLine.errors)")

        // Administrators: a new viewer logs in; the last admin cannot be removed; operators cannot add admins.
        let viewer = try await admin(["admins", "add", "auditor", "--role", "viewer"], pair: pair, environment: ["VCOM_NEW_PASSWORD": "auditor pass"])
        #expect(viewer.status == 0, "\(viewer.errors)")
        #expect(try await admin(["status"], pair: pair, user: "auditor", password: "auditor pass").status == 0)
        let escalate = try await admin(["admins", "add", "sneaky", "--role", "admin"], pair: pair, user: "duty", environment: ["VCOM_NEW_PASSWORD": "sneaky pass"])
        #expect(escalate.status == 1 && escalate.errors.contains("needs the admin role"), "\(escalate.errors)")
        let last = try await admin(["admins", "remove", "root"], pair: pair)
        #expect(last.status == 1 && last.errors.contains("last account with the admin role"), "\(last.errors)")
        #expect(await eventually { pair.secondary.configRevision == pair.primary.configRevision })
        #expect(try await admin(["status"], pair: pair, user: "auditor", password: "auditor pass", servers: pair.secondary.adminEndpoint!.description).status == 0,
            "administrators are replicated: the new one logs in on the secondary too")
    }

    @Test func clientsLicenceAndDivergence() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && pair.secondary.configRevision == pair.primary.configRevision })
        let client = TestClient(servers: [pair.primary.clientEndpoint], username: "op3")
        defer { client.stop() }
        #expect(await client.waitLoggedIn(to: pair.primary.clientEndpoint))

        let list = try await admin(["clients", "list", "--json"], pair: pair, user: "watcher")
        let row = (list.json?["clients"] as? [[String: Any]])?.first
        #expect(row?["username"] as? String == "op3", "\(list.output)")
        let session = try #require(row?["session"] as? Int)
        let kick = try await admin(["clients", "kick", "\(session)"], pair: pair, user: "duty")
        #expect(kick.status == 0 && kick.output.contains("ended"), "\(kick.output)\(kick.errors)")
        #expect(await eventually { client.events.contains { if case .lost = $0 { true } else { false } } }, "the client saw its session end")

        let shown = try await admin(["licence", "show"], pair: pair, user: "watcher")
        #expect(shown.output.contains("vcom-primary: licence LIC-E2E") && shown.output.contains("vcom-secondary: licence LIC-E2E"), "\(shown.output)")
        // A renewal for this server installs and reaches the secondary; one for another server does not.
        let renewal = try pair.files.vendor.sign(
            Licence(licenceId: "LIC-E2E-2", licensee: "End-to-end tests", issued: Date(), expires: Date().addingTimeInterval(2 * 365 * 86_400),
                maxClients: 1_000, features: [.failover], serverId: "vcom-primary"))
        try Data(renewal.text.utf8).write(to: pair.files.file("renewal.txt"))
        let foreign = try pair.files.vendor.sign(
            Licence(licenceId: "LIC-OTHER", licensee: "Someone else", issued: Date(), expires: Date().addingTimeInterval(2 * 365 * 86_400),
                maxClients: 1_000, features: [.failover], serverId: "another-server"))
        try Data(foreign.text.utf8).write(to: pair.files.file("foreign.txt"))
        let refused = try await admin(["licence", "install", pair.files.file("foreign.txt").path], pair: pair)
        #expect(refused.status == 1 && refused.errors.contains("the licence is refused"), "\(refused.errors)")
        let operatorTry = try await admin(["licence", "install", pair.files.file("renewal.txt").path], pair: pair, user: "duty")
        #expect(operatorTry.status == 1 && operatorTry.errors.contains("needs the admin role"))
        let installed = try await admin(["licence", "install", pair.files.file("renewal.txt").path], pair: pair)
        #expect(installed.status == 0 && installed.output.contains("LIC-E2E-2 installed"), "\(installed.output)\(installed.errors)")
        #expect(await eventually { (try? await admin(["licence", "show"], pair: pair))?.output.contains("vcom-secondary: licence LIC-E2E-2") == true })
        let onDisk = try String(contentsOf: pair.files.file("licence.txt"), encoding: .utf8)
        #expect(onDisk.contains("LIC-E2E-2"), "the primary's licence file holds the renewal for its next start")

        let divergence = try await admin(["divergence", "list"], pair: pair, user: "watcher")
        #expect(divergence.status == 0 && divergence.output.contains("no open divergence entries"), "\(divergence.output)")
        let none = try await admin(["divergence", "discard", "7"], pair: pair, user: "duty")
        #expect(none.status == 1 && none.errors.contains("no open divergence entry 7"))
    }
}
