import Foundation
import PairModel
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP GET on loopback: the status code and the body.
func httpGet(_ endpoint: Endpoint, _ path: String) -> (status: Int, body: String)? {
    guard let fd = blockingConnect(endpoint) else { return nil }
    defer { close(fd) }
    let response = String(decoding: exchange(fd, send: Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)), as: UTF8.self)
    guard let statusLine = response.split(separator: "\r\n").first, let code = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
        return nil
    }
    let body = response.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
    return (code, body)
}

/// Issue 26, 4-9: what an operator's monitoring reads (health endpoints, /metrics in the
/// Prometheus format, status and list exit codes), the state-change hook, maintenance mode.
@Suite(.serialized) struct OperationsTests {
    /// A hook that appends its environment to a file, one JSON object a line.
    static func recordingHook(_ pair: TestPair) throws -> (program: String, log: URL) {
        let log = pair.files.file("hooks.jsonl")
        let program = pair.files.file("record-hook")
        try Data(
            """
            #!/bin/sh
            printf '{"server":"%s","state":"%s","role":"%s","epoch":"%s","incident":"%s","reason":"%s"}\\n' \
              "$VCOM_SERVER_ID" "$VCOM_STATE" "$VCOM_ROLE" "$VCOM_EPOCH" "$VCOM_INCIDENT" "$VCOM_REASON" >> \(log.path)

            """.utf8
        ).write(to: program)
        chmod(program.path, 0o755)
        return (program.path, log)
    }

    static func hookRuns(_ log: URL) -> [[String: String]] {
        ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: String]
        }
    }

    @Test func healthEndpointsMetricsAndTheHookFollowTheFailover() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        let hook = try Self.recordingHook(pair)
        try await pair.startSecondary(extra: ["--on-state-change", hook.program])
        try await pair.startPrimary(extra: ["--on-state-change", hook.program])
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && pair.secondary.configRevision == pair.primary.configRevision })

        // /health/active: 200 on the server that serves only; /health/ready: both, once synced.
        let primaryMetrics = try #require(pair.primary.metricsEndpoint)
        let secondaryMetrics = try #require(pair.secondary.metricsEndpoint)
        #expect(httpGet(primaryMetrics, "/health/active")?.status == 200)
        let standby = try #require(httpGet(secondaryMetrics, "/health/active"))
        #expect(standby.status == 503)
        let body = try #require((try? JSONSerialization.jsonObject(with: Data(standby.body.utf8))) as? [String: Any], "\(standby.body)")
        #expect(body["role"] as? String == "secondary" && body["state"] as? String == "standby", "\(standby.body)")
        #expect(await eventually { httpGet(secondaryMetrics, "/health/ready")?.status == 200 })
        #expect(httpGet(primaryMetrics, "/health/ready")?.status == 200)
        #expect(httpGet(primaryMetrics, "/health/other")?.status == 404)

        // The exposition parses as Prometheus text (the reference parser), every family has
        // HELP and TYPE, counters exist at 0, and the build, expiry and process figures are there.
        let metrics = try #require(httpGet(primaryMetrics, "/metrics")).body
        let parsed = try Self.parse(metrics)
        for (family, info) in parsed {
            #expect(!(info["help"] as? String ?? "").isEmpty, "\(family) has no HELP")
            #expect(["counter", "gauge"].contains(info["type"] as? String ?? ""), "\(family): \(info["type"] ?? "no type")")
        }
        let lint = try Self.promtool(metrics)
        #expect(lint.status == 0, "promtool check metrics: \(lint.output)")
        // promtool passes an empty input: a broken line must fail, or the check above proves nothing.
        #expect(try Self.promtool(metrics + "vcom_broken{a=\"b\" 1\n").status != 0, "promtool reads the exposition it is given")
        let samples = parsed.values.flatMap { ($0["samples"] as? [[String: Any]]) ?? [] }
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { sample in
                sample["name"] as? String == name && labels.allSatisfy { (sample["labels"] as? [String: String])?[$0.key] == $0.value }
            }?["value"] as? Double
        }
        #expect(value("vcom_build_info", ["version": "1.0.0"]) == 1)
        #expect(value("vcom_failovers_total") == 0, "counters start at 0")
        #expect(value("vcom_login_refusals_total", ["reason": "bad_credentials"]) == 0)
        #expect(value("vcom_state_change_hook_runs_total", ["outcome": "timed_out"]) == 0)
        let now = Date().timeIntervalSince1970
        #expect((value("vcom_licence_expiry_timestamp_seconds") ?? 0) > now + 300 * 86_400)
        #expect((value("vcom_certificate_expiry_timestamp_seconds") ?? 0) > now)
        #expect(value("vcom_last_failover_timestamp_seconds") == 0)
        #expect(value("vcom_maintenance") == 0)
        #expect((value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((value("process_open_fds") ?? 0) > 5)
        #expect(abs((value("process_start_time_seconds") ?? 0) - now) < 120)
        #expect(value("vcom_replication_lag_revisions") != nil)

        // The failover: the secondary's health follows, and its hook hears why.
        pair.primary.kill(SIGKILL)
        _ = await pair.primary.waitForExit()
        #expect(await eventually { httpGet(secondaryMetrics, "/health/active")?.status == 200 }, "\(pair.logs)")
        #expect(await eventually { Self.hookRuns(hook.log).contains { $0["server"] == "vcom-secondary" && $0["state"] == "active" } })
        let activation = try #require(Self.hookRuns(hook.log).last { $0["server"] == "vcom-secondary" && $0["state"] == "active" })
        #expect(activation["role"] == "secondary" && activation["incident"]?.isEmpty == false, "\(activation)")
        #expect(activation["reason"]?.contains("peer link lost") == true, "\(activation)")
        #expect(Int(activation["epoch"] ?? "") ?? 0 > 0)
        let after = try Self.parse(try #require(httpGet(secondaryMetrics, "/metrics")).body)
        let failovers = (after["vcom_failovers"]?["samples"] as? [[String: Any]])?.first { $0["name"] as? String == "vcom_failovers_total" }?["value"] as? Double
        #expect(failovers == 1, "\(after["vcom_failovers"] ?? [:])")
        let last = (after["vcom_last_failover_timestamp_seconds"]?["samples"] as? [[String: Any]])?.first?["value"] as? Double ?? 0
        #expect(abs(last - Date().timeIntervalSince1970) < 60)
        #expect(await eventually { (pair.secondary.metric("vcom_state_change_hook_runs_total{outcome=\"succeeded\"}") ?? 0) >= 2 })
    }

    @Test func maintenanceModeHoldsTheFailoverUntilItEnds_andStatusExitsForMonitoring() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && pair.secondary.configRevision == pair.primary.configRevision })
        let healthy = try await admin(["list"], pair: pair)
        #expect(healthy.status == 0 && healthy.output.contains("healthy: vcom-primary serves"), "\(healthy.output) \(healthy.errors)")
        #expect(healthy.output.contains("SERVER") && healthy.output.contains("vcom-secondary"), "\(healthy.output)")

        let refused = try await admin(["maintenance", "on", "--reason", "x", "--for", "10m"], pair: pair, user: "watcher")
        #expect(refused.status == 1 && refused.errors.contains("needs the operator role"), "\(refused.errors)")
        let on = try await admin(["maintenance", "on", "--reason", "switch firmware upgrade", "--for", "10s"], pair: pair, user: "duty")
        #expect(on.status == 0 && on.output.contains("maintenance mode on"), "\(on.output) \(on.errors)")
        // Replicated: both servers pause, and show it.
        #expect(await eventually { pair.primary.metric("vcom_maintenance") == 1 && pair.secondary.metric("vcom_maintenance") == 1 }, "\(pair.logs)")
        let status = try await admin(["status"], pair: pair)
        #expect(status.status == 1, "maintenance makes the pair degraded: \(status.output)")
        #expect(status.output.contains("MAINTENANCE MODE") && status.output.contains("switch firmware upgrade") && status.output.contains("by duty"), "\(status.output)")
        let audit = try await admin(["audit", "--json"], pair: pair, servers: pair.primary.adminEndpoint!.description)
        #expect(audit.output.contains("maintenance on --reason \\\"switch firmware upgrade\\\" --for 10s"), "\(audit.output)")
        #expect(audit.output.contains("forbidden"), "the viewer's attempt is audited too: \(audit.output)")

        // The primary dies: nobody takes over while maintenance lasts...
        pair.primary.kill(SIGKILL)
        _ = await pair.primary.waitForExit()
        #expect(await pair.secondary.waitForLog("peer link lost during maintenance"), "\(pair.secondary.log.suffix(2000))")
        let nobody = try await admin(["list", "--json"], pair: pair)
        #expect(nobody.status == 2, "nobody serves: \(nobody.output)")
        let off = try await admin(["maintenance", "off"], pair: pair, servers: pair.secondary.adminEndpoint!.description)
        #expect(off.status == 1 && off.errors.contains("no server given serves"), "a standby cannot end it alone: \(off.errors)")
        try await Task.sleep(for: .seconds(2))
        #expect(pair.secondary.isStandby, "no failover during maintenance")
        // ...and the secondary serves once it ends, with the link still down.
        #expect(await eventually(.seconds(20)) { pair.secondary.isActive }, "\(pair.secondary.log.suffix(3000))")
        #expect(pair.secondary.log.contains("maintenance mode ended"))
        #expect(pair.secondary.metric("vcom_maintenance") == 0)
        let degraded = try await admin(["list"], pair: pair)
        #expect(degraded.status == 1 && degraded.output.contains("UNREACHABLE") && degraded.output.contains("DEGRADED: vcom-secondary serves"), "\(degraded.output)")
    }

    /// Issue 26, 11: a secondary whose data directory was lost starts empty and takes the
    /// licence and the whole configuration from the primary; status shows it caught up.
    @Test func aSecondaryRebuiltFromAnEmptyDataDirectoryCatchesUp() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && pair.secondary.configRevision == pair.primary.configRevision })
        for n in 0..<5 {
            let set = try await admin(["config", "set", "site.rebuild\(n)", "value \(n)"], pair: pair)
            #expect(set.status == 0, "\(set.errors)")
        }
        pair.secondary.kill(SIGKILL)
        _ = await pair.secondary.waitForExit()
        try FileManager.default.removeItem(at: pair.files.dataDirectory(.secondary))
        try await pair.startSecondary()
        #expect(await eventually(.seconds(20)) {
            httpGet(pair.secondary.metricsEndpoint!, "/health/ready")?.status == 200 && pair.secondary.configRevision == pair.primary.configRevision
        }, "\(pair.logs)")
        #expect(pair.secondary.log.contains("first configuration sync completed"), "\(pair.secondary.log.suffix(2000))")
        let status = try await admin(["status", "--json"], pair: pair)
        let servers = (status.json?["servers"] as? [[String: Any]] ?? []).compactMap { $0["status"] as? [String: Any] }
        let secondary = try #require(servers.first { $0["role"] as? String == "secondary" }, "\(status.output)")
        #expect(secondary["synced"] as? Bool == true && secondary["licence"] as? String == "LIC-E2E", "\(secondary)")
        #expect(secondary["config_revision"] as? Int == Int(pair.primary.configRevision))
        #expect(status.status == 0, "a healthy pair again: \(status.output)")
    }

    /// `promtool check metrics` (Prometheus's own linter: naming, units, HELP) on the exposition.
    static func promtool(_ exposition: String) throws -> (status: Int32, output: String) {
        let run = try runProgram("/usr/bin/promtool", ["check", "metrics"], input: exposition)
        return (run.status, run.output + run.errors)
    }

    /// `prometheus_client`'s own parser, as Prometheus reads the text format: family name ->
    /// help, type and samples.
    static func parse(_ exposition: String) throws -> [String: [String: Any]] {
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(sys.stdin.read()):
                out[family.name] = {"help": family.documentation, "type": family.type,
                                    "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples]}
            print(json.dumps(out))
            """
        let run = try runProgram("/usr/bin/python3", ["-c", script], input: exposition)
        guard run.status == 0, let parsed = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: [String: Any]] else {
            throw TestFailure("the exposition does not parse as Prometheus text: \(run.errors)")
        }
        return parsed
    }
}
