import ActivationPolicy
import HealthMonitor
import PairModel
import PairNode
import Testing

/// Maintenance mode (issue 26, 6): every automatic decision pauses on both servers; manual
/// commands still work; when it ends with the link still down, the failover happens then.
@Suite struct MaintenanceTests {
    @Test func aLinkCutDuringMaintenanceFailsOverOnlyWhenItEnds() {
        var pair = NodePair.running(latency: .milliseconds(1))
        let until = pair.now + .seconds(60)
        pair.send(.primary, .maintenance(on: true, until: until))
        pair.send(.secondary, .maintenance(on: true, until: until))
        #expect(pair.primary.inMaintenance && pair.secondary.inMaintenance)
        pair.lose(.timeout)
        pair.advance(by: .seconds(5))
        #expect(pair.secondary.state == .standby, "no failover during maintenance")
        #expect(pair.primary.state == .active)
        #expect(pair.incidents[.secondary, default: []].isEmpty)
        #expect(pair.warnings[.secondary, default: []].contains { $0.contains("during maintenance") }, "\(pair.warnings)")
        // Its end is a deadline of the node: the link is still down, so the secondary takes over then.
        pair.run(until: until - .milliseconds(1))
        #expect(pair.secondary.state == .standby)
        pair.run(until: until)
        #expect(!pair.secondary.inMaintenance)
        #expect(pair.secondary.state == .active, "\(pair.log.suffix(5))")
        #expect(pair.incidents[.secondary, default: []].map(\.cause) == [.peerLinkLost])
    }

    @Test func turnedOffWithTheLinkStillDown_theStandbyTakesOverAtOnce() {
        var pair = NodePair.running(latency: .milliseconds(1))
        pair.send(.secondary, .maintenance(on: true, until: nil))
        pair.lose(.closed)
        pair.advance(by: .seconds(2))
        #expect(pair.secondary.state == .standby)
        pair.send(.secondary, .maintenance(on: false, until: nil))
        #expect(pair.secondary.state == .active)
    }

    @Test func noHandoverAndNoSelfDeactivationDuringMaintenance() {
        var pair = NodePair.running(latency: .milliseconds(1))
        pair.send(.primary, .maintenance(on: true, until: nil))
        pair.send(.secondary, .maintenance(on: true, until: nil))
        // Row 4: most clients vanish with the link up: no handover request.
        pair.lose(clients: 30, of: .primary)
        pair.advance(by: .seconds(10))
        #expect(pair.primary.state == .active && pair.secondary.state == .standby, "\(pair.log.suffix(5))")
        #expect(!pair.log.contains { $0.contains("activationRequest") })
        // Row 3: the link and the rest of the clients go silent together: the primary keeps serving.
        pair.lose(clients: 10, of: .primary)
        pair.lose(.timeout)
        pair.advance(by: .seconds(10))
        #expect(pair.primary.state == .active)
        #expect(pair.incidents[.primary, default: []].isEmpty)
    }

    @Test func manualCommandsStillWork() {
        var pair = NodePair.running(latency: .milliseconds(1))
        pair.send(.primary, .maintenance(on: true, until: nil))
        pair.send(.secondary, .maintenance(on: true, until: nil))
        pair.send(.primary, .admin(.switchover(acknowledging: nil)))
        pair.advance(by: .seconds(2))
        #expect(pair.secondary.state == .active && pair.primary.state != .active, "\(pair.log.suffix(8))")
    }

    @Test func aWindowThatAlreadyEndedIsNone() {
        var pair = NodePair.running(latency: .milliseconds(1))
        pair.send(.secondary, .maintenance(on: true, until: pair.now - .seconds(1)))
        #expect(!pair.secondary.inMaintenance)
        pair.lose(.timeout)
        pair.advance(by: .seconds(1))
        #expect(pair.secondary.state == .active)
    }
}
