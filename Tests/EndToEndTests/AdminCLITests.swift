import Foundation
import Testing
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// What one vcom-admin run printed and how it ended.
struct AdminRun {
    var status: Int32
    var output: String
    var errors: String
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(output.utf8))) as? [String: Any] }
}

/// Runs vcom-admin against `pair` with `user` (the password from the environment), bounded.
func admin(
    _ arguments: [String], pair: TestPair, user: String = "root", password: String = PairFiles.adminPassword, servers: String? = nil,
    environment extra: [String: String] = [:]
) async throws -> AdminRun {
    let binary = ServerProcess.binaries.appendingPathComponent("vcom-admin")
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["VCOM_ADMIN_USER"] = user
    environment["VCOM_ADMIN_PASSWORD"] = password
    if pair.tls { environment["VCOM_ADMIN_CA"] = pair.files.file("ca.pem").path } else { environment["VCOM_ADMIN_PLAINTEXT"] = "1" }
    environment["VCOM_ADMIN_SERVERS"] =
        servers ?? [pair.primary?.adminEndpoint, pair.secondary?.adminEndpoint].compactMap { $0?.description }.joined(separator: ",")
    environment.merge(extra) { $1 }
    process.environment = environment
    // Files, not pipes: a pipe holds 64 KiB, and a process writing more than that would wait
    // for a reader that only reads once it exited.
    let name = "vcom-admin-\(UUID().uuidString.prefix(8))"
    let outFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).out")
    let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).err")
    FileManager.default.createFile(atPath: outFile.path, contents: nil)
    FileManager.default.createFile(atPath: errFile.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outFile)
        try? FileManager.default.removeItem(at: errFile)
    }
    process.standardOutput = try FileHandle(forWritingTo: outFile)
    process.standardError = try FileHandle(forWritingTo: errFile)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = ContinuousClock.now + .seconds(30)
    while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
    return AdminRun(
        status: process.terminationStatus, output: (try? String(contentsOf: outFile, encoding: .utf8)) ?? "",
        errors: (try? String(contentsOf: errFile, encoding: .utf8)) ?? "")
}

/// vcom-admin against real servers (issue 12's proof): each command's happy path, refused
/// authorization, refused switchovers, bad input, and the audit log holding every attempt.
@Suite(.serialized) struct AdminCLITests {
    @Test func theFailoverStory_statusIncidentsAndTheAuthorizedSwitchBack() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && pair.secondary.configRevision == pair.primary.configRevision })

        let status = try await admin(["status", "--json"], pair: pair)
        #expect(status.status == 0, "\(status.errors)")
        #expect(status.json?["serving"] as? [String] == ["vcom-primary"], "\(status.output)")
        let human = try await admin(["status"], pair: pair)
        #expect(human.output.contains("serving: vcom-primary (primary)"), "\(human.output)")
        #expect(human.output.contains("licence LIC-E2E"), "\(human.output)")

        pair.primary.kill(SIGKILL)
        _ = await pair.primary.waitForExit()
        #expect(await eventually { pair.secondary.isActive })
        try await pair.startPrimary()
        #expect(await eventually { pair.primary.isAwaitingAuthorization }, "\(pair.logs)")

        let incidents = try await admin(["incidents", "list", "--json"], pair: pair)
        let list = incidents.json?["incidents"] as? [[String: Any]] ?? []
        let id = try #require(list.first?["id"] as? String, "\(incidents.output)")
        #expect((list.first?["cause"] as? String)?.contains("peer link lost") == true)
        let show = try await admin(["incidents", "show", id], pair: pair)
        #expect(show.status == 0 && show.output.contains("cause: peer link lost") && show.output.contains("--incident \(id)"), "\(show.output)")
        let waiting = try await admin(["status"], pair: pair)
        #expect(waiting.output.contains("AWAITING AUTHORIZATION"), "\(waiting.output)")
        #expect(waiting.output.contains("serves because of incident \(id)"), "\(waiting.output)")

        // The switch back must name the incident, and a wrong one is refused too.
        let unnamed = try await admin(["switchover", "--to", "primary", "--yes"], pair: pair)
        #expect(unnamed.status == 1 && unnamed.errors.contains("serves because of incident \(id); the switchover must acknowledge it (none was named)"), "\(unnamed.errors)")
        let wrong = try await admin(["switchover", "--to", "primary", "--incident", "S9-9", "--yes"], pair: pair)
        #expect(wrong.status == 1 && wrong.errors.contains("'S9-9' is not it"), "\(wrong.errors)")
        let unconfirmed = try await admin(["switchover", "--to", "primary", "--incident", id], pair: pair)
        #expect(unconfirmed.status == 1 && unconfirmed.errors.contains("--yes"), "no terminal, no --yes: nothing happens")
        #expect(pair.secondary.isActive)

        let back = try await admin(["switchover", "--to", "primary", "--incident", id, "--yes"], pair: pair)
        #expect(back.status == 0, "\(back.output)\(back.errors)\n\(pair.logs)")
        #expect(back.output.contains("vcom-primary serves"), "\(back.output)")
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby })
        let again = try await admin(["switchover", "--to", "primary", "--yes"], pair: pair)
        #expect(again.status == 0 && again.output.contains("already serves"), "\(again.output)")

        let audit = try await admin(["audit", "--json", "--limit", "200"], pair: pair)
        let entries = (audit.json?["audit"] as? [[String: Any]] ?? []).map { "\($0["action"] ?? "") -> \($0["result"] ?? "")" }
        #expect(entries.contains { $0.hasPrefix("switchover (check only) -> refused") }, "\(entries)")
        #expect(entries.contains { $0.hasPrefix("switchover --incident \(id) -> ok") }, "\(entries)")
        #expect(try await admin(["incidents", "ack", id], pair: pair, user: "duty").output.contains("acknowledged"))
    }

    @Test func theEmergencyOverride_aPrimaryWhosePeerIsGoneServesOnAnAdminsWord() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && pair.secondary.configRevision == pair.primary.configRevision })
        pair.primary.kill(SIGKILL)
        _ = await pair.primary.waitForExit()
        #expect(await eventually { pair.secondary.isActive })
        try await pair.startPrimary()
        #expect(await eventually { pair.primary.isAwaitingAuthorization })
        pair.secondary.kill(SIGKILL)
        _ = await pair.secondary.waitForExit()
        let primaryOnly = pair.primary.adminEndpoint!.description
        let noReason = try await admin(["activate", "--force", "--reason", " "], pair: pair, servers: primaryOnly)
        #expect(noReason.status == 1 && noReason.errors.contains("must say why"), "\(noReason.errors)")
        let forced = try await admin(["activate", "--force", "--reason", "secondary site lost power, ticket 4711"], pair: pair, servers: primaryOnly)
        #expect(forced.status == 0, "\(forced.output)\(forced.errors)\n\(pair.logs)")
        #expect(await eventually { pair.primary.isActive }, "\(pair.logs)")
        let incidents = try await admin(["incidents", "list", "--json"], pair: pair, servers: primaryOnly)
        let causes = (incidents.json?["incidents"] as? [[String: Any]] ?? []).compactMap { $0["cause"] as? String }
        #expect(causes.contains { $0.contains("ticket 4711") || $0.contains("forced") }, "recorded as an incident: \(causes)")
    }

    @Test func refusedAuthorization_wrongPasswordViewerAndLockout_allAudited() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && pair.secondary.configRevision == pair.primary.configRevision })
        let primaryOnly = pair.primary.adminEndpoint!.description

        let wrong = try await admin(["status"], pair: pair, password: "not it", servers: primaryOnly)
        // A check that cannot log in knows nothing of the pair: UNKNOWN (3), as Nagios reads it.
        #expect(wrong.status == 3 && wrong.output.contains("wrong user name or password"), "\(wrong.output)")
        let nobody = try await admin(["status"], pair: pair, user: "mallory", servers: primaryOnly)
        #expect(nobody.status == 3 && nobody.output.contains("wrong user name or password"), "an unknown name looks the same")

        let viewer = try await admin(["switchover", "--to", "secondary", "--yes"], pair: pair, user: "watcher")
        #expect(viewer.status == 1 && viewer.errors.contains("needs the operator role"), "\(viewer.errors)")
        #expect(pair.primary.isActive, "the viewer changed nothing")
        let viewerStatus = try await admin(["status"], pair: pair, user: "watcher")
        #expect(viewerStatus.status == 0, "a viewer reads")

        // Five failures for root lock root out, even with the right password; others go on.
        for _ in 0..<4 { _ = try await admin(["status"], pair: pair, password: "guess", servers: primaryOnly) }
        let locked = try await admin(["status"], pair: pair, servers: primaryOnly)
        #expect(locked.status == 3 && locked.output.contains("too many failed logins"), "\(locked.output)")
        let audit = try await admin(["audit", "--json", "--limit", "100"], pair: pair, user: "watcher", servers: primaryOnly)
        let entries = (audit.json?["audit"] as? [[String: Any]] ?? []).map { "\($0["user"] ?? "") \($0["action"] ?? "") -> \($0["result"] ?? "")" }
        #expect(entries.filter { $0.hasPrefix("root login -> refused: wrong") }.count == 5, "\(entries)")
        #expect(entries.contains { $0.hasPrefix("mallory login -> refused") })
        #expect(entries.contains { $0.hasPrefix("root login -> refused: locked out") })
    }

    @Test func refusedSwitchoversAndBadInput_withTheMessagesAUserSees() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && pair.secondary.configRevision == pair.primary.configRevision })

        let dry = try await admin(["switchover", "--to", "secondary"], pair: pair, user: "duty")
        #expect(dry.output.contains("would switch over: service moves from vcom-primary to the secondary"), "\(dry.output)\(dry.errors)")
        let unknown = try await admin(["incidents", "show", "S7-7"], pair: pair)
        #expect(unknown.status == 1 && unknown.errors.contains("no incident 'S7-7'"), "\(unknown.errors)")
        let usage = try await admin(["switchover", "--to", "middle"], pair: pair)
        #expect(usage.status == 64 && usage.errors.contains("--to must be primary or secondary"), "\(usage.errors)")
        let noForce = try await admin(["activate", "--reason", "x"], pair: pair)
        #expect(noForce.status == 64 && noForce.errors.contains("--force"), "\(noForce.errors)")
        let badServers = try await admin(["status"], pair: pair, servers: "no-port-here")
        #expect(badServers.status == 64 && badServers.errors.contains("not host:port"), "\(badServers.errors)")
        let closed = try await admin(["status"], pair: pair, servers: "127.0.0.1:1")
        #expect(closed.status == 2 && closed.output.contains("UNREACHABLE"), "\(closed.output)")

        // The target is gone: the switchover is refused with the reason, nothing changes.
        let secondaryAdmin = pair.secondary.adminEndpoint!.description
        pair.secondary.kill(SIGKILL)
        _ = await pair.secondary.waitForExit()
        #expect(await eventually { pair.primary.metric("vcom_peer_link_up") == 0 })
        let gone = try await admin(["switchover", "--to", "secondary", "--yes"], pair: pair, user: "duty", servers: "\(pair.primary.adminEndpoint!),\(secondaryAdmin)")
        #expect(gone.status == 1 && gone.errors.contains("the peer link is down; the peer cannot take over"), "\(gone.errors)")
        #expect(pair.primary.isActive)
        let forced = try await admin(["activate", "--force", "--reason", "drill"], pair: pair, user: "duty", servers: pair.primary.adminEndpoint!.description)
        #expect(forced.status == 1 && forced.errors.contains("needs the admin role"), "\(forced.errors)")
    }
}

/// Every command's --help works (ArgumentParser checks a command's options only when it runs:
/// a clash of names would surface in front of an operator otherwise), and completion scripts
/// are generated.
@Suite struct AdminHelpTests {
    static let commands: [[String]] = [
        [], ["status"], ["incidents"], ["incidents", "list"], ["incidents", "show"], ["incidents", "ack"], ["switchover"], ["activate"],
        ["config"], ["config", "get"], ["config", "set"], ["config", "list"], ["config", "export"], ["config", "import"], ["config", "diff"],
        ["users"], ["users", "list"], ["users", "add"], ["users", "remove"], ["users", "passwd"], ["users", "disable"], ["users", "enable"],
        ["admins"], ["admins", "list"], ["admins", "add"], ["admins", "remove"], ["admins", "passwd"], ["partylines"], ["partylines", "list"],
        ["partylines", "add"], ["partylines", "remove"], ["keys"], ["keys", "list"], ["keys", "set"], ["keys", "clear"], ["licence"],
        ["licence", "show"], ["licence", "install"], ["clients"], ["clients", "list"], ["clients", "kick"], ["divergence"],
        ["divergence", "list"], ["divergence", "apply"], ["divergence", "discard"], ["audit"],
    ]

    @Test(arguments: commands) func helpWorks(_ command: [String]) async throws {
        let pair = try TestPair(operators: 0)
        let run = try await admin(command + ["--help"], pair: pair, servers: "127.0.0.1:1")
        #expect(run.status == 0, "\(command): \(run.errors)")
        #expect(run.output.contains("USAGE"), "\(command)")
    }

    @Test func completionScripts() async throws {
        let pair = try TestPair(operators: 0)
        for shell in ["bash", "zsh", "fish"] {
            let run = try await admin(["--generate-completion-script", shell], pair: pair, servers: "127.0.0.1:1")
            #expect(run.status == 0 && run.output.contains("switchover"), "\(shell)")
        }
    }
}
