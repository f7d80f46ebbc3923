import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The chaos suite's judge catches what it must: each crafted record below breaks one rule.
@Suite struct ChaosCheckTests {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("chaos-check")

    /// A clean one-round run: crash at t=1000, the secondary serves at 1300, the switch back at
    /// 5000; one write acknowledged and present.
    static func cleanRun() -> [String: String] {
        let summary = #"{"type":"summary","never_back":0,"relogin":{"count":3,"max_ms":400.0}}"#
        return [
            "actions.jsonl": """
                {"t":500,"action":"round","round":1,"scenario":"crash"}
                {"t":1000,"action":"fault","round":1,"fault":"kill -9 primary"}
                {"t":5000,"action":"switchover","round":1,"incident":"S3-1"}
                {"t":6000,"action":"round-end","round":1}
                """,
            "status.jsonl": """
                {"t":900,"server":"primary","address":"a:1","up":true,"state":"active","epoch":2,"logins":3}
                {"t":900,"server":"secondary","address":"b:1","up":true,"state":"standby","epoch":2,"logins":0}
                {"t":1300,"server":"secondary","address":"b:1","up":true,"state":"active","epoch":3,"logins":0}
                {"t":1600,"server":"secondary","address":"b:1","up":true,"state":"active","epoch":3,"logins":3}
                {"t":3000,"server":"primary","address":"a:2","up":true,"state":"awaiting_authorization","epoch":3,"logins":0}
                {"t":5500,"server":"primary","address":"a:2","up":true,"state":"active","epoch":4,"logins":3}
                {"t":5550,"server":"secondary","address":"b:1","up":true,"state":"standby","epoch":4,"logins":3}
                """,
            "writes.jsonl": #"{"t":700,"key":"chaos.w1","value":"value-1","ok":true}"#,
            "round1-failover-c1.jsonl": summary, "round1-failover-c2.jsonl": summary, "round1-switchback-local.jsonl": summary,
            "final-config.json": #"{"settings":{"chaos.w1":"value-1"}}"#,
            "final-divergence.json": #"{"divergence":[]}"#,
            "final-incidents.json": #"{"incidents":[{"id":"S3-1","decided_at":"1970-01-01T00:00:01.250Z"}]}"#,
        ]
    }

    func check(_ files: [String: String], _ extra: [String] = []) throws -> (status: Int32, output: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chaos-check-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, text) in files { try Data(text.utf8).write(to: directory.appendingPathComponent(name)) }
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["--run", directory.path, "--budget-ms", "1000"] + extra
        let output = directory.appendingPathComponent("out.txt")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: output)
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }

    @Test func aCleanRunPasses() throws {
        let result = try check(Self.cleanRun())
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("chaos rounds=1 scenarios=crash:1 violations=0 max_relogin_ms=400 failover_max_ms=crash:400 lost_changes=0"), "\(result.output)")
    }

    @Test func eachBrokenRuleIsCaught() throws {
        var lostWrite = Self.cleanRun()
        lostWrite["final-config.json"] = #"{"settings":{}}"#
        var standbyLogin = Self.cleanRun()
        standbyLogin["status.jsonl"]! += "\n" + #"{"t":3200,"server":"primary","address":"a:2","up":true,"state":"awaiting_authorization","epoch":3,"logins":2}"#
        var epochBack = Self.cleanRun()
        epochBack["status.jsonl"]! += "\n" + #"{"t":5600,"server":"secondary","address":"b:1","up":true,"state":"standby","epoch":2,"logins":3}"#
        var earlyPrimary = Self.cleanRun()
        earlyPrimary["status.jsonl"]! += "\n" + #"{"t":4000,"server":"primary","address":"a:2","up":true,"state":"active","epoch":3,"logins":0}"#
        var stalePrimary = Self.cleanRun()
        stalePrimary["status.jsonl"]! += "\n" + #"{"t":1400,"server":"primary","address":"a:1","up":true,"state":"active","epoch":2,"logins":3}"#
            + "\n" + #"{"t":2000,"server":"primary","address":"a:1","up":true,"state":"active","epoch":2,"logins":5}"#
        var noIncident = Self.cleanRun()
        noIncident["final-incidents.json"] = #"{"incidents":[]}"#
        var slow = Self.cleanRun()
        slow["round1-failover-c2.jsonl"] = #"{"type":"summary","never_back":1,"relogin":{"count":2,"max_ms":4000.0}}"#
        var journaledReplicated = Self.cleanRun()
        journaledReplicated["writes.jsonl"] = #"{"t":700,"key":"chaos.w1","value":"value-1","ok":true,"replicated":true}"#
        journaledReplicated["final-config.json"] = #"{"settings":{"chaos.w0":"x"}}"#
        journaledReplicated["final-divergence.json"] = #"{"divergence":[{"change":"set chaos.w1 = value-1"}]}"#
        var bothServe = Self.cleanRun()
        bothServe["status.jsonl"]! += "\n" + #"{"t":5900,"server":"secondary","address":"b:1","up":true,"state":"active","epoch":4,"logins":3}"#
        let cases: [(String, [String: String], String)] = [
            ("a lost write", lostWrite, "acknowledged change chaos.w1"), ("a login on a standby", standbyLogin, "logins while not active"),
            ("an epoch going back", epochBack, "epoch went back"), ("the primary serving unauthorized", earlyPrimary, "without an authorized switchover"),
            ("a resumed primary taking clients", stalePrimary, "the resumed primary took 2 logins"), ("a fault without an incident", noIncident, "no incident records"), ("clients not back", slow, "never came back"), ("a round ending with two servers serving", bothServe, "ended with 2 servers serving"),
            ("a replicated write set aside", journaledReplicated, "acknowledged as replicated but is only in a divergence journal"),
        ]
        for (name, files, expected) in cases {
            let result = try check(files)
            #expect(result.status == 1, "\(name): \(result.output)")
            #expect(result.output.contains(expected), "\(name): \(result.output)")
            #expect(!result.output.contains("violations=0"), "\(name)")
        }
    }

    /// A write acknowledged as local only may end in a journal (the administrator was told);
    /// it is counted, not a violation. The same write acknowledged as replicated is one.
    @Test func aLocalOnlyWriteInAJournalIsCountedNotAViolation() throws {
        var run = Self.cleanRun()
        run["writes.jsonl"] = #"{"t":700,"key":"chaos.w1","value":"value-1","ok":true,"replicated":false}"#
        run["final-config.json"] = #"{"settings":{"chaos.w0":"x"}}"#
        run["final-divergence.json"] = #"{"divergence":[{"change":"set chaos.w1 = value-1"}]}"#
        let passed = try check(run)
        #expect(passed.status == 0 && passed.output.contains("violations=0 max_relogin_ms=400 failover_max_ms=crash:400 lost_changes=0 journaled_acked=0 local_only=1"), "\(passed.output)")
        run["writes.jsonl"] = #"{"t":700,"key":"chaos.w1","value":"value-1","ok":true,"replicated":true}"#
        let caught = try check(run)
        #expect(caught.status == 1 && caught.output.contains("journaled_acked=1 local_only=0"), "\(caught.output)")
    }

    /// Rule 9: a status page may lag its server by under a second; longer, it contradicts the
    /// records. A page whose server does not answer says nothing.
    @Test func aStatusPageThatContradictsTheRecordsIsCaught() throws {
        func page(_ t: Int, _ banner: String, stale: Bool = false) -> String {
            #"{"t":\#(t),"page":"secondary","banner":"\#(banner)","stale":\#(stale)}"#
        }
        var lagging = Self.cleanRun()
        // The secondary serves from 1300 (records); its page catches up at 1800: fine.
        lagging["pages.jsonl"] = [page(1000, "vcom-primary serves"), page(1500, "vcom-primary serves"), page(1800, "vcom-secondary serves"),
            page(3000, "vcom-secondary serves", stale: true)].joined(separator: "\n")
        let passed = try check(lagging)
        #expect(passed.status == 0 && passed.output.contains("violations=0") && passed.output.contains("4 page samples"), "\(passed.output)")
        var stuck = Self.cleanRun()
        stuck["pages.jsonl"] = [page(1000, "vcom-primary serves"), page(1500, "vcom-primary serves"), page(2000, "vcom-primary serves"),
            page(2600, "vcom-primary serves")].joined(separator: "\n")
        let caught = try check(stuck)
        #expect(caught.status == 1 && caught.output.contains("the secondary's status page does not name its own server, which the records show serving"), "\(caught.output)")
    }

    /// linkcut+crash: the split's incident (the secondary activated) also explains the crash of
    /// the primary 3 s later, which changes no state; without any incident it is still caught.
    @Test func aCombinedRoundIsExplainedByItsFirstIncident() throws {
        var combined = Self.cleanRun()
        combined["actions.jsonl"] = """
            {"t":500,"action":"round","round":1,"scenario":"linkcut+crash"}
            {"t":1000,"action":"fault","round":1,"kind":"split","fault":"peer link cut"}
            {"t":4000,"action":"fault","round":1,"kind":"primary-failure","fault":"kill -9 primary"}
            {"t":5000,"action":"switchover","round":1,"incident":"S3-1"}
            {"t":6000,"action":"round-end","round":1}
            """
        combined["status.jsonl"]! += "\n" + #"{"t":4300,"server":"secondary","address":"b:1","up":true,"state":"active","epoch":3,"logins":3}"#
        let passed = try check(combined)
        #expect(passed.status == 0 && passed.output.contains("violations=0"), "\(passed.output)")
        combined["final-incidents.json"] = #"{"incidents":[]}"#
        let caught = try check(combined)
        #expect(caught.status == 1 && caught.output.contains("round 1: no incident records kill -9 primary"), "\(caught.output)")
    }

    /// A peer-link delay below the detection thresholds: nothing may happen.
    static func quietRun() -> [String: String] {
        let summary = #"{"type":"summary","never_back":0,"relogin":{"count":0},"outages":{"count":0}}"#
        return [
            "actions.jsonl": """
                {"t":500,"action":"round","round":1,"scenario":"peerdelay","kind":"quiet","budget_ms":1000}
                {"t":1000,"action":"fault","round":1,"kind":"quiet","fault":"peer link delayed"}
                {"t":6000,"action":"heal","round":1}
                {"t":7000,"action":"round-end","round":1}
                """,
            "status.jsonl": """
                {"t":900,"server":"primary","address":"a:1","up":true,"state":"active","epoch":2,"logins":3}
                {"t":900,"server":"secondary","address":"b:1","up":true,"state":"standby","epoch":2,"logins":0}
                {"t":6500,"server":"primary","address":"a:1","up":true,"state":"active","epoch":2,"logins":3}
                {"t":6500,"server":"secondary","address":"b:1","up":true,"state":"standby","epoch":2,"logins":0}
                """,
            "writes.jsonl": #"{"t":700,"key":"chaos.w1","value":"value-1","ok":true}"#,
            "round1-failover-c1.jsonl": summary, "round1-failover-c2.jsonl": summary,
            "final-config.json": #"{"settings":{"chaos.w1":"value-1"}}"#,
            "final-divergence.json": #"{"divergence":[]}"#,
            "final-incidents.json": #"{"incidents":[]}"#,
        ]
    }

    @Test func aFaultBelowTheThresholdsMustChangeNothing() throws {
        let clean = try check(Self.quietRun())
        #expect(clean.status == 0 && clean.output.contains("scenarios=peerdelay:1 violations=0"), "\(clean.output)")
        var activated = Self.quietRun()
        activated["status.jsonl"]! += "\n" + #"{"t":2000,"server":"secondary","address":"b:1","up":true,"state":"active","epoch":3,"logins":0}"#
        activated["final-incidents.json"] = #"{"incidents":[{"id":"S3-1","decided_at":"1970-01-01T00:00:01.900Z"}]}"#
        let result = try check(activated)
        #expect(result.status == 1)
        #expect(result.output.contains("the secondary served at t=2000"), "\(result.output)")
        #expect(result.output.contains("below the thresholds, caused an incident"), "\(result.output)")
        var lost = Self.quietRun()
        lost["round1-failover-c2.jsonl"] = #"{"type":"summary","never_back":0,"relogin":{"count":0},"outages":{"count":2}}"#
        #expect(try check(lost).output.contains("2 sessions were lost to a fault below the detection thresholds"))
    }

    /// Both servers seen serving at both ends of a sampling interval count as dual-active; a
    /// primary's last "active" before its crash, read just before the secondary's first, does
    /// not (the scrapes are sequential). Without a witness it is measured, with one a violation.
    @Test func bothServersServingIsMeasuredAndWithAWitnessFails() throws {
        let clean = try check(Self.cleanRun(), ["--witness"])
        #expect(clean.status == 0, "\(clean.output)")
        #expect(clean.output.contains("dual_active_ms=0 "), "\(clean.output)")
        #expect(clean.output.contains("the secondary served 300 ms after the fault"), "\(clean.output)")
        var split = Self.cleanRun()
        split["status.jsonl"]! += "\n" + #"{"t":1250,"server":"primary","address":"a:1","up":true,"state":"active","epoch":2,"logins":3}"#
            + "\n" + #"{"t":1700,"server":"primary","address":"a:1","up":true,"state":"active","epoch":2,"logins":3}"#
            + "\n" + #"{"t":1900,"server":"primary","address":"a:1","up":false}"#
        let measured = try check(split)
        #expect(measured.output.contains("dual_active_ms=300 dual_active_by_scenario=crash:300"), "\(measured.output)")
        #expect(!measured.output.contains("with a witness"), "\(measured.output)")
        let judged = try check(split, ["--witness"])
        #expect(judged.status == 1)
        #expect(judged.output.contains("round 1 (crash): both servers served for 300 ms with a witness"), "\(judged.output)")
    }

    /// A held round (with a witness, the primary kept its lease): the secondary never serves,
    /// and no incident is needed.
    @Test func aHeldRoundsSecondaryMustNotServe() throws {
        var held = Self.quietRun()
        held["actions.jsonl"] = held["actions.jsonl"]!.replacingOccurrences(of: "quiet", with: "held").replacingOccurrences(of: "peerdelay", with: "linkcut")
        let clean = try check(held, ["--witness"])
        #expect(clean.status == 0 && clean.output.contains("scenarios=linkcut:1 violations=0"), "\(clean.output)")
        held["status.jsonl"]! += "\n" + #"{"t":2000,"server":"secondary","address":"b:1","up":true,"state":"active","epoch":3,"logins":0}"#
        let result = try check(held, ["--witness"])
        #expect(result.status == 1)
        #expect(result.output.contains("the secondary served at t=2000 during peer link delayed, which the witness holds"), "\(result.output)")
    }
}
