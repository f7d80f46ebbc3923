import Foundation
import Testing
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// vcom-client-sim's figures: checked against a scripted server whose outage is known, and on
/// a real pair through a kill (issue 11's proof). Timings here are lower bounds the script
/// guarantees, not speeds.
@Suite(.serialized) struct ClientSimTests {
    @Test func aKnownOutageIsReportedAsOne_fromTheLossToTheLoginOnTheOtherServer() async throws {
        let first = try await ScriptedServer(mode: .accepting)
        let second = try await ScriptedServer(mode: .refusing)
        first.set(.accepting, alternate: second.endpoint)
        second.set(.refusing, alternate: first.endpoint)
        let rowsFile = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-sim-\(UUID().uuidString.prefix(8)).csv")
        defer { try? FileManager.default.removeItem(at: rowsFile) }
        let sim = try SimProcess(arguments: [
            "--servers", "\(first.endpoint),\(second.endpoint)", "--clients", "3", "--talkers", "1", "--duration", "30",
            "--until-all-on", "\(second.endpoint)", "--plaintext", "--per-client", rowsFile.path,
        ])
        #expect(await eventually { sim.loggedIn(to: "\(first.endpoint)") == 3 }, "\(sim.objects)")
        // Media flowing to every listener before the fault (generous: the suites run in
        // parallel, and a listener that heard nothing before has no gap to report).
        try await Task.sleep(for: .milliseconds(1500))

        sim.signal(SIGUSR1)  // the fault's moment, then the fault
        try await Task.sleep(for: .milliseconds(200))
        let down = ContinuousClock.now
        await first.goDown()
        // The second server turns clients away for 700 ms, then takes them.
        try await Task.sleep(for: .milliseconds(700))
        #expect(sim.loggedIn(to: "\(second.endpoint)") == 0)
        second.set(.accepting, alternate: first.endpoint)
        let status = await sim.waitForExit(timeout: .seconds(20))
        let elapsed = ContinuousClock.now - down
        await second.goDown()

        #expect(status == 0, "\(sim.objects)")
        let summary = try #require(sim.summary, "\(sim.objects)")
        #expect(summary["never_back"] as? Int == 0)
        #expect((summary["on_at_end"] as? [String: Any])?["\(second.endpoint)"] as? Int == 3)
        // Every client had exactly one outage, at least as long as the second server refused,
        // and no longer than the whole wait here.
        #expect(figure(summary, "outages", "count") == 3)
        let outageMin = try #require(figure(summary, "outages", "p50_ms"))
        let outageMax = try #require(figure(summary, "outages", "max_ms"))
        #expect(outageMin >= 690, "outage p50 \(outageMin) ms")
        #expect(outageMax <= Double(elapsed.components.seconds * 1000) + 50, "outage max \(outageMax) ms")
        // Measured from the mark, 200 ms before the fault.
        #expect(figure(summary, "relogin", "count") == 3)
        #expect(try #require(figure(summary, "relogin", "p50_ms")) >= outageMin + 190)
        // Listeners heard the scripted talker before and after: the gap spans the outage.
        #expect(figure(summary, "media_gap", "count") == 3)
        #expect(try #require(figure(summary, "media_gap", "p50_ms")) >= 690)

        // The same outage client by client (--per-client): each noticed its loss after the
        // fault (200 ms after the mark) and was back at least the refusal's 700 ms later.
        let rows = try String(contentsOf: rowsFile, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        try #require(rows.count == 4, "\(rows)")
        #expect(rows[0].joined(separator: ",") == "client,loop,talker,watch,first_login_ms,loss_noticed_ms,back_ms,media_gap_ms,on_at_end")
        #expect(rows.dropFirst().map { $0[0] } == ["0", "1", "2"])
        #expect(rows.dropFirst().filter { $0[2] == "1" }.count == 1)  // one talker
        for row in rows.dropFirst() {
            try #require(row.count == 9, "\(row)")
            let noticed = try #require(Double(row[5]), "\(row)")
            let back = try #require(Double(row[6]), "\(row)")
            #expect(noticed >= 190 && back >= noticed + 690, "\(row)")
            #expect(row[8] == "\(second.endpoint)")
        }
        // The summary's histogram keeps three significant digits.
        let slowest = try #require(rows.dropFirst().compactMap { Double($0[6]) }.max())
        let reloginMax = try #require(figure(summary, "relogin", "max_ms"))
        #expect(abs(slowest - reloginMax) <= reloginMax / 500, "rows \(slowest) ms, summary \(reloginMax) ms")
    }

    @Test func theRampWaitsForClientsInTheirFirstLogin_andSaysWhereTheyAreStuck() async throws {
        let hung = try await ScriptedServer(mode: .silent)
        let sim = try SimProcess(arguments: [
            "--servers", "\(hung.endpoint)", "--clients", "9", "--talkers", "0", "--max-starting", "3", "--duration", "2.5", "--plaintext",
        ])
        // The run ends at its duration although the ramp could not finish (each first attempt
        // waits out the 3 s greeting timeout), and nobody logged in fails it.
        #expect(await sim.waitForExit(timeout: .seconds(15)) == 1, "\(sim.objects)")
        let started = sim.objects.filter { $0["type"] as? String == "progress" }.compactMap { $0["started"] as? Int }
        #expect(!started.isEmpty && started.allSatisfy { $0 == 3 }, "at most 3 in their first login: \(started)")
        let reasons = try #require(sim.objects.last { $0["type"] as? String == "reasons" }?["reasons"] as? [String: Int])
        let stuck = reasons.filter { $0.key.hasPrefix("never logged in, last: connecting to \(hung.endpoint)") }
        #expect(stuck.values.reduce(0, +) == 3, "\(reasons)")
        #expect(reasons.filter { $0.key.contains("not started") }.values.reduce(0, +) == 6, "\(reasons)")
    }

    @Test func shortOfDescriptors_theLastClientsRunWithoutAWatch_andAllGetIn() async throws {
        let server = try await ScriptedServer(mode: .accepting)
        let other = try await ScriptedServer(mode: .refusing)
        server.set(.accepting, alternate: other.endpoint)
        // 40 clients and their watches would need 144 descriptors; the shell allows 120.
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-sim-limit-\(UUID().uuidString.prefix(8)).txt")
        defer { try? FileManager.default.removeItem(at: output) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [
            "-c", "ulimit -n 120 && exec \"$0\" \"$@\" 2>&1", SimProcess.binary.path, "--servers", "\(server.endpoint),\(other.endpoint)",
            "--clients", "40", "--talkers", "0", "--duration", "4", "--plaintext",
        ]
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: output)
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let deadline = ContinuousClock.now + .seconds(20)
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(!process.isRunning && process.terminationStatus == 0, "\(text)")
        #expect(text.contains("the last 24 clients run without a watch"), "\(text)")
        #expect(text.contains("40 clients, 40 ever logged in, 0 not logged in at the end"), "\(text)")
    }

    @Test func clientsThatNeverComeBackFailTheRunAndAreCounted() async throws {
        let only = try await ScriptedServer(mode: .accepting)
        let sim = try SimProcess(arguments: ["--servers", "\(only.endpoint)", "--clients", "2", "--talkers", "0", "--duration", "3", "--plaintext"])
        #expect(await eventually { sim.loggedIn(to: "\(only.endpoint)") == 2 }, "\(sim.objects)")
        sim.signal(SIGUSR1)
        try await Task.sleep(for: .milliseconds(100))
        await only.goDown()
        let status = await sim.waitForExit(timeout: .seconds(15))
        #expect(status == 1, "nobody came back: the run fails")
        let summary = try #require(sim.summary)
        #expect(summary["never_back"] as? Int == 2)
        #expect(summary["not_logged_in_at_end"] as? Int == 2)
        #expect(sim.objects.contains { ($0["text"] as? String)?.contains("2 clients were not logged in at the end") == true })
    }

    /// A few hundred clients through a kill -9 of the primary, on real servers: all of them
    /// back, on the secondary, talking.
    @Test func aFewHundredClientsThroughAKill_allBackOnTheSecondary() async throws {
        let clients = 200
        let pair = try TestPair(operators: clients)
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby }, "\(pair.logs)")
        #expect(await eventually { pair.secondary.configRevision == pair.primary.configRevision })
        let primary = "\(pair.primary.clientEndpoint)"
        let secondary = "\(pair.secondary.clientEndpoint)"
        let sim = try SimProcess(arguments: [
            "--servers", "\(primary),\(secondary)", "--clients", "\(clients)", "--talkers", "1", "--operators-per-line", "1000",
            "--password", PairFiles.password, "--duration", "60", "--until-all-on", secondary, "--ca", pair.files.file("ca.pem").path,
        ])
        #expect(await eventually(.seconds(60)) { sim.loggedIn(to: primary) == clients }, "\(sim.lastProgress ?? [:])\n\(pair.logs)")
        sim.signal(SIGUSR1)
        try await Task.sleep(for: .milliseconds(50))
        pair.primary.kill(SIGKILL)
        let status = await sim.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "\(sim.objects.suffix(3))\n\(pair.logs)")
        let summary = try #require(sim.summary)
        #expect(summary["never_back"] as? Int == 0)
        #expect((summary["on_at_end"] as? [String: Any])?[secondary] as? Int == clients)
        #expect(figure(summary, "relogin", "count") == Double(clients))
        #expect(figure(summary, "media_gap", "count") ?? 0 > 0, "listeners heard the talker across the failover")
    }
}
