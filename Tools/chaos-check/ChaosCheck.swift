import ArgumentParser
import Foundation

/// Judges a chaos run from what its processes reported, and nothing else: the runner's
/// actions, the servers' sampled /metrics, the simulators' JSON, the acknowledged writes and
/// the final configuration, journals and incidents. Separate from the code under test on
/// purpose: it shares none of its types, only the formats a person could read.
@main
struct ChaosCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos-check", abstract: "Checks a chaos run's records; the last line is the run's summary.")

    @Option(name: .customLong("run"), help: "The run's directory (run/chaos-...).") var directory: String
    @Option(help: "Every client must be back within this many ms of a fault or a switchover.") var budgetMs: Double = 6000
    @Option(help: "The run's seed, repeated in the summary.") var seed: String = "?"
    @Flag(help: "The pair ran with a witness: any time with both servers serving is a violation, and a held round's secondary must never serve.")
    var witness = false

    func lines(_ name: String) -> [[String: Any]] {
        let text = (try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    func object(_ name: String) -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: "\(directory)/\(name)") else { return [:] }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    func run() throws {
        var violations: [String] = []
        let actions = lines("actions.jsonl")
        let samples = lines("status.jsonl").filter { $0["up"] as? Bool == true }.sorted { ($0["t"] as? Int ?? 0) < ($1["t"] as? Int ?? 0) }
        let rounds = actions.filter { $0["action"] as? String == "round" }
        var scenarios: [String: Int] = [:]
        for round in rounds { scenarios[round["scenario"] as? String ?? "?", default: 0] += 1 }

        // 1. Every client back within the round's budget, after every fault and every switch
        //    back (one simulator per group of clients, a file each).
        var maxRelogin = 0.0
        // The failover phase's slowest re-login per scenario, and a line per round: the figures
        // of each kind of fault, comparable run to run (silent ones: pause, linkcut, ...).
        var failoverByScenario: [String: Int] = [:]
        var roundLines: [String] = []
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for round in rounds {
            let number = round["round"] as? Int ?? 0
            let budget = round["budget_ms"] as? Double ?? (round["budget_ms"] as? Int).map(Double.init) ?? budgetMs
            let kind = round["kind"] as? String ?? "primary-failure"
            for phase in ["failover", "switchback"] {
                let names = files.filter { $0.hasPrefix("round\(number)-\(phase)") && $0.hasSuffix(".jsonl") }.sorted()
                if names.isEmpty {
                    if phase == "failover" { violations.append("round \(number): no simulator record of the fault") }
                    continue
                }
                for name in names {
                    guard let summary = lines(name).last(where: { $0["type"] as? String == "summary" }) else {
                        violations.append("\(name): the simulator left no summary")
                        continue
                    }
                    let neverBack = summary["never_back"] as? Int ?? -1
                    let relogin = (summary["relogin"] as? [String: Any])?["max_ms"] as? Double ?? .infinity
                    let count = (summary["relogin"] as? [String: Any])?["count"] as? Int ?? 0
                    if count > 0 { maxRelogin = max(maxRelogin, relogin.isFinite ? relogin : 0) }
                    if phase == "failover", count > 0, relogin.isFinite {
                        let scenario = round["scenario"] as? String ?? "?"
                        let figures = summary["relogin"] as? [String: Any] ?? [:]
                        let p50 = Int(figures["p50_ms"] as? Double ?? 0)
                        failoverByScenario[scenario] = max(failoverByScenario[scenario] ?? 0, Int(relogin))
                        roundLines.append("chaos-check: round \(number) (\(scenario)) \(name): \(count) clients moved, re-login p50 \(p50) ms, max \(Int(relogin)) ms")
                    }
                    if neverBack != 0 { violations.append("\(name): \(neverBack) clients never came back") }
                    if count == 0 && kind == "primary-failure" { violations.append("\(name): no client moved") }
                    if count > 0 && relogin > budget { violations.append("\(name): a client took \(Int(relogin)) ms (budget \(Int(budget)))") }
                    // A split moves nobody: every client still reached its server. Neither does a
                    // fault below the detection thresholds.
                    let outages = (summary["outages"] as? [String: Any])?["count"] as? Int ?? 0
                    if ["split", "held"].contains(kind) && outages > 0 { violations.append("\(name): \(outages) sessions were lost in a split that every client survived") }
                    if kind == "quiet" && outages > 0 { violations.append("\(name): \(outages) sessions were lost to a fault below the detection thresholds") }
                }
            }
        }

        // 2. A server that was not active in two consecutive samples accepted no login between them.
        var bySource: [String: [[String: Any]]] = [:]
        for sample in samples { bySource["\(sample["server"] ?? "")@\(sample["address"] ?? "")", default: []].append(sample) }
        for (source, list) in bySource {
            for (a, b) in zip(list, list.dropFirst()) {
                let standby = (a["state"] as? String) != "active" && (b["state"] as? String) != "active"
                if standby, (b["logins"] as? Int ?? 0) > (a["logins"] as? Int ?? 0) {
                    violations.append("\(source) accepted \((b["logins"] as! Int) - (a["logins"] as! Int)) logins while not active (t=\(b["t"] ?? 0))")
                }
            }
        }

        // 3. Epochs never went backwards, on either server, across restarts.
        for server in ["primary", "secondary"] {
            var highest = 0
            for sample in samples where sample["server"] as? String == server {
                let epoch = sample["epoch"] as? Int ?? 0
                if epoch < highest { violations.append("\(server): epoch went back from \(highest) to \(epoch) (t=\(sample["t"] ?? 0))") }
                highest = max(highest, epoch)
            }
        }

        // 4. After a fault, the primary served again only after an authorized switchover.
        let faults = actions.filter { $0["action"] as? String == "fault" }
        // A split (the link cut while clients reach the primary) leaves the primary serving: the
        // rule is for faults of the primary.
        for fault in faults where (fault["kind"] as? String ?? "primary-failure") == "primary-failure" {
            let t = fault["t"] as? Int ?? 0
            let end = actions.first { $0["action"] as? String == "round-end" && ($0["round"] as? Int) == (fault["round"] as? Int) }?["t"] as? Int ?? Int.max
            let switchover = actions.first { $0["action"] as? String == "switchover" && ($0["t"] as? Int ?? 0) > t }?["t"] as? Int ?? Int.max
            // The secondary took over: from its first active sample after the fault...
            guard let takeover = samples.first(where: { $0["server"] as? String == "secondary" && $0["state"] as? String == "active" && ($0["t"] as? Int ?? 0) > t })?["t"] as? Int
            else {
                violations.append("round \(fault["round"] ?? 0): the secondary never served after \(fault["fault"] ?? "the fault")")
                continue
            }
            // ...the primary does not become active again before the switchover. A paused primary
            // wakes up still believing it serves (a split, as the product accepts; the heal rule's
            // hold grows when splits repeat within a minute): until it yields it must take no
            // client (none goes back by itself), it must yield before the switchover, and never
            // come back by itself after yielding.
            let primary = samples.filter {
                let at = $0["t"] as? Int ?? 0
                return $0["server"] as? String == "primary" && at > takeover && at < min(switchover, end)
            }
            var yielded = false
            var staleLogins: Int?
            for sample in primary {
                let at = sample["t"] as? Int ?? 0
                let logins = sample["logins"] as? Int ?? 0
                if sample["state"] as? String == "active" {
                    if yielded {
                        violations.append("round \(fault["round"] ?? 0): the primary served again at t=\(at) without an authorized switchover")
                        break
                    }
                    if let first = staleLogins, logins > first {
                        violations.append("round \(fault["round"] ?? 0): the resumed primary took \(logins - first) logins while the secondary served")
                        break
                    }
                    staleLogins = staleLogins ?? logins
                } else {
                    yielded = true
                }
            }
            if staleLogins != nil && !yielded {
                violations.append("round \(fault["round"] ?? 0): the resumed primary never yielded before the switchover")
            }
        }

        // 4a. After a split heals, the side with the clients keeps serving (no switch back
        //     was needed to bring service home).
        for round in rounds where ["split", "quiet", "held"].contains(round["kind"] as? String ?? "") {
            let number = round["round"] as? Int
            if actions.contains(where: { $0["action"] as? String == "switchover" && ($0["round"] as? Int) == number }) {
                violations.append("round \(number ?? 0): after the split healed, the primary (which had the clients) did not keep serving")
            }
        }

        // 4b. Every round ends with exactly one server serving.
        for end in actions.filter({ $0["action"] as? String == "round-end" }) {
            let t = end["t"] as? Int ?? 0
            let states = ["primary", "secondary"].compactMap { server in
                samples.last { $0["server"] as? String == server && ($0["t"] as? Int ?? 0) <= t }?["state"] as? String
            }
            if states.filter({ $0 == "active" }).count != 1 {
                violations.append("round \(end["round"] ?? 0) ended with \(states.filter { $0 == "active" }.count) servers serving (\(states))")
            }
        }

        // 5. Every fault left an incident decided after it (within the round). In a combined
        //    round one incident may explain both: a crash of a primary the secondary already
        //    replaced in the split before it changes no state, and decides nothing new. So the
        //    incident may come from the round's first fault on.
        let incidents = (object("final-incidents.json")["incidents"] as? [[String: Any]]) ?? []
        let decided = incidents.compactMap { ($0["decided_at"] as? String).flatMap(Self.milliseconds) }
        // A held fault (the witness kept the primary's lease) decides nothing.
        for fault in faults where !["quiet", "held"].contains(fault["kind"] as? String ?? "") {
            let t = Double(fault["t"] as? Int ?? 0)
            let roundStart = faults.filter { ($0["round"] as? Int) == (fault["round"] as? Int) && !["quiet", "held"].contains($0["kind"] as? String ?? "") }
                .compactMap { ($0["t"] as? Int).map(Double.init) }.min() ?? t
            if !decided.contains(where: { $0 >= roundStart - 1000 && $0 <= t + 30_000 }) {
                violations.append("round \(fault["round"] ?? 0): no incident records \(fault["fault"] ?? "the fault")")
            }
        }

        // 7. A fault below the detection thresholds (delay that leaves no heartbeat gap of the
        //    loss timeout) changes nothing: no incident, and the secondary never serves.
        for fault in faults where fault["kind"] as? String == "quiet" {
            let t = fault["t"] as? Int ?? 0
            let end = actions.first { $0["action"] as? String == "round-end" && ($0["round"] as? Int) == (fault["round"] as? Int) }?["t"] as? Int ?? Int.max
            if decided.contains(where: { $0 >= Double(t) && $0 <= Double(end) }) {
                violations.append("round \(fault["round"] ?? 0): \(fault["fault"] ?? "the fault"), below the thresholds, caused an incident")
            }
            if let active = samples.first(where: {
                $0["server"] as? String == "secondary" && $0["state"] as? String == "active" && ($0["t"] as? Int ?? 0) > t && ($0["t"] as? Int ?? 0) < end
            }) {
                violations.append("round \(fault["round"] ?? 0): the secondary served at t=\(active["t"] ?? 0) during \(fault["fault"] ?? "the fault"), below the thresholds")
            }
        }

        // 7a. A held fault (with a witness: the link cut while the primary keeps its lease, the
        //     secondary cut from both, the witness down with the link up): the secondary never serves.
        for fault in faults where fault["kind"] as? String == "held" {
            let t = fault["t"] as? Int ?? 0
            let end = actions.first { $0["action"] as? String == "round-end" && ($0["round"] as? Int) == (fault["round"] as? Int) }?["t"] as? Int ?? Int.max
            if let active = samples.first(where: {
                $0["server"] as? String == "secondary" && $0["state"] as? String == "active" && ($0["t"] as? Int ?? 0) > t && ($0["t"] as? Int ?? 0) < end
            }) {
                violations.append("round \(fault["round"] ?? 0): the secondary served at t=\(active["t"] ?? 0) during \(fault["fault"] ?? "the fault"), which the witness holds")
            }
        }

        // 7b. Both servers serving at once, from the records (every run; a violation with a
        //     witness), and how long each round's secondary took to serve after its fault.
        let overlaps = Self.dualActive(lines("status.jsonl"))
        var dualByScenario: [String: Int] = [:]
        var takeoverByScenario: [String: Int] = [:]
        for (index, round) in rounds.enumerated() {
            let number = round["round"] as? Int ?? 0
            let scenario = round["scenario"] as? String ?? "?"
            let from = round["t"] as? Int ?? 0
            let to = index + 1 < rounds.count ? rounds[index + 1]["t"] as? Int ?? Int.max : Int.max
            let dual = overlaps.reduce(0) { $0 + max(0, min($1.to, to) - max($1.from, from)) }
            dualByScenario[scenario, default: 0] += dual
            var line = "chaos-check: round \(number) (\(scenario)): dual-active \(dual) ms"
            if let fault = faults.first(where: { ($0["round"] as? Int) == number && ($0["kind"] as? String ?? "primary-failure") == "primary-failure" }), let at = fault["t"] as? Int,
                let served = samples.first(where: { $0["server"] as? String == "secondary" && $0["state"] as? String == "active" && ($0["t"] as? Int ?? 0) > at && ($0["t"] as? Int ?? 0) < to })?["t"] as? Int
            {
                takeoverByScenario[scenario] = max(takeoverByScenario[scenario] ?? 0, served - at)
                line += ", the secondary served \(served - at) ms after the fault (sampled every 250 ms)"
            }
            roundLines.append(line)
            if witness && dual > 0 { violations.append("round \(number) (\(scenario)): both servers served for \(dual) ms with a witness") }
        }
        let dualTotal = overlaps.reduce(0) { $0 + $1.to - $1.from }

        // 8. Maintenance mode pauses every automatic decision: the secondary does not serve
        //    before it ends (a sample's quarter second aside), and serves after (rule 4).
        for maintenance in actions.filter({ $0["action"] as? String == "maintenance" }) {
            let t = maintenance["t"] as? Int ?? 0
            let until = maintenance["until"] as? Int ?? 0
            if let early = samples.first(where: {
                $0["server"] as? String == "secondary" && $0["state"] as? String == "active" && ($0["t"] as? Int ?? 0) > t
                    && ($0["t"] as? Int ?? 0) < until - 300
            }) {
                violations.append("round \(maintenance["round"] ?? 0): the secondary served at t=\(early["t"] ?? 0), \(until - (early["t"] as? Int ?? 0)) ms before maintenance ended")
            }
        }

        // 6. Every acknowledged configuration change is on the serving server, or journaled;
        // one acknowledged as replicated (the peer confirmed it: write.concern = both) is on the
        // serving server: in a journal only, it was acknowledged as kept and set aside.
        let settings = (object("final-config.json")["settings"] as? [String: String]) ?? [:]
        let journaled = ((object("final-divergence.json")["divergence"] as? [[String: Any]]) ?? []).compactMap { $0["change"] as? String }
        var lost = 0
        var journaledAcknowledged = 0
        let writes = lines("writes.jsonl")
        for write in writes where write["ok"] as? Bool == true {
            let key = write["key"] as? String ?? ""
            let value = write["value"] as? String ?? ""
            if settings[key] == value { continue }
            // A record of an older writer has no "replicated": it counts as replicated.
            let replicated = write["replicated"] as? Bool ?? true
            if journaled.contains(where: { $0.contains("set \(key) = \(value)") }) {
                guard replicated else { continue }
                journaledAcknowledged += 1
                violations.append("change \(key) = \(value) was acknowledged as replicated but is only in a divergence journal")
                continue
            }
            lost += 1
            violations.append("acknowledged change \(key) = \(value) is neither on the serving server nor in a divergence journal")
        }
        let localOnly = writes.filter { $0["ok"] as? Bool == true && $0["replicated"] as? Bool == false }.count
        if settings.isEmpty { violations.append("the final configuration could not be read") }

        // 9. A status page open in a browser on each server (when chromium ran) never showed,
        // for longer than 1 s, a state its records contradict: a server named as serving that
        // the records show not serving, or its own server serving and not named.
        let pages = lines("pages.jsonl").sorted { ($0["t"] as? Int ?? 0) < ($1["t"] as? Int ?? 0) }
        let pageSamples = pages.count
        violations += Self.pageContradictions(pages, records: samples)

        for line in roundLines { print(line) }
        for violation in violations.prefix(50) { print("VIOLATION: \(violation)") }
        let acknowledged = writes.filter { $0["ok"] as? Bool == true }.count
        print(
            "chaos-check: \(rounds.count) rounds, \(samples.count) status samples, \(pageSamples) page samples, \(acknowledged) of \(writes.count) writes acknowledged "
                + "(\(localOnly) of them as local only), \(incidents.count) incidents; records in \(directory)")
        let mix = scenarios.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
        print("chaos rounds=\(rounds.count) scenarios=\(mix) violations=\(violations.count) max_relogin_ms=\(Int(maxRelogin)) failover_max_ms=\(failoverByScenario.isEmpty ? "none" : failoverByScenario.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")) lost_changes=\(lost) journaled_acked=\(journaledAcknowledged) local_only=\(localOnly) dual_active_ms=\(dualTotal) dual_active_by_scenario=\(Self.pairs(dualByScenario)) takeover_max_ms=\(Self.pairs(takeoverByScenario)) witness=\(witness ? 1 : 0) seed=\(seed)")
        if !violations.isEmpty { throw ExitCode(1) }
    }

    /// Rule 9: each page sample's banner against the records' state of each server at that
    /// moment (its last sample before it). Samples of a page that says its server does not
    /// answer, or that has not loaded, say nothing.
    static func pageContradictions(_ pages: [[String: Any]], records: [[String: Any]]) -> [String] {
        var violations: [String] = []
        var since: [String: (t: Int, what: String)] = [:]
        func role(_ id: String) -> String? { id.contains("secondary") ? "secondary" : id.contains("primary") ? "primary" : nil }
        for page in pages {
            let t = page["t"] as? Int ?? 0
            let name = page["page"] as? String ?? "?"
            let banner = page["banner"] as? String ?? ""
            let claimed: [String]
            if page["stale"] as? Bool == true || banner.isEmpty || banner.hasPrefix("loading") {
                since[name] = nil
                continue
            } else if banner.hasPrefix("NOBODY") {
                claimed = []
            } else if banner.hasPrefix("BOTH SERVE"), let list = banner.split(separator: ":", maxSplits: 1).last {
                claimed = list.split(separator: ",").compactMap { role($0.trimmingCharacters(in: .whitespaces)) }
            } else if banner.hasSuffix(" serves") {
                claimed = [role(String(banner.dropLast(" serves".count)))].compactMap { $0 }
            } else {
                continue
            }
            var state: [String: String] = [:]
            for record in records {
                guard (record["t"] as? Int ?? 0) <= t else { break }
                if let server = record["server"] as? String { state[server] = record["state"] as? String }
            }
            var wrong: [String] = claimed.filter { state[$0] != nil && state[$0] != "active" }.map { "names \($0) serving, the records say \(state[$0]!)" }
            if state[name] == "active", !claimed.contains(name) { wrong.append("does not name its own server, which the records show serving") }
            if wrong.isEmpty {
                since[name] = nil
            } else if let start = since[name] {
                if t - start.t > 1000 {
                    violations.append("the \(name)'s status page \(start.what) for more than 1 s from t=\(start.t) (banner \"\(banner)\")")
                    since[name] = (Int.max / 2, start.what)  // once per stretch
                }
            } else {
                since[name] = (t, wrong.joined(separator: "; "))
            }
        }
        return violations
    }

    static func pairs(_ figures: [String: Int]) -> String {
        figures.isEmpty ? "none" : figures.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
    }

    /// The stretches during which both servers were seen serving, by the sampler's records: a
    /// server serves from one sample to its next when both say so (a scrape that failed, of a
    /// killed or frozen process, says it serves nobody). One sample alone proves nothing: the
    /// two servers are scraped one after the other, and the state of the one read first may be
    /// gone by the time the other is read. So an overlap shorter than the sampling (250 ms)
    /// can escape; the witness tests sample the servers themselves more finely.
    static func dualActive(_ records: [[String: Any]]) -> [(from: Int, to: Int)] {
        func serving(_ server: String) -> [(from: Int, to: Int)] {
            let list = records.filter { $0["server"] as? String == server }.sorted { ($0["t"] as? Int ?? 0) < ($1["t"] as? Int ?? 0) }
            func active(_ record: [String: Any]) -> Bool { record["up"] as? Bool == true && record["state"] as? String == "active" }
            return zip(list, list.dropFirst()).compactMap { a, b in
                active(a) && active(b) ? (a["t"] as? Int ?? 0, b["t"] as? Int ?? 0) : nil
            }
        }
        let primary = serving("primary")
        var overlaps: [(from: Int, to: Int)] = []
        for s in serving("secondary") {
            for p in primary where p.from < s.to && s.from < p.to {
                overlaps.append((max(p.from, s.from), min(p.to, s.to)))
            }
        }
        return overlaps
    }

    static func milliseconds(_ iso: String) -> Double? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: iso) { return date.timeIntervalSince1970 * 1000 }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: iso).map { $0.timeIntervalSince1970 * 1000 }
    }
}
