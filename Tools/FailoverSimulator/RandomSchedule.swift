import ActivationPolicy
import PairNode
import Foundation
import HealthMonitor
import PairModel

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
    // Shapes an outside review found the ones above never produced (issue 9).
    /// Both processes killed together and restarted in either order (a crash mid-trial).
    case restartBoth
    /// A row-4 handover, and the secondary killed during its trial.
    case handoverThenCrashSecondary
    /// The secondary loses the primary's licence for a while (it cannot serve), during
    /// which a partition may come.
    case licenceRefusal
    /// A flapping link while clients that cannot reach the primary move to the secondary.
    case flapWithClientMoves
    /// A flaky client lost every couple of seconds, then a real partition.
    case trickleThenPartition
    /// A frame sent long ago delivered again (its epoch is stale).
    case staleFrame
    /// The primary crashes, the link is cut, and the primary restarts while it is cut.
    case crashPrimaryThenCutLink
    /// Maintenance mode for a while, with the link cut (or clients lost) during it, healed
    /// before or after it ends: no automatic decision inside, the failover at its end.
    case maintenance
    // With a witness only (issue 29).
    /// The witness refuses every request (its process is down) for a while.
    case witnessDown
    /// One server cannot reach the witness (its requests time out), sometimes with the link cut.
    case witnessCutFromOne
    /// The witness answers late (100-600 ms each way).
    case witnessSlow
    /// The key and its lease vanish (an operator, etcd restored from an old snapshot).
    case witnessLeaseRevoked

    var needsWitness: Bool { [.witnessDown, .witnessCutFromOne, .witnessSlow, .witnessLeaseRevoked].contains(self) }
}

/// The network between the servers, drawn per schedule.
public enum LatencyProfile: String, CaseIterable, Sendable {
    /// 0.2–2 ms: a LAN.
    case lan
    /// 20–150 ms: a distant site.
    case wan
    /// 1–250 ms: a link whose delay jumps around (it may flap at a 300 ms loss timeout).
    case jittery
    /// 148–152 ms: a long but steady link, whose round trip reaches the 300 ms loss timeout.
    case longHaul

    var range: ClosedRange<Int64> {
        switch self {
        case .lan: 200_000...2_000_000
        case .wan: 20_000_000...150_000_000
        case .jittery: 1_000_000...250_000_000
        case .longHaul: 148_000_000...152_000_000
        }
    }
}

public struct RandomSchedule: Sendable {
    public var settings: SimulationSettings
    public var duration: Duration

    /// Draw the latency profile and frame duplication per seed.
    public var randomNetwork: Bool

    public init(settings: SimulationSettings = SimulationSettings(), duration: Duration = .seconds(90), randomNetwork: Bool = true) {
        self.settings = settings
        self.duration = duration
        self.randomNetwork = randomNetwork
    }

    /// Without a witness, the witness's faults are never drawn (and the others' draws per seed
    /// are what they were before the witness existed).
    var faultChoices: [Fault] { settings.policy.witness == nil ? Fault.allCases.filter { !$0.needsWitness } : Fault.allCases }

    /// Quiet time at the end, long enough for the longest flap hold and every client retry.
    var quietTail: Duration { settings.link.maximumHold + settings.detectionPeriod + settings.clientTimeout + .seconds(5) }

    /// The settings a seed runs with: the network and the frame duplication are drawn too.
    public func settings(seed: UInt64) -> SimulationSettings {
        guard randomNetwork else { return settings }
        var rng = SplitMix64(seed: seed ^ 0x4E37_4E37_4E37_4E37)
        var drawn = settings
        let roll = Int.random(in: 0..<20, using: &rng)
        let profile: LatencyProfile = roll < 12 ? .lan : roll < 17 ? .wan : roll < 19 ? .jittery : .longHaul
        drawn.latency = profile.range
        drawn.duplicateFrames = Bool.random(using: &rng) ? 0.2 : 0
        return drawn
    }

    public func run(seed: UInt64) -> ScheduleResult {
        let settings = settings(seed: seed)
        let pair = SimulatedPair(settings: settings, seed: seed)
        var rng = SplitMix64(seed: seed ^ 0x5EED_5EED_5EED_5EED)
        var faults: [String] = []
        var flapEpisodes: [(start: MonotonicTime, end: MonotonicTime)] = []
        var otherFaults: [(start: MonotonicTime, end: MonotonicTime)] = []
        var partitions: [(start: MonotonicTime, end: MonotonicTime)] = []

        // Start-up in either order, possibly with the secondary much later.
        let primaryStart = MonotonicTime.milliseconds(Int64.random(in: 0...2000, using: &rng))
        let secondaryStart = MonotonicTime.milliseconds(Int64.random(in: 0...3000, using: &rng))
        pair.schedule(at: primaryStart) { $0.start(.primary) }
        pair.schedule(at: secondaryStart) { $0.start(.secondary) }
        pair.schedule(at: max(primaryStart, secondaryStart) + .milliseconds(300)) { $0.startClients() }

        var t = max(primaryStart, secondaryStart) + .seconds(4)
        var lastFaultEnd = t
        let end = MonotonicTime.zero + duration
        while t < end {
            let fault = faultChoices.randomElement(using: &rng)!
            let length = Duration.milliseconds(Int64.random(in: 200...8000, using: &rng))
            faults.append("\(t) \(fault.rawValue) \(length)")
            let finish = plan(fault, at: t, for: length, pair: pair, rng: &rng)
            if fault == .flapLink { flapEpisodes.append((t, finish)) } else { otherFaults.append((t, finish)) }
            if fault == .partition { partitions.append((t, finish)) }
            lastFaultEnd = max(lastFaultEnd, finish)
            // Mostly one fault at a time, sometimes overlapping ones.
            let overlap = Int.random(in: 0..<6, using: &rng) == 0
            t = overlap ? t + .milliseconds(Int64.random(in: 0...1500, using: &rng)) : finish + .milliseconds(Int64.random(in: 1000...8000, using: &rng))
        }
        // Heal everything, bring every server back, and let the pair settle.
        let healAt = max(t, end, lastFaultEnd)
        pair.schedule(at: healAt) { pair in
            pair.latencyRange = LatencyProfile.lan.range
            pair.healPeerNetwork()
            pair.healClients(of: .primary)
            pair.healClients(of: .secondary)
            pair.setActivationRefusal(.secondary, nil)
            pair.witness.reach = [.primary: .up, .secondary: .up]
            pair.witness.delay = .milliseconds(1)
            for role in [ServerRole.primary, .secondary] where !pair.isRunning(role) { pair.start(role) }
        }
        // Only episodes no other fault overlapped: a crash during a flap is another story.
        func near(_ a: (start: MonotonicTime, end: MonotonicTime), _ b: (start: MonotonicTime, end: MonotonicTime)) -> Bool {
            a.start <= b.end + .seconds(5) && b.start <= a.end + .seconds(5)
        }
        for partition in partitions where !otherFaults.contains(where: { $0.start != partition.start && near($0, partition) })
            && !flapEpisodes.contains(where: { near($0, partition) })
        {
            expectRowThree(pair, partition: partition)
        }
        pair.run(until: healAt + quietTail)
        checkSettled(pair)
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
        func healClients(_ pair: SimulatedPair) {
            pair.healClients(of: .primary)
            pair.healClients(of: .secondary)
        }
        func cutFromActive(_ pair: SimulatedPair, fraction: Double) {
            let role = pair.activeServers.first ?? .primary
            pair.cutClients(of: role, count: Int((Double(pair.loggedIn(on: role)) * fraction).rounded(.up)))
        }
        switch fault {
        case .crashPrimary, .crashSecondary:
            let role: ServerRole = fault == .crashPrimary ? .primary : .secondary
            pair.schedule(at: t) { $0.crash(role) }
            pair.schedule(at: t + length) { if !$0.isRunning(role) { $0.start(role) } }
        case .cutLink:
            pair.schedule(at: t) { $0.cutPeerNetwork() }
            pair.schedule(at: t + length) { $0.healPeerNetwork() }
        case .flapLink, .flapWithClientMoves:
            var at = t
            for _ in 0..<Int.random(in: 3...12, using: &rng) {
                let down = Duration.milliseconds(Int64.random(in: 50...1500, using: &rng))
                let up = Duration.milliseconds(Int64.random(in: 50...2500, using: &rng))
                pair.schedule(at: at) { $0.cutPeerNetwork() }
                pair.schedule(at: at + down) { $0.healPeerNetwork() }
                at = at + down + up
            }
            if fault == .flapWithClientMoves {
                // During the holds, some clients lose the primary and log in to the secondary.
                let moveAt = t + .milliseconds(Int64.random(in: 500...max(600, (at - t).milliseconds), using: &rng))
                let fraction = Double.random(in: 0.2...0.8, using: &rng)
                pair.schedule(at: moveAt) { pair in
                    pair.cutClients(of: .primary, count: Int(Double(pair.loggedIn(on: .primary)) * fraction))
                }
                pair.schedule(at: at + .seconds(3)) { healClients($0) }
                return at + .seconds(3)
            }
            return at
        case .pausePrimary, .pauseSecondary:
            let role: ServerRole = fault == .pausePrimary ? .primary : .secondary
            let pause = Duration.milliseconds(Int64.random(in: 100...4000, using: &rng))
            pair.schedule(at: t) { $0.pause(role, for: pause) }
            return t + pause
        case .majorityClientLoss, .partialClientLoss, .partition:
            let fraction =
                fault == .partialClientLoss ? Double.random(in: 0.3...0.45, using: &rng) : Double.random(in: 0.55...0.95, using: &rng)
            pair.schedule(at: t) { pair in
                if fault == .partition {
                    let p = pair.servers[0]
                    let s = pair.servers[1]
                    let population = pair.loggedIn(on: .primary)
                    pair.partitionRecord = SimulatedPair.PartitionRecord(
                        at: pair.now, primaryActive: p.isServing && !s.isServing, linkUp: p.policy.isLinkStable && s.policy.isLinkUp,
                        secondaryCanServe: s.running && !s.isPaused && s.policy.canActivate && s.policy.state == .standby,
                        population: population, cut: Int((Double(population) * fraction).rounded(.up)))
                    pair.cutPeerNetwork()
                }
                cutFromActive(pair, fraction: fraction)
            }
            pair.schedule(at: t + length) { pair in
                if fault == .partition { pair.healPeerNetwork() }
                healClients(pair)
            }
        case .trickle, .trickleThenPartition:
            // One client every few seconds: never a burst, so the census must stay quiet.
            var at = t
            for _ in 0..<Int.random(in: 2...5, using: &rng) {
                pair.schedule(at: at) { pair in
                    if let role = pair.activeServers.first { pair.cutClients(of: role, count: 1) }
                }
                at = at + .milliseconds(Int64.random(in: 1500...2500, using: &rng))
            }
            if fault == .trickleThenPartition {
                let fraction = Double.random(in: 0.6...0.9, using: &rng)
                pair.schedule(at: at) { pair in
                    pair.cutPeerNetwork()
                    cutFromActive(pair, fraction: fraction)
                }
                at = at + length
                pair.schedule(at: at) { $0.healPeerNetwork() }
            }
            pair.schedule(at: at) { healClients($0) }
            return at
        case .maintenance:
            let until = t + length
            pair.schedule(at: t) { $0.beginMaintenance(until: until) }
            let cutAt = t + .milliseconds(Int64.random(in: 0...max(1, length.milliseconds / 2), using: &rng))
            let healAt = cutAt + .milliseconds(Int64.random(in: 200...(length.milliseconds + 3000), using: &rng))
            if Bool.random(using: &rng) {
                pair.schedule(at: cutAt) { $0.cutPeerNetwork() }
                pair.schedule(at: healAt) { $0.healPeerNetwork() }
            } else {
                pair.schedule(at: cutAt) { cutFromActive($0, fraction: 0.7) }
                pair.schedule(at: healAt) { healClients($0) }
            }
            return max(until, healAt)
        case .witnessDown:
            pair.schedule(at: t) { $0.witness.reach = [.primary: .refused, .secondary: .refused] }
            if Bool.random(using: &rng) {
                pair.schedule(at: t + length / 3) { $0.cutPeerNetwork() }
                pair.schedule(at: t + length) { $0.healPeerNetwork() }
            }
            pair.schedule(at: t + length) { $0.witness.reach = [.primary: .up, .secondary: .up] }
        case .witnessCutFromOne:
            let side: ServerRole = Int.random(in: 0...1, using: &rng) == 0 ? .primary : .secondary  // the draw as before: seeds replay
            pair.schedule(at: t) { $0.witness.reach[side] = .silent }
            if Bool.random(using: &rng) {
                pair.schedule(at: t + length / 4) { $0.cutPeerNetwork() }
                pair.schedule(at: t + length) { $0.healPeerNetwork() }
            }
            pair.schedule(at: t + length) { $0.witness.reach[side] = .up }
        case .witnessSlow:
            let delay = Duration.milliseconds(Int64.random(in: 100...600, using: &rng))
            pair.schedule(at: t) { $0.witness.delay = delay }
            if Bool.random(using: &rng) {
                let pause = Duration.milliseconds(Int64.random(in: 3500...6000, using: &rng))
                pair.schedule(at: t + length / 3) { $0.pause(.primary, for: pause) }
            }
            pair.schedule(at: t + length) { $0.witness.delay = .milliseconds(1) }
        case .witnessLeaseRevoked:
            pair.schedule(at: t) { $0.witness.deleteKey(at: $0.now) }
        case .switchover:
            pair.schedule(at: t) { pair in
                guard let role = pair.activeServers.first else { return }
                pair.admin(role, .switchover(acknowledging: pair.activationIncident(of: role)))
            }
        case .switchoverNamingWrongIncident:
            pair.schedule(at: t) { pair in
                guard let role = pair.activeServers.first else { return }
                let reply = pair.admin(role, .switchover(acknowledging: "X0-0"))
                if case .adminAccepted = reply {
                    pair.invariants.fail("a switchover naming a wrong incident was accepted", pair)
                }
            }
        case .forceActivation:
            pair.schedule(at: t) { pair in
                guard let role = [ServerRole.primary, .secondary].first(where: { pair.isRunning($0) && pair.state(of: $0) != .active })
                else { return }
                pair.admin(role, .forceActivation(reason: "simulated operator decision"))
            }
        case .restartBoth:
            let gap = Duration.milliseconds(Int64.random(in: 0...3000, using: &rng))
            let primaryFirst = Bool.random(using: &rng)
            pair.schedule(at: t) { pair in
                pair.crash(.primary)
                pair.crash(.secondary)
            }
            pair.schedule(at: t + length) { $0.start(primaryFirst ? .primary : .secondary) }
            pair.schedule(at: t + length + gap) { pair in
                for role in [ServerRole.primary, .secondary] where !pair.isRunning(role) { pair.start(role) }
            }
            return t + length + gap
        case .handoverThenCrashSecondary:
            let fraction = Double.random(in: 0.3...0.45, using: &rng)
            let crashAfter = Duration.milliseconds(Int64.random(in: 3200...9000, using: &rng))
            pair.schedule(at: t) { cutFromActive($0, fraction: fraction) }
            pair.schedule(at: t + crashAfter) { $0.crash(.secondary) }
            pair.schedule(at: t + crashAfter + length) { pair in
                healClients(pair)
                if !pair.isRunning(.secondary) { pair.start(.secondary) }
            }
            return t + crashAfter + length
        case .licenceRefusal:
            let partitionAt = Duration.milliseconds(Int64.random(in: 0...3000, using: &rng))
            let withPartition = Bool.random(using: &rng)
            let fraction = Double.random(in: 0.55...0.9, using: &rng)
            pair.schedule(at: t) { $0.setActivationRefusal(.secondary, "no licence received from the primary") }
            if withPartition {
                pair.schedule(at: t + partitionAt) { pair in
                    pair.cutPeerNetwork()
                    cutFromActive(pair, fraction: fraction)
                }
                pair.schedule(at: t + partitionAt + length) { pair in
                    pair.healPeerNetwork()
                    healClients(pair)
                }
            }
            pair.schedule(at: t + partitionAt + length + .seconds(1)) { $0.setActivationRefusal(.secondary, nil) }
            return t + partitionAt + length + .seconds(1)
        case .staleFrame:
            let role: ServerRole = Bool.random(using: &rng) ? .primary : .secondary
            pair.schedule(at: t) { $0.replayStaleFrame(from: role) }
            return t + .milliseconds(500)
        case .crashPrimaryThenCutLink:
            pair.schedule(at: t) { $0.crash(.primary) }
            pair.schedule(at: t + .seconds(2)) { $0.cutPeerNetwork() }
            pair.schedule(at: t + .seconds(3)) { if !$0.isRunning(.primary) { $0.start(.primary) } }
            pair.schedule(at: t + .seconds(3) + length) { $0.healPeerNetwork() }
            return t + .seconds(3) + length
        }
        return t + length
    }

    /// Row 3 takes effect: after a partition that cut the link and most of the primary's
    /// clients (a population the census counts), with a secondary that can serve, the
    /// primary deactivates within its detection time.
    func expectRowThree(_ pair: SimulatedPair, partition: (start: MonotonicTime, end: MonotonicTime)) {
        let deadline = settings.clientTimeout + .seconds(2) + settings.policy.deactivationSettle + settings.maximumLatency * 4
        guard partition.end - partition.start >= deadline + .milliseconds(500) else { return }
        pair.schedule(at: partition.start + deadline) { pair in
            let p = pair.servers[0]
            let s = pair.servers[1]
            guard let before = pair.partitionRecord, before.at == partition.start, before.primaryActive, before.linkUp,
                before.secondaryCanServe, before.population >= pair.settings.census.minimumPopulation,
                !pair.peerNetworkUp, p.running, !p.isPaused, s.running, !s.isPaused, p.policy.state == .active
            else { return }
            pair.invariants.fail(
                "row 3 did not take effect: the primary lost the link and \(before.cut) of its \(before.population) clients and still serves",
                pair)
        }
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
