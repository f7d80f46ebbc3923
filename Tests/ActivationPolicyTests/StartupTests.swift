import ActivationPolicy
import FailoverSimulator
import HealthMonitor
import Testing
import PairModel

/// The start-up cases, each explicit.
@Suite struct StartupTests {
    @Test func primaryStartingWhileTheSecondaryIsActive_staysStandby() {
        let pair = runningPair()
        pair.crash(.primary)
        pair.advance(by: .seconds(3))
        pair.start(.primary)
        pair.advance(by: .seconds(10))
        #expect(pair.state(of: .primary) == .awaitingAuthorization)
        #expect(pair.activations(of: .primary).count == 1, "only its first activation, before the crash")
        expectNoViolations(pair)
    }

    @Test func primaryStartingWithTheSecondaryUnreachable_servesAfterItsWait() {
        let pair = SimulatedPair(seed: 3)
        pair.start(.primary)
        pair.advance(by: .milliseconds(900))
        #expect(pair.state(of: .primary) == .standby, "it first gives the secondary a chance to answer")
        pair.advance(by: .milliseconds(200))
        #expect(pair.state(of: .primary) == .active)
        #expect(pair.warnings(of: .primary).contains { $0.contains("secondary unreachable") })
        expectNoViolations(pair)
    }

    @Test func primaryStartingWithItsSecondaryStandby_servesAsSoonAsTheyTalk() {
        let pair = SimulatedPair(seed: 4)
        pair.start(.secondary)
        pair.advance(by: .seconds(1))
        pair.start(.primary)
        pair.advance(by: .milliseconds(50))
        #expect(pair.activeServers == [.primary])
        expectNoViolations(pair)
    }

    @Test func secondaryStartingAlone_staysStandbyUntilItHearsFromAPrimary() {
        let pair = SimulatedPair(seed: 5)
        pair.start(.secondary)
        pair.startClients()
        pair.advance(by: .seconds(60))
        #expect(pair.state(of: .secondary) == .standby)
        #expect(pair.loggedIn(on: .secondary) == 0, "a standby refuses logins")
        pair.start(.primary)
        pair.advance(by: .seconds(3))
        #expect(pair.activeServers == [.primary])
        #expect(pair.loggedIn(on: .primary) == 40)
        expectNoViolations(pair)
    }

    @Test func secondaryActivatesOnceItHeardFromAPrimaryAndLostIt() {
        let pair = SimulatedPair(seed: 6)
        pair.start(.secondary)
        pair.start(.primary)
        pair.advance(by: .seconds(2))
        pair.crash(.primary)
        pair.advance(by: .milliseconds(100))
        #expect(pair.activeServers == [.secondary])
        expectNoViolations(pair)
    }

    @Test func secondaryRestartingWhileActive_resumesServing() {
        let pair = runningPair()
        pair.crash(.primary)
        pair.advance(by: .seconds(3))
        let epoch = pair.epoch(of: .secondary)
        pair.crash(.secondary)
        pair.advance(by: .seconds(2))
        pair.start(.secondary)
        pair.advance(by: .seconds(5))
        #expect(pair.activeServers == [.secondary])
        #expect(pair.epoch(of: .secondary) == epoch, "the same tenure: clients' tokens stay valid")
        #expect(pair.loggedIn(on: .secondary) == 40)
        expectNoViolations(pair)
    }
}
