import PairModel

/// Liveness of the peer link between primary and secondary.
///
/// Feed it connection events, received traffic and clock ticks; it answers with reports for
/// the policy and with what the shell must do (send a heartbeat, close a dead connection).
/// Any frame from the peer counts as a sign of life, so a long snapshot transfer that delays
/// a heartbeat does not make the link look dead.
public struct PeerLinkMonitor: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var heartbeatInterval: Duration
        /// Intervals of silence after which the link is declared lost.
        public var missesBeforeLost: Int
        /// How long a link must stay healthy before it is reported stable, after the first
        /// loss of a flapping episode; doubled for every further loss within `flapWindow`.
        public var baseHold: Duration
        public var maximumHold: Duration
        /// Losses further apart than this do not count as flapping.
        public var flapWindow: Duration

        public init(
            heartbeatInterval: Duration = .milliseconds(100), missesBeforeLost: Int = 3, baseHold: Duration = .seconds(1),
            maximumHold: Duration = .seconds(30), flapWindow: Duration = .seconds(60)
        ) {
            self.heartbeatInterval = heartbeatInterval
            self.missesBeforeLost = max(1, missesBeforeLost)
            self.baseHold = baseHold
            self.maximumHold = maximumHold
            self.flapWindow = flapWindow
        }

        /// Silence after which the link is lost: the detection budget of a silent failure.
        public var lossTimeout: Duration { heartbeatInterval * missesBeforeLost }
    }

    public enum Report: Equatable, Sendable {
        /// The first connection of this run is up.
        case up
        /// Heartbeats are late; nothing is decided on this, it is for operators.
        case suspect
        /// Heartbeats are back in time after a `suspect`.
        case recovered
        case lost(LossCause)
        /// Connected again after a loss.
        case restored
        /// Healthy for the hold the recent flapping requires; consequences of a heal
        /// (a server yielding after a split) wait for this.
        case stable
    }

    public enum LossCause: Equatable, Sendable {
        /// The connection closed (the peer process died, or its host answered with a reset).
        case closed
        /// Nothing heard for `lossTimeout` (a silent failure: cable cut, host frozen).
        case timeout
    }

    public enum Action: Equatable, Sendable {
        case report(Report)
        case sendHeartbeat
        /// The link was declared lost while the connection is still open: close it, so the
        /// peer sees the loss too and both sides start over with a fresh connection.
        case closeConnection
        /// The peer's first frame took `roundTrip` after the link was up: more than half the
        /// loss timeout. The link is kept (the first frame is allowed that long from now on),
        /// but a silent failure takes longer to tell from a slow link: raise the loss timeout to
        /// at least `suggestedLossTimeout`. Once per connection.
        case slowLink(roundTrip: Duration, suggestedLossTimeout: Duration)
    }

    private enum Phase: Equatable {
        case disconnected
        /// `firstFrameBy`: until the peer's first frame, when it must arrive (nil once heard).
        case connected(lastHeard: MonotonicTime, suspect: Bool, stableAt: MonotonicTime?, firstFrameBy: MonotonicTime?)
    }

    public let configuration: Configuration
    private var phase: Phase = .disconnected
    private var nextHeartbeatAt: MonotonicTime?
    private var everConnected = false
    private var recentLosses: [MonotonicTime] = []
    private var connectedAt: MonotonicTime?
    /// The longest the peer's first frame has taken after a connection came up (its frames
    /// start only once its own side is up, a round trip or more later on a long link).
    public private(set) var firstFrameDelay: Duration?

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    public var isConnected: Bool { phase != .disconnected }

    /// When `tick` must next be called; nil while there is nothing to time. A frame that
    /// arrives exactly at the loss deadline is in time, so the loss is checked just after it.
    public var nextDeadline: MonotonicTime? {
        guard case .connected(let lastHeard, let suspect, let stableAt, let firstFrameBy) = phase else { return nil }
        let suspectAt = suspect ? nil : lastHeard + configuration.heartbeatInterval * 1.5
        let lossAt = (firstFrameBy ?? lastHeard + configuration.lossTimeout) + .nanoseconds(1)
        return nextHeartbeatAt.earliest(lossAt).earliest(suspectAt).earliest(stableAt)
    }

    /// The peer session is established (connected and authenticated). `handshake`: how long
    /// the opening took, an upper bound of the round trip on the first connection; the peer's
    /// first frame is allowed the loss timeout plus the longer of it and the slowest first frame
    /// seen so far. Without that, a link whose round trip reached the loss timeout (150 ms each
    /// way against 300 ms) was declared lost at every connect, forever.
    public mutating func connected(at now: MonotonicTime, handshake: Duration = .zero) -> [Action] {
        guard phase == .disconnected else { return [] }
        recentLosses.removeAll { now - $0 > configuration.flapWindow }
        let hold = holdDuration()
        let allowance = max(handshake, firstFrameDelay ?? .zero)
        phase = .connected(lastHeard: now, suspect: false, stableAt: hold == .zero ? nil : now + hold, firstFrameBy: now + configuration.lossTimeout + allowance)
        connectedAt = now
        nextHeartbeatAt = now + configuration.heartbeatInterval
        var actions: [Action] = [.sendHeartbeat, .report(everConnected ? .restored : .up)]
        everConnected = true
        if hold == .zero { actions.append(.report(.stable)) }
        return actions
    }

    /// Any frame arrived from the peer. A frame read after the loss deadline passed (this
    /// process was frozen, and read what had waited in its socket) finds the link already
    /// lost: it was sent long ago, and the peer may have acted on the silence since.
    public mutating func heard(at now: MonotonicTime) -> [Action] {
        guard case .connected(let lastHeard, let suspect, let stableAt, let firstFrameBy) = phase else { return [] }
        var actions: [Action] = []
        if let firstFrameBy, let connectedAt {
            // The first frame tells how long this link takes to answer, late or not: the next
            // connection allows that much.
            let delay = now - connectedAt
            firstFrameDelay = max(firstFrameDelay ?? .zero, delay)
            if delay * 2 > configuration.lossTimeout {
                let step = configuration.heartbeatInterval
                let wanted = delay * 2 + step
                let rounded = step * Int((wanted.nanoseconds + step.nanoseconds - 1) / step.nanoseconds)
                actions.append(.slowLink(roundTrip: delay, suggestedLossTimeout: rounded))
            }
            if now > firstFrameBy { return actions + declareLost(.timeout, at: now) + [.closeConnection] }
        } else if now > lastHeard + configuration.lossTimeout {
            return declareLost(.timeout, at: now) + [.closeConnection]
        }
        phase = .connected(lastHeard: now, suspect: false, stableAt: stableAt, firstFrameBy: nil)
        return actions + (suspect ? [.report(.recovered)] + tick(at: now) : tick(at: now))
    }

    /// The connection closed or failed.
    public mutating func disconnected(at now: MonotonicTime) -> [Action] {
        guard phase != .disconnected else { return [] }
        return declareLost(.closed, at: now)
    }

    public mutating func tick(at now: MonotonicTime) -> [Action] {
        guard case .connected(let lastHeard, var suspect, var stableAt, let firstFrameBy) = phase else { return [] }
        if now > (firstFrameBy ?? lastHeard + configuration.lossTimeout) {
            return declareLost(.timeout, at: now) + [.closeConnection]
        }
        var actions: [Action] = []
        if !suspect, now >= lastHeard + configuration.heartbeatInterval * 1.5 {
            suspect = true
            actions.append(.report(.suspect))
        }
        if let due = stableAt, now >= due {
            stableAt = nil
            actions.append(.report(.stable))
        }
        phase = .connected(lastHeard: lastHeard, suspect: suspect, stableAt: stableAt, firstFrameBy: firstFrameBy)
        if let due = nextHeartbeatAt, now >= due {
            actions.append(.sendHeartbeat)
            // Keep the cadence; after a stall, send one heartbeat and resume from now.
            var next = due + configuration.heartbeatInterval
            if next <= now { next = now + configuration.heartbeatInterval }
            nextHeartbeatAt = next
        }
        return actions
    }

    private mutating func declareLost(_ cause: LossCause, at now: MonotonicTime) -> [Action] {
        phase = .disconnected
        connectedAt = nil
        nextHeartbeatAt = nil
        recentLosses.append(now)
        return [.report(.lost(cause))]
    }

    /// No hold after an isolated loss; then base, 2×base, 4×base… up to the maximum, for
    /// each further loss within the flap window. (Counted at connection time, the loss that
    /// just ended is in `recentLosses`.)
    private func holdDuration() -> Duration {
        let flaps = recentLosses.count - 1
        guard flaps >= 1 else { return .zero }
        let doublings = min(flaps - 1, 20)
        return min(configuration.baseHold * (1 << doublings), configuration.maximumHold)
    }
}
