import PairModel

/// Counts a server's logged-in clients and notices when many are *lost* at about the same
/// time — the signature of a network failure between the server and its clients.
///
/// A loss is a connection that dropped or timed out; a logout or a redirect is a client
/// leaving on purpose and never counts. Losses are counted over a sliding window against the
/// population that was there when they began (connected now + lost within the window), so
/// a slow trickle of departures never adds up, and a server with almost no clients never
/// fires. Each level fires once when its condition becomes true, and re-arms as soon as the
/// condition is false again (the losses left the window, or the population recovered): a
/// flaky client lost every few seconds keeps the window from ever emptying, and must not
/// keep a later, real network failure from being reported.
public struct ClientCensus: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// How close together losses must be to count as one event. At least the clients'
        /// own detection time (their heartbeat timeout), because a silent network failure
        /// makes their losses trickle in over that long.
        public var window: Duration
        /// A strict majority: more than this fraction of the population lost.
        public var majorityFraction: Double
        /// A large share: at least this fraction lost.
        public var largeShareFraction: Double
        /// Below this population nothing fires: losing 2 of 3 clients is not a network event.
        public var minimumPopulation: Int

        public init(
            window: Duration = .seconds(4), majorityFraction: Double = 0.5, largeShareFraction: Double = 0.3,
            minimumPopulation: Int = 10
        ) {
            self.window = window
            self.majorityFraction = majorityFraction
            self.largeShareFraction = largeShareFraction
            self.minimumPopulation = minimumPopulation
        }
    }

    public enum Report: Equatable, Sendable {
        case largeShareLost(lost: Int, population: Int)
        case majorityLost(lost: Int, population: Int)
    }

    public let configuration: Configuration
    public private(set) var connected = 0
    private var losses: [MonotonicTime] = []
    private var firedLargeShare = false
    private var firedMajority = false

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Losses within the window ending now.
    public var recentLosses: Int { losses.count }

    public var nextDeadline: MonotonicTime? { losses.first.map { $0 + configuration.window } }

    public mutating func clientJoined(at now: MonotonicTime) {
        expire(at: now)
        connected += 1
    }

    /// A deliberate departure: logout, or moved by a redirect.
    public mutating func clientLeft(at now: MonotonicTime) {
        expire(at: now)
        connected = max(0, connected - 1)
    }

    /// Every client is gone at once because the server itself stopped serving them (it
    /// deactivated): a deliberate departure, not a loss.
    public mutating func allLeft(at now: MonotonicTime) {
        connected = 0
        losses.removeAll()
        firedLargeShare = false
        firedMajority = false
    }

    public mutating func clientLost(at now: MonotonicTime) -> [Report] {
        expire(at: now)
        guard connected > 0 else { return [] }
        connected -= 1
        losses.append(now)
        return evaluate()
    }

    public mutating func tick(at now: MonotonicTime) {
        expire(at: now)
    }

    private mutating func expire(at now: MonotonicTime) {
        if let first = losses.firstIndex(where: { now - $0 < configuration.window }) {
            losses.removeFirst(first)
        } else {
            losses.removeAll()
        }
        rearm()
    }

    /// The levels whose condition is false are ready to fire again.
    private mutating func rearm() {
        let (largeShare, majority) = conditions()
        if !largeShare { firedLargeShare = false }
        if !majority { firedMajority = false }
    }

    private func conditions() -> (largeShare: Bool, majority: Bool) {
        let lost = losses.count
        let population = connected + lost
        guard population >= configuration.minimumPopulation else { return (false, false) }
        return (
            Double(lost) >= configuration.largeShareFraction * Double(population),
            Double(lost) > configuration.majorityFraction * Double(population)
        )
    }

    private mutating func evaluate() -> [Report] {
        let lost = losses.count
        let population = connected + lost
        let (largeShare, majority) = conditions()
        var reports: [Report] = []
        if !firedLargeShare, largeShare {
            firedLargeShare = true
            reports.append(.largeShareLost(lost: lost, population: population))
        }
        if !firedMajority, majority {
            firedMajority = true
            reports.append(.majorityLost(lost: lost, population: population))
        }
        return reports
    }
}
