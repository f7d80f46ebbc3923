import ActivationPolicy
import FailoverSimulator
import HealthMonitor
import Testing
import PairModel

/// A running pair with 40 clients logged in to the primary: the starting point of most rows.
func runningPair(seed: UInt64 = 7, settings: SimulationSettings = SimulationSettings()) -> SimulatedPair {
    SimulatedPair.running(seed: seed, settings: settings)
}

/// The invariants the simulator checks after every event held throughout.
func expectNoViolations(_ pair: SimulatedPair, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(pair.violations.isEmpty, "\(pair.violations)\n\(pair.trace.suffix(40).joined(separator: "\n"))", sourceLocation: sourceLocation)
}

