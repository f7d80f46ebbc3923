import Foundation
import Testing

@testable import ServerRuntime

/// Every setting is declared once (issue 25, 6): the doc's table is the table's own rendering,
/// flags and file keys parse through it, and its defaults are the runtime's.
@Suite struct SettingsTableTests {
    static let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/configuration.md")

    @Test func theDocsTableIsTheSettingsTable() throws {
        let text = try String(contentsOf: Self.docs, encoding: .utf8)
        #expect(text.contains(SettingsTable.markdown), "docs/configuration.md's table differs from `vcom-server settings --markdown`: paste it again")
    }

    @Test func flagsAndFileKeysReadThroughTheTable() throws {
        var values = SettingValues()
        try values.apply(flags: ["--peer-misses", "5", "--plaintext", "--client-heartbeat-ms=700", "--no-client-tls"])
        #expect(values.integer("timings.peer-misses") == 5 && values.boolean("tls.plaintext") && !values.boolean("tls.clients"))
        #expect(values.milliseconds("timings.client-heartbeat-ms") == .milliseconds(700))
        #expect(values.integer("timings.peer-heartbeat-ms") == 100, "absent: the table's default")
        #expect(throws: ConfigurationProblem.self) { try values.apply(flags: ["--peer-misses", "1"]) }
        #expect(throws: ConfigurationProblem.self) { try values.apply(flags: ["--no-such-flag"]) }
        #expect(throws: ConfigurationProblem.self) { try values.set("server.colour", "blue") }
    }

    @Test func theTablesDefaultsAreTheRuntimesDefaults() throws {
        let values = SettingValues()
        let timings = ServerSettings.Timings()
        #expect(values.milliseconds("timings.peer-heartbeat-ms") == timings.peerHeartbeat)
        #expect(values.integer("timings.peer-misses") == timings.peerMisses)
        #expect(values.milliseconds("timings.client-heartbeat-ms") == timings.clientHeartbeat)
        #expect(values.integer("timings.client-misses") == timings.clientMisses)
        #expect(.seconds(values.integer("timings.token-lifetime-s")) == timings.tokenLifetime)
        #expect(values.milliseconds("timings.startup-peer-wait-ms") == timings.startupPeerWait)
        #expect(values.milliseconds("timings.handover-timeout-ms") == timings.handoverTimeout)
        #expect(values.milliseconds("timings.switchover-timeout-ms") == timings.switchoverTimeout)
        #expect(values.milliseconds("timings.announcement-delay-ms") == timings.announcementDelayAfterClose)
        let limits = ConnectionLimits()
        for (key, path) in ServerSettings.limitPaths {
            var settings = ServerSettings(
                role: .primary, serverId: "p", primaryId: "p", clientListen: .init(host: "127.0.0.1", port: 0), dataDirectory: URL(fileURLWithPath: "/"),
                vendorKeys: [], clusterSecret: [])
            settings.limits = limits
            #expect(settings[keyPath: path] == values.integer(key), "\(key)")
        }
    }
}

/// docs/server.md lists every metric family the server exports.
@Suite struct MetricsDocumentationTests {
    @Test func everyFamilyIsInTheDocs() throws {
        let docs = SettingsTableTests.docs.deletingLastPathComponent().appendingPathComponent("server.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for family in RuntimeMetrics.help.keys.sorted() {
            #expect(text.contains("`\(family)"), "docs/server.md does not list \(family)")
        }
    }
}

/// The sample /etc/vcom/server.toml the package installs (issue 26, 1): it parses, every key is
/// known, and docs/configuration.md shows exactly this file.
@Suite struct SampleConfigurationTests {
    static let sample = SettingsTableTests.docs.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tools/package/server.toml")

    @Test func theSampleParsesAndTheDocsShowIt() throws {
        let values = try SettingValues.load(file: Self.sample.path)
        #expect(values.string("server.role") == "primary" && values.string("peer.address") == "192.0.2.2:7301")
        let text = try String(contentsOf: Self.sample, encoding: .utf8)
        let docs = try String(contentsOf: SettingsTableTests.docs, encoding: .utf8)
        #expect(docs.contains("```toml\n" + text + "```"), "docs/configuration.md must show Tools/package/server.toml verbatim")
    }
}

/// `witness.etcd` is a list: a TOML array of strings, or comma-separated (issue 29).
@Suite struct WitnessSettingTests {
    @Test func aTOMLArrayOfURLsIsTheList_andOtherArraysAreRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("witness-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = directory.appendingPathComponent("good.toml")
        try Data("[witness]\netcd = [\"http://10.0.0.9:2379\", \"http://10.0.0.10:2379\"]\n".utf8).write(to: good)
        let values = try SettingValues.load(file: good.path)
        #expect(values.string("witness.etcd") == "http://10.0.0.9:2379,http://10.0.0.10:2379")
        let bad = directory.appendingPathComponent("bad.toml")
        try Data("[witness]\netcd = [1, 2]\n".utf8).write(to: bad)
        #expect(throws: ConfigurationProblems.self) { try SettingValues.load(file: bad.path) }
    }
}
