import PairModel
import HealthMonitor
import Testing

@Suite struct PeerLinkMonitorTests {
    let configuration = PeerLinkMonitor.Configuration()  // 100 ms × 3, hold 1 s doubling to 30 s
    func ms(_ value: Int64) -> MonotonicTime { .milliseconds(value) }

    func reports(_ actions: [PeerLinkMonitor.Action]) -> [PeerLinkMonitor.Report] {
        actions.compactMap { if case .report(let report) = $0 { report } else { nil } }
    }

    @Test func firstConnectionIsUpAndStableAtOnce() {
        var monitor = PeerLinkMonitor()
        let actions = monitor.connected(at: ms(0))
        #expect(reports(actions) == [.up, .stable])
        #expect(actions.contains(.sendHeartbeat))
    }

    @Test func heartbeatsGoOutEveryInterval() {
        var monitor = PeerLinkMonitor()
        _ = monitor.connected(at: ms(0))
        var sent: [Int64] = []
        for t in stride(from: Int64(1), through: 1000, by: 1) {
            // A chatty peer (never silent); the monitor's answers to both calls count.
            if (monitor.heard(at: ms(t)) + monitor.tick(at: ms(t))).contains(.sendHeartbeat) { sent.append(t) }
        }
        #expect(sent == Array(stride(from: 100, through: 1000, by: 100)))
    }

    @Test func silenceIsLostExactlyAfterIntervalTimesMisses() {
        var monitor = PeerLinkMonitor()
        _ = monitor.connected(at: ms(0))
        _ = monitor.heard(at: ms(50))
        #expect(!reports(monitor.tick(at: ms(350))).contains(.lost(.timeout)), "a frame due exactly now is not late yet")
        let due = ms(350) + .nanoseconds(1)
        #expect(monitor.nextDeadline != nil && monitor.nextDeadline! <= due)
        let actions = monitor.tick(at: due)
        #expect(reports(actions) == [.lost(.timeout)])
        #expect(actions.contains(.closeConnection), "the dead connection is closed so the peer sees the loss too")
        #expect(!monitor.isConnected)
    }

    @Test func lateHeartbeatsAreSuspectThenRecovered() {
        var monitor = PeerLinkMonitor()
        _ = monitor.connected(at: ms(0))
        #expect(reports(monitor.tick(at: ms(149))) == [])
        #expect(reports(monitor.tick(at: ms(150))) == [.suspect])
        #expect(reports(monitor.tick(at: ms(200))) == [], "suspect is reported once")
        #expect(reports(monitor.heard(at: ms(250))) == [.recovered])
    }

    @Test func closedConnectionIsLostAtOnce() {
        var monitor = PeerLinkMonitor()
        _ = monitor.connected(at: ms(0))
        #expect(reports(monitor.disconnected(at: ms(10))) == [.lost(.closed)])
        #expect(reports(monitor.disconnected(at: ms(11))) == [], "a second close changes nothing")
        #expect(monitor.nextDeadline == nil)
    }

    @Test func anIsolatedLossIsRestoredAndStableAtOnce() {
        var monitor = PeerLinkMonitor()
        _ = monitor.connected(at: ms(0))
        _ = monitor.disconnected(at: ms(1000))
        #expect(reports(monitor.connected(at: ms(1200))) == [.restored, .stable])
    }

    /// Hysteresis: every further loss within the flap window doubles the hold before stable.
    @Test func flappingDoublesTheHoldUpToTheMaximum() {
        // A flap window wide enough that no loss of this test leaves it.
        var monitor = PeerLinkMonitor(configuration: .init(flapWindow: .seconds(600)))
        _ = monitor.connected(at: ms(0))
        var t: Int64 = 0
        var holds: [Int64] = []
        for _ in 0..<8 {
            t += 100
            _ = monitor.disconnected(at: ms(t))
            t += 100
            let connectedAt = t
            let immediate = reports(monitor.connected(at: ms(t)))
            if immediate.contains(.stable) {
                holds.append(0)
                continue
            }
            // Bounded: a hold longer than a minute is a failure, not a reason to spin.
            var stableAt: Int64?
            while stableAt == nil && t - connectedAt <= 60_000 {
                t += 10
                if reports(monitor.heard(at: ms(t)) + monitor.tick(at: ms(t))).contains(.stable) { stableAt = t }
            }
            holds.append((stableAt ?? -1) - connectedAt)
        }
        #expect(holds == [0, 1000, 2000, 4000, 8000, 16000, 30000, 30000])
    }

    @Test func lossesOlderThanTheFlapWindowAreForgotten() {
        var monitor = PeerLinkMonitor()
        _ = monitor.connected(at: ms(0))
        _ = monitor.disconnected(at: ms(100))
        _ = monitor.connected(at: ms(200))
        _ = monitor.disconnected(at: ms(300))
        #expect(!reports(monitor.connected(at: ms(400))).contains(.stable), "second loss within the window: hold")
        _ = monitor.disconnected(at: ms(500))
        // Long after: the earlier losses no longer count.
        #expect(reports(monitor.connected(at: ms(120_000))) == [.restored, .stable])
    }

    @Test func aLinkThatDiesDuringItsHoldIsNeverReportedStable() {
        var monitor = PeerLinkMonitor()
        _ = monitor.connected(at: ms(0))
        _ = monitor.disconnected(at: ms(100))
        _ = monitor.connected(at: ms(200))
        _ = monitor.disconnected(at: ms(300))
        _ = monitor.connected(at: ms(400))  // hold 1 s: stable at 1400 if it lasts
        #expect(reports(monitor.disconnected(at: ms(900))) == [.lost(.closed)])
        #expect(reports(monitor.tick(at: ms(1500))) == [])
    }
}

/// Issue 24, 19: a long link, 150 ms each way against the 300 ms loss timeout. The peer's
/// first frame arrives a round trip after the link is up; it was taken as late, and the link
/// was lost at every connect, forever.
@Suite struct LongLinkTests {
    func ms(_ value: Int64) -> MonotonicTime { .milliseconds(value) }

    @Test func aFrameExactlyAtTheDeadlineIsInTime() {
        var monitor = PeerLinkMonitor()
        _ = monitor.connected(at: ms(0))
        _ = monitor.heard(at: ms(10))
        #expect(!monitor.heard(at: ms(310)).contains(.report(.lost(.timeout))))
        #expect(monitor.isConnected)
    }

    @Test func theFirstFrameIsAllowedTheHandshakesRoundTrip_andASlowLinkIsReported() {
        var monitor = PeerLinkMonitor()
        // The opening took 350 ms (a round trip of 300 and the rest): the first frame may take it.
        _ = monitor.connected(at: ms(0), handshake: .milliseconds(350))
        #expect(!monitor.tick(at: ms(330)).contains(.report(.lost(.timeout))), "no frame yet, but within the allowance")
        let first = monitor.heard(at: ms(330))
        #expect(first.contains(.slowLink(roundTrip: .milliseconds(330), suggestedLossTimeout: .milliseconds(800))), "\(first)")
        #expect(monitor.isConnected)
        // From then on the ordinary loss timeout: frames every 100 ms keep it up.
        for t in stride(from: Int64(430), through: 3000, by: 100) { #expect(!monitor.heard(at: ms(t)).contains(.closeConnection)) }
        #expect(monitor.isConnected)
    }

    @Test func withoutAHandshakeTheFirstLateFrameTeachesTheNextConnection() {
        var monitor = PeerLinkMonitor()
        _ = monitor.connected(at: ms(0))
        let late = monitor.heard(at: ms(320))
        #expect(late.contains(.report(.lost(.timeout))), "more than the loss timeout with no allowance: lost once")
        #expect(monitor.firstFrameDelay == .milliseconds(320))
        _ = monitor.connected(at: ms(1000))
        #expect(!monitor.heard(at: ms(1320)).contains(.report(.lost(.timeout))), "the next connection allows what the link takes")
        #expect(monitor.isConnected)
    }

    @Test func aSilentPeerIsStillLostAfterTheAllowance() {
        var monitor = PeerLinkMonitor()
        _ = monitor.connected(at: ms(0), handshake: .milliseconds(300))
        #expect(!monitor.tick(at: ms(600)).contains(.report(.lost(.timeout))), "the loss timeout plus the handshake: not yet")
        #expect(monitor.tick(at: ms(601)).contains(.report(.lost(.timeout))))
    }
}

@Suite struct FrozenProcessTests {
    /// A process frozen past the loss deadline reads, on waking, frames sent before the
    /// freeze: the link counts as lost first, so nothing acts on them.
    @Test func aFrameReadAfterTheLossDeadlineFindsTheLinkLost() {
        var monitor = PeerLinkMonitor()
        _ = monitor.connected(at: .milliseconds(0))
        _ = monitor.heard(at: .milliseconds(250))
        #expect(monitor.heard(at: .milliseconds(1_800)) == [.report(.lost(.timeout)), .closeConnection])
        #expect(!monitor.isConnected)
    }
}
