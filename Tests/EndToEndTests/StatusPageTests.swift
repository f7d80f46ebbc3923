import Foundation
import PairModel
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 27: the status page, in a real browser (Debian's chromium, headless, driven by
/// Tools/browser/page-check.py over the DevTools pipe), and the JSON it shares with scripts.
@Suite(.serialized) struct StatusPageTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs page-check.py; its one JSON line and exit status.
    static func pageCheck(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> (status: Int32, result: [String: Any]) {
        let run = try runProgram("/usr/bin/python3", [root.appendingPathComponent("Tools/browser/page-check.py").path] + arguments, timeout: timeout)
        let line = run.output.split(separator: "\n").last.map(String.init) ?? ""
        let result = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? ["raw": run.output + run.errors]
        return (run.status, result)
    }

    @Test func statusJSONNamesWhoServesAndHoldsNoSecret() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && httpGet(pair.secondary.metricsEndpoint!, "/health/ready")?.status == 200 })
        for server in [pair.primary!, pair.secondary!] {
            let answer = try #require(httpGet(server.metricsEndpoint!, "/status.json"))
            #expect(answer.status == 200)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any], "\(answer.body)")
            #expect(document["serving"] as? [String] == ["vcom-primary"], "\(answer.body)")
            let servers = document["servers"] as? [[String: Any]] ?? []
            #expect(servers.map { $0["id"] as? String } == ["vcom-primary", "vcom-secondary"], "both servers, primary first: \(answer.body)")
            #expect(servers.map { $0["state"] as? String } == ["active", "standby"], "\(answer.body)")
            #expect(servers.allSatisfy { $0["epoch"] as? Int == servers[0]["epoch"] as? Int }, "\(answer.body)")
            for secret in ["hash", "password", "verifier", "token", "secret", PairFiles.adminPassword] {
                #expect(!answer.body.lowercased().contains(secret.lowercased()), "\(secret) in \(answer.body)")
            }
        }
        let page = try #require(httpGet(pair.primary.metricsEndpoint!, "/"))
        #expect(page.status == 200 && page.body.contains("/status.json") && !page.body.contains("http://") && !page.body.contains("https://"), "no external asset")
    }

    /// The page of each server in chromium: the primary's names it serving; the secondary's,
    /// open before the primary is killed, names the secondary and its incident within 2 s.
    /// Screenshots of both states are written to the test's directory.
    @Test func aPageInABrowserFollowsAFailoverWithinTwoSeconds() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && httpGet(pair.secondary.metricsEndpoint!, "/health/ready")?.status == 200 })
        let shots = pair.files.directory

        let primaryPage = "http://\(pair.primary.metricsEndpoint!)/"
        let before = try Self.pageCheck([
            primaryPage, "--selector", "body", "--expect", "vcom-primary serves", "--expect", "vcom-secondary", "--expect", "normal operation",
            "--timeout", "10", "--screenshot", shots.appendingPathComponent("status-primary-serves.png").path,
        ])
        #expect(before.status == 0, "\(before.result)")

        let secondaryPage = "http://\(pair.secondary.metricsEndpoint!)/"
        let after = try Self.pageCheck([
            secondaryPage, "--selector", "body", "--first", "vcom-primary serves", "--then", "kill -9 \(pair.primary.pid)",
            "--expect", "vcom-secondary serves", "--expect", "why: incident S", "--expect", "peer link lost", "--timeout", "2",
            "--screenshot", shots.appendingPathComponent("status-after-failover.png").path,
        ])
        #expect(after.status == 0, "the secondary's page did not show the failover within 2 s: \(after.result)\n\(pair.logs)")
        #expect((after.result["elapsed_ms"] as? Int ?? .max) <= 2000, "\(after.result)")
        #expect(FileManager.default.fileExists(atPath: shots.appendingPathComponent("status-after-failover.png").path))
        if let keep = ProcessInfo.processInfo.environment["VCOM_KEEP_SCREENSHOTS"] {
            for name in ["status-primary-serves.png", "status-after-failover.png", "status-after-failover-before.png"] {
                try? FileManager.default.removeItem(atPath: "\(keep)/\(name)")
                try? FileManager.default.copyItem(atPath: shots.appendingPathComponent(name).path, toPath: "\(keep)/\(name)")
            }
        }
    }

    @Test func aReadTokenGuardsThePagesButNotTheHealthPaths() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        let token = "f00dfeedf00dfeedf00dfeed"
        let file = pair.files.file("metrics.token")
        try Data((token + "\n").utf8).write(to: file)
        chmod(file.path, 0o600)
        try await pair.startSecondary()
        try await pair.startPrimary(extra: ["--metrics-read-token-file", file.path])
        #expect(await eventually { httpGet(pair.primary.metricsEndpoint!, "/health/active")?.status == 200 }, "health stays open")
        for path in ["/", "/status.json", "/metrics"] {
            #expect(httpGet(pair.primary.metricsEndpoint!, path)?.status == 401, "\(path) without the token")
            #expect(httpGet(pair.primary.metricsEndpoint!, path + "?token=wrong-token-wrong-token")?.status == 401, "\(path) with a wrong token")
            #expect(httpGet(pair.primary.metricsEndpoint!, path + "?token=\(token)")?.status == 200, "\(path) with the token")
        }
    }
}
