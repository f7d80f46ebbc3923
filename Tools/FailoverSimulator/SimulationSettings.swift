import ActivationPolicy
import PairNode
import HealthMonitor

/// The simulated world's timings. Defaults are the product defaults; the network figures are
/// those of a LAN.
public struct SimulationSettings: Sendable {
    public var link = PeerLinkMonitor.Configuration()
    public var census = ClientCensus.Configuration()
    public var policy = ActivationPolicy.Configuration()
    public var clients = 40
    /// How long either end of a client connection takes to notice silence (client heartbeat
    /// 1 s, three misses).
    public var clientTimeout: Duration = .seconds(3)
    public var clientRetry: Duration = .milliseconds(250)
    public var connectTimeout: Duration = .seconds(1)
    public var redialInterval: Duration = .milliseconds(100)
    /// One-way delivery time of a message, in nanoseconds.
    public var latency: ClosedRange<Int64> = 200_000...2_000_000
    /// How late an event loop runs a timer, in nanoseconds.
    public var timerJitter: ClosedRange<Int64> = 0...2_000_000
    /// The chance that a decision frame (state, request, report) is sent twice in a row.
    public var duplicateFrames: Double = 0

    public init() {}

    /// The node every simulated server runs, with these timings.
    public var node: PairNode.Configuration { PairNode.Configuration(policy: policy, link: link, census: census) }

    /// The longest one-way delivery.
    public var maximumLatency: Duration { .nanoseconds(latency.upperBound) }

    /// The longest a server may take to act on a loss it must detect (row 2 and row 3):
    /// silence detection, the row-3 settle delay, timer jitter and delivery.
    public var detectionPeriod: Duration {
        link.lossTimeout + policy.deactivationSettle + .nanoseconds(timerJitter.upperBound + 2 * latency.upperBound)
            + .milliseconds(10)
    }

    /// The longest nobody may serve while some server could: a primary's start-up wait,
    /// or a detection period, whichever is longer, plus a connection set-up and the
    /// announcements that follow it.
    public var unservedBound: Duration {
        max(policy.startupPeerWait, detectionPeriod) + redialInterval + .milliseconds(50) + maximumLatency * 4
    }
}
