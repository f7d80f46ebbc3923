import ActivationPolicy
import Foundation
import HealthMonitor
import Wire

/// One random schedule of faults and administrator commands over a simulated pair, and
/// what came of it.
public struct ScheduleResult: Sendable {
    public var seed: UInt64
    public var steps: Int
    public var violations: [String]
    /// The last events before the end (or before the first violation), for replaying.
    public var trace: [String]
    public var faults: [String]
    public var activations: Int
    public var longestUnserved: Duration
}

public enum Fault: String, CaseIterable, Sendable {
    case crashPrimary, crashSecondary, cutLink, flapLink, pausePrimary, pauseSecondary
    case majorityClientLoss, partialClientLoss, partition, trickle
    case switchover, switchoverNamingWrongIncident, forceActivation
}

public struct RandomSchedule: Sendable {
    public var settings: SimulationSettings
    public var duration: Duration

    public init(settings: SimulationSettings = SimulationSettings(), duration: Duration = .seconds(90)) {
        self.settings = settings
        self.duration = duration
    }

    /// Quiet time at the end, long enough for the longest flap hold and every client retry.
    var quietTail: Duration { settings.link.maximumHold + settings.detectionPeriod + settings.clientTimeout + .seconds(5) }

    public func run(seed: UInt64) -> ScheduleResult {
        let pair = SimulatedPair(settings: settings, seed: seed)
        var rng = SplitMix64(seed: seed ^ 0x5EED_5EED_5EED_5EED)
        var faults: [String] = []
        var flapEpisodes: [(start: MonotonicTime, end: MonotonicTime)] = []
        var otherFaults: [(start: MonotonicTime, end: MonotonicTime)] = []

        // Start-up in either order, possibly with the secondary much later.
        let primaryStart = MonotonicTime.milliseconds(Int64.random(in: 0...2000, using: &rng))
        let secondaryStart = MonotonicTime.milliseconds(Int64.random(in: 0...3000, using: &rng))
        pair.schedule(at: primaryStart) { pair.start(.primary) }
        pair.schedule(at: secondaryStart) { pair.start(.secondary) }
        pair.schedule(at: max(primaryStart, secondaryStart) + .milliseconds(300)) { pair.startClients() }

        var t = max(primaryStart, secondaryStart) + .seconds(4)
        var lastFaultEnd = t
        let end = MonotonicTime.zero + duration
        while t < end {
            let fault = Fault.allCases.randomElement(using: &rng)!
            let length = Duration.milliseconds(Int64.random(in: 200...8000, using: &rng))
            faults.append("\(t) \(fault.rawValue) \(length)")
            let finish = plan(fault, at: t, for: length, pair: pair, rng: &rng)
            if fault == .flapLink { flapEpisodes.append((t, finish)) } else { otherFaults.append((t, finish)) }
            lastFaultEnd = max(lastFaultEnd, finish)
            // Mostly one fault at a time, sometimes overlapping ones.
            let overlap = Int.random(in: 0..<6, using: &rng) == 0
            t = overlap ? t + .milliseconds(Int64.random(in: 0...1500, using: &rng)) : finish + .milliseconds(Int64.random(in: 1000...8000, using: &rng))
        }
        // Heal everything, bring every server back, and let the pair settle.
        let healAt = max(t, end, lastFaultEnd)
        pair.schedule(at: healAt) {
            pair.healPeerNetwork()
            pair.healClients(of: .primary)
            pair.healClients(of: .secondary)
            for role in [ServerRole.primary, .secondary] where !pair.isRunning(role) { pair.start(role) }
        }
        pair.run(until: healAt + quietTail)
        checkSettled(pair)
        // Only episodes no other fault overlapped: a crash during a flap is another story.
        func near(_ a: (start: MonotonicTime, end: MonotonicTime), _ b: (start: MonotonicTime, end: MonotonicTime)) -> Bool {
            a.start <= b.end + .seconds(5) && b.start <= a.end + .seconds(5)
        }
        let isolated = flapEpisodes.filter { episode in
            !otherFaults.contains { near($0, episode) } && !flapEpisodes.contains { $0.start != episode.start && near($0, episode) }
        }
        checkFlapping(pair, episodes: isolated)

        let activations = pair.servers.map(\.activations.count).reduce(0, +)
        return ScheduleResult(
            seed: seed, steps: pair.steps, violations: pair.violations, trace: pair.trace, faults: faults,
            activations: activations, longestUnserved: pair.invariants.longestUnserved)
    }

    /// Schedules one fault; returns when it ends.
    func plan(_ fault: Fault, at t: MonotonicTime, for length: Duration, pair: SimulatedPair, rng: inout SplitMix64) -> MonotonicTime {
        switch fault {
        case .crashPrimary, .crashSecondary:
            let role: ServerRole = fault == .crashPrimary ? .primary : .secondary
            pair.schedule(at: t) { pair.crash(role) }
            pair.schedule(at: t + length) { if !pair.isRunning(role) { pair.start(role) } }
        case .cutLink:
            pair.schedule(at: t) { pair.cutPeerNetwork() }
            pair.schedule(at: t + length) { pair.healPeerNetwork() }
        case .flapLink:
            var at = t
            for _ in 0..<Int.random(in: 3...12, using: &rng) {
                let down = Duration.milliseconds(Int64.random(in: 50...1500, using: &rng))
                let up = Duration.milliseconds(Int64.random(in: 50...2500, using: &rng))
                pair.schedule(at: at) { pair.cutPeerNetwork() }
                pair.schedule(at: at + down) { pair.healPeerNetwork() }
                at = at + down + up
            }
            return at
        case .pausePrimary, .pauseSecondary:
            let role: ServerRole = fault == .pausePrimary ? .primary : .secondary
            let pause = Duration.milliseconds(Int64.random(in: 100...4000, using: &rng))
            pair.schedule(at: t) { pair.pause(role, for: pause) }
            return t + pause
        case .majorityClientLoss, .partialClientLoss, .partition:
            let fraction =
                fault == .partialClientLoss ? Double.random(in: 0.3...0.45, using: &rng) : Double.random(in: 0.55...0.95, using: &rng)
            pair.schedule(at: t) {
                let role = pair.activeServers.first ?? .primary
                if fault == .partition { pair.cutPeerNetwork() }
                pair.cutClients(of: role, count: Int((Double(pair.loggedIn(on: role)) * fraction).rounded(.up)))
            }
            pair.schedule(at: t + length) {
                if fault == .partition { pair.healPeerNetwork() }
                pair.healClients(of: .primary)
                pair.healClients(of: .secondary)
            }
        case .trickle:
            // One client every few seconds: never a burst, so the census must stay quiet.
            var at = t
            for _ in 0..<Int.random(in: 2...5, using: &rng) {
                pair.schedule(at: at) {
                    if let role = pair.activeServers.first { pair.cutClients(of: role, count: 1) }
                }
                at = at + settings.census.window + .milliseconds(Int64.random(in: 500...2000, using: &rng))
            }
            pair.schedule(at: at) {
                pair.healClients(of: .primary)
                pair.healClients(of: .secondary)
            }
            return at
        case .switchover:
            pair.schedule(at: t) {
                guard let role = pair.activeServers.first else { return }
                pair.admin(role, .switchover(acknowledging: pair.activationIncident(of: role)))
            }
        case .switchoverNamingWrongIncident:
            pair.schedule(at: t) {
                guard let role = pair.activeServers.first else { return }
                let reply = pair.admin(role, .switchover(acknowledging: "X0-0"))
                if case .adminAccepted = reply {
                    pair.invariants.fail("a switchover naming a wrong incident was accepted", pair)
                }
            }
        case .forceActivation:
            pair.schedule(at: t) {
                guard let role = [ServerRole.primary, .secondary].first(where: { pair.isRunning($0) && pair.state(of: $0) != .active })
                else { return }
                pair.admin(role, .forceActivation(reason: "simulated operator decision"))
            }
        }
        return t + length
    }

    /// After the final quiet period: one server serves and every client is logged in to it.
    func checkSettled(_ pair: SimulatedPair) {
        let active = pair.activeServers
        guard active.count == 1, let server = active.first else {
            pair.invariants.fail("after settling, \(active.count) servers are active", pair)
            return
        }
        if pair.clientsWithoutSession > 0 || pair.loggedIn(on: server) != settings.clients {
            pair.invariants.fail(
                "after settling, \(pair.loggedIn(on: server)) of \(settings.clients) clients are logged in to the active \(server)", pair)
        }
    }

    /// A flapping link must not make the pair flap: during an episode each server activates
    /// at most once per doubling of the heal hold (plus the first loss and one spare).
    func checkFlapping(_ pair: SimulatedPair, episodes: [(start: MonotonicTime, end: MonotonicTime)]) {
        for episode in episodes {
            let length = episode.end - episode.start
            // Heal holds run 0, b, 2b, 4b…: n yields need 2^(n-1) - 1 holds of b, so an episode
            // of length L allows at most log2(L/b + 1) + 1 yields, each followed by at most
            // one activation (the primary's re-assertion of the highest epoch counts too).
            let holds = Double(length.nanoseconds) / Double(max(1, settings.link.baseHold.nanoseconds)) + 1
            let bound = Int(log2(holds).rounded(.up)) + 3
            for server in pair.servers {
                let count = server.activations.filter { $0.at >= episode.start && $0.at <= episode.end + .seconds(1) }.count
                if count > bound {
                    pair.invariants.fail(
                        "\(server.role) activated \(count) times during a \(length) flapping episode (bound \(bound))", pair)
                }
            }
        }
    }
}
