import Foundation
import Logging
import NIOConcurrencyHelpers

/// Connections refused before anyone logged in: each is counted in `/metrics`
/// (`vcom_connections_refused_total{port,reason}`), and logged at most once per port, source
/// and kind of refusal (a handful: wrong transport, TLS handshake, peer certificate, over a
/// cap, a deadline) per interval, with how many were refused since the last line. A flood of 3,300
/// refused handshakes a second once grew a log by 11 MB in 8 s; now it writes one line a
/// minute per source.
final class RefusalLog: Sendable {
    static let interval: TimeInterval = 60
    /// Sources remembered at once; beyond, refusals share one line for "other sources".
    static let maximumSources = 4_096
    let logger: Logger
    let metrics: RuntimeMetrics?
    private let state = NIOLockedValueBox([String: (loggedAt: Date, suppressed: Int)]())

    init(logger: Logger, metrics: RuntimeMetrics?) {
        self.logger = logger
        self.metrics = metrics
    }

    /// `reason` is a short label for the metric; `detail` what the log line says.
    func refused(port: String, source: String, reason: String, detail: String, at now: Date = Date(), level: Logger.Level = .notice) {
        metrics?.connectionRefused(port: port, reason: reason)
        let (log, suppressed) = state.withLockedValue { state -> (Bool, Int) in
            var key = "\(port) \(source) \(reason)"
            if state[key] == nil, state.count >= Self.maximumSources {
                state = state.filter { now.timeIntervalSince($0.value.loggedAt) < Self.interval }
                if state.count >= Self.maximumSources { key = "\(port) other sources \(reason)" }
            }
            guard let last = state[key], now.timeIntervalSince(last.loggedAt) < Self.interval else {
                let suppressed = state[key]?.suppressed ?? 0
                state[key] = (now, 0)
                return (true, suppressed)
            }
            state[key]!.suppressed += 1
            return (false, 0)
        }
        guard log else { return }
        let more = suppressed > 0 ? " (and \(suppressed) more from this address in the last minute)" : ""
        logger.log(level: level, "\(port) port: \(source) refused: \(detail)\(more)", metadata: ["source": "\(source)", "port": "\(port)"])
    }
}
