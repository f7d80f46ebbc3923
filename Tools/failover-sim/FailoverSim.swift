import ActivationPolicy
import ArgumentParser
import Dispatch
import FailoverSimulator
import Foundation
import Synchronization

@main
struct FailoverSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover-sim",
        abstract: "Runs seeded random fault schedules against two simulated servers and checks the failover invariants.",
        discussion: """
            Each schedule starts a primary, a secondary and simulated clients, injects crashes, \
            link cuts and flaps, pauses, client losses, partitions and administrator commands, \
            and checks the invariants after every event. A failing schedule prints its seed; \
            run again with --seed to replay it with its trace.
            Ends with: simulate schedules=N steps=M violations=V
            """
    )

    @Option(help: "Number of schedules to run.") var schedules = 10_000
    @Option(help: "Seed of the first schedule; schedule k uses seed first+k.") var firstSeed: UInt64 = 1
    @Option(help: "Replay one schedule and print its faults and trace.") var seed: UInt64?
    @Option(help: "Simulated seconds of faults per schedule (a quiet period follows).") var seconds = 90
    @Option(help: "Parallel workers.") var workers = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Give the pair an etcd witness (lease 3 s, margin 0.5 s) and draw the witness's faults too (issue 29).")
    var witness = false

    func run() throws {
        var settings = SimulationSettings()
        if witness { settings.policy.witness = WitnessTiming() }
        let schedule = RandomSchedule(settings: settings, duration: .seconds(seconds))
        if let seed {
            let result = schedule.run(seed: seed)
            say("faults:")
            result.faults.forEach { say("  \($0)") }
            say("trace (last events):")
            result.trace.forEach { say("  \($0)") }
            result.violations.forEach { say("VIOLATION \($0)") }
            say("simulate schedules=1 witness=\(witness ? 1 : 0) steps=\(result.steps) violations=\(result.violations.count) seed=\(seed)")
            if !result.violations.isEmpty { throw ExitCode.failure }
            return
        }

        struct Tally {
            var steps = 0
            var done = 0
            var activations = 0
            var longestUnservedMs: Int64 = 0
            var failures: [ScheduleResult] = []
        }
        let tally = Mutex(Tally())
        let total = schedules
        let workers = max(1, self.workers)
        let firstSeed = self.firstSeed
        let started = Date()
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for k in stride(from: worker, to: total, by: workers) {
                let result = schedule.run(seed: firstSeed &+ UInt64(k))
                tally.withLock { tally in
                    tally.steps += result.steps
                    tally.done += 1
                    tally.activations += result.activations
                    tally.longestUnservedMs = max(tally.longestUnservedMs, result.longestUnserved.milliseconds)
                    if !result.violations.isEmpty { tally.failures.append(result) }
                    if tally.done % 1000 == 0 || tally.done == total {
                        let rate = Double(tally.done) / max(0.001, Date().timeIntervalSince(started))
                        say("simulate: \(tally.done)/\(total) schedules, \(tally.failures.count) failing, \(Int(rate))/s")
                    }
                }
            }
        }
        let result = tally.withLock { $0 }
        // Violations by kind (numbers blanked), most frequent first: what to fix first.
        var kinds: [String: (count: Int, seed: UInt64)] = [:]
        for failure in result.failures {
            for violation in failure.violations {
                let text = violation.split(separator: ":", maxSplits: 1).last.map(String.init) ?? violation
                let kind = String(text.map { $0.isNumber ? "#" : $0 }).trimmingCharacters(in: .whitespaces)
                kinds[kind] = (kinds[kind]?.count ?? 0) + 1 < 2 ? (1, failure.seed) : ((kinds[kind]?.count ?? 0) + 1, kinds[kind]!.seed)
            }
        }
        for (kind, entry) in kinds.sorted(by: { $0.value.count > $1.value.count }).prefix(10) {
            say("violations: \(entry.count)x \(kind) (first: seed \(entry.seed))")
        }
        for failure in result.failures.sorted(by: { $0.seed < $1.seed }).prefix(5) {
            say("FAILED seed=\(failure.seed): \(failure.violations.first ?? "")")
            say("  replay: make simulate SEED=\(failure.seed)")
        }
        let violations = result.failures.map(\.violations.count).reduce(0, +)
        say(
            "simulate schedules=\(total) witness=\(witness ? 1 : 0) steps=\(result.steps) violations=\(violations) failing_schedules=\(result.failures.count)"
                + " activations=\(result.activations) longest_unserved_ms=\(result.longestUnservedMs)")
        if violations > 0 { throw ExitCode.failure }
    }
}

/// Writes a line straight to standard output: progress appears as it happens, in a pipe too.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
