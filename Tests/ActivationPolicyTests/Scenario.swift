import ActivationPolicy
import FailoverSimulator
import HealthMonitor
import Testing
import PairModel

/// A running pair with 40 clients logged in to the primary: the starting point of most rows.
func runningPair(seed: UInt64 = 7, settings: SimulationSettings = SimulationSettings()) -> SimulatedPair {
    let pair = SimulatedPair(settings: settings, seed: seed)
    pair.start(.primary)
    pair.start(.secondary)
    pair.advance(by: .milliseconds(500))
    pair.startClients()
    pair.advance(by: .seconds(5))
    return pair
}

/// The invariants the simulator checks after every event held throughout.
func expectNoViolations(_ pair: SimulatedPair, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(pair.violations.isEmpty, "\(pair.violations)\n\(pair.trace.suffix(40).joined(separator: "\n"))", sourceLocation: sourceLocation)
}

extension MonotonicTime {
    static func - (lhs: MonotonicTime, rhs: Duration) -> MonotonicTime { MonotonicTime(nanoseconds: lhs.nanoseconds - rhs.nanoseconds) }
}
