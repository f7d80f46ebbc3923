import Foundation
import Testing

/// Issue 27, 3: the alert rules and the Grafana dashboard under deploy/ are checked by
/// Prometheus's own tools, and every metric they name is one a running server exposes (a
/// renamed metric would leave a panel empty and an alert silent, with no error anywhere).
@Suite struct DeployFilesTests {
    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("deploy")

    static func run(_ arguments: [String], in directory: URL) throws -> (status: Int32, output: String) {
        let run = try runProgram("/usr/bin/promtool", arguments, in: directory)
        return (run.status, run.output + run.errors)
    }

    /// `vcom_...` names in a PromQL text, without the suffixes of one family's samples.
    static func metricNames(in text: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: "vcom_[a-z_]+")
        let range = NSRange(text.startIndex..., in: text)
        return Set(regex.matches(in: text, range: range).compactMap { Range($0.range, in: text).map { String(text[$0]) } })
    }

    @Test func theAlertRulesPassPromtoolAndItsUnitTests() throws {
        let directory = Self.deploy.appendingPathComponent("prometheus")
        let check = try Self.run(["check", "rules", "vcom-alerts.yml"], in: directory)
        #expect(check.status == 0 && check.output.contains("SUCCESS: 9 rules found"), "\(check.output)")
        let test = try Self.run(["test", "rules", "vcom-alerts.test.yml"], in: directory)
        #expect(test.status == 0 && test.output.contains("SUCCESS"), "\(test.output)")
    }

    @Test func everyMetricTheDashboardAndTheAlertsNameIsExposed() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive })
        let exposition = try #require(httpGet(pair.primary.metricsEndpoint!, "/metrics")).body
        let families = Set(exposition.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.compactMap { $0.split(separator: " ").dropFirst(2).first.map(String.init) })
        #expect(families.count > 15, "\(exposition.prefix(500))")

        let dashboard = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: Self.deploy.appendingPathComponent("grafana/vcom-pair.json"))) as? [String: Any])
        let panels = dashboard["panels"] as? [[String: Any]] ?? []
        #expect(panels.count >= 8)
        var named = Set<String>()
        for panel in panels {
            let targets = panel["targets"] as? [[String: Any]] ?? []
            #expect(!targets.isEmpty, "panel \(panel["title"] ?? "?") has no query")
            for target in targets { named.formUnion(Self.metricNames(in: target["expr"] as? String ?? "")) }
        }
        let rules = try String(contentsOf: Self.deploy.appendingPathComponent("prometheus/vcom-alerts.yml"), encoding: .utf8)
        named.formUnion(Self.metricNames(in: rules))
        #expect(named.count >= 10, "\(named)")
        let missing = named.filter { !families.contains($0) }
        #expect(missing.isEmpty, "named in deploy/ but not exposed: \(missing.sorted())")
        for needed in ["vcom_state", "vcom_clients_logged_in", "vcom_replication_lag_seconds", "vcom_failovers_total", "vcom_licence_expiry_timestamp_seconds"] {
            #expect(named.contains(needed), "the dashboard or the alerts show \(needed)")
        }
    }
}
