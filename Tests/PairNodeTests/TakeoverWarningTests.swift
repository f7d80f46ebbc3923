import ActivationPolicy
import HealthMonitor
import PairModel
import PairNode
import Testing

/// Issue 28: a standby that would take over on a silent link warns its watchers (the peer's
/// clients) when the link turns late, so that they probe their own server before the
/// activation instead of after it. Only a standby that would really take over warns, at most
/// once per `watcherWarningInterval`.
@Suite struct TakeoverWarningTests {
    func warnings(_ pair: NodePair, of role: ServerRole) -> [String] {
        pair.log.filter { $0.contains("\(role): warnWatchers") }
    }

    @Test func aSilentLinkWarnsTheWatchersBeforeTheActivation() {
        var pair = NodePair.running(latency: .milliseconds(1))
        let cut = pair.now
        pair.lose(.timeout)
        pair.advance(by: .milliseconds(200))
        let warned = warnings(pair, of: .secondary)
        #expect(warned.count == 1, "\(pair.log.suffix(6))")
        #expect(warned.first?.contains("peerEpoch: \(pair.primary.epoch)") == true, "\(warned)")
        #expect(pair.secondary.state == .standby, "a warning, not yet a takeover")
        pair.advance(by: .milliseconds(200))
        #expect(pair.secondary.state == .active)
        // The warning came at 1.5 heartbeat intervals of silence, before the loss (3 intervals).
        let warnedAt = pair.log.firstIndex { $0.contains("secondary: warnWatchers") }
        let activatedAt = pair.log.firstIndex { $0.contains("secondary: activate") }
        #expect(warnedAt != nil && activatedAt != nil && warnedAt! < activatedAt!, "\(pair.log.suffix(8))")
        #expect(pair.now - cut >= .milliseconds(300))
        #expect(warnings(pair, of: .primary).isEmpty, "the serving primary warns nobody")
    }

    @Test func aLinkThatRecovers_warnsOnceIn5Seconds_andNothingElseHappens() {
        var pair = NodePair.running(latency: .milliseconds(1))
        // Late heartbeats that come back in time: three episodes of 200 ms of silence (a delay
        // on the link), one second apart.
        for _ in 0..<3 {
            pair.latency = .milliseconds(200)
            pair.advance(by: .milliseconds(250))
            pair.latency = .milliseconds(1)
            pair.advance(by: .milliseconds(750))
        }
        #expect(pair.secondary.state == .standby && pair.primary.state == .active, "\(pair.log.suffix(8))")
        #expect(warnings(pair, of: .secondary).count == 1, "\(pair.log.filter { $0.contains("warnWatchers") || $0.contains("suspect") })")
        pair.advance(by: .seconds(5))
        pair.latency = .milliseconds(200)
        pair.advance(by: .milliseconds(250))
        pair.latency = .milliseconds(1)
        pair.advance(by: .milliseconds(500))
        #expect(warnings(pair, of: .secondary).count == 2, "warned again after 5 s")
    }

    @Test func noWarningFromAStandbyThatWouldNotTakeOver() {
        // In maintenance: a lost link would not be acted on.
        var paused = NodePair.running(latency: .milliseconds(1))
        paused.send(.secondary, .maintenance(on: true, until: nil))
        paused.lose(.timeout)
        paused.advance(by: .seconds(1))
        #expect(warnings(paused, of: .secondary).isEmpty, "\(paused.log.suffix(5))")
        #expect(paused.secondary.state == .standby)

        // Without a licence: it cannot serve.
        var unlicensed = NodePair.running(latency: .milliseconds(1))
        unlicensed.send(.secondary, .licence(refusal: "the licence expired"))
        unlicensed.advance(by: .milliseconds(500))
        unlicensed.lose(.timeout)
        unlicensed.advance(by: .seconds(1))
        #expect(warnings(unlicensed, of: .secondary).isEmpty, "\(unlicensed.log.suffix(5))")
        #expect(unlicensed.secondary.state == .standby)
    }
}
