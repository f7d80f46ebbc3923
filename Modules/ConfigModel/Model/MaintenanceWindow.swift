/// Maintenance mode as the configuration holds it: the setting `pair.maintenance`, written on
/// the active server by `vcom-admin maintenance on` and replicated, so both servers pause (and
/// a restarted one resumes the pause). Times are wall-clock milliseconds: the two hosts share
/// no monotonic clock, so an end time is as exact as their clocks agree.
public struct MaintenanceWindow: Equatable, Sendable {
    public static let settingKey = "pair.maintenance"

    public var reason: String
    /// The administrator who turned it on.
    public var by: String
    public var sinceMs: UInt64
    /// When it ends by itself (nil: when turned off).
    public var endsAt: UInt64?

    public init(reason: String, by: String, sinceMs: UInt64, endsAt: UInt64?) {
        self.reason = reason
        self.by = by
        self.sinceMs = sinceMs
        self.endsAt = endsAt
    }

    /// Whether it is still on at `nowMs`.
    public func isOn(atMs nowMs: UInt64) -> Bool { endsAt.map { nowMs < $0 } ?? true }

    /// `since=MS;ends=MS|never;by=NAME;reason=TEXT` (the reason last: it may hold any character).
    public var settingValue: String {
        "since=\(sinceMs);ends=\(endsAt.map(String.init) ?? "never");by=\(by);reason=\(reason)"
    }

    public init?(settingValue text: String) {
        var fields: [Substring: Substring] = [:]
        var rest = Substring(text)
        for name in ["since", "ends", "by"] {
            guard rest.hasPrefix("\(name)="), let end = rest.firstIndex(of: ";") else { return nil }
            fields[Substring(name)] = rest[rest.index(rest.startIndex, offsetBy: name.count + 1)..<end]
            rest = rest[rest.index(after: end)...]
        }
        guard rest.hasPrefix("reason="), let since = fields["since"].flatMap({ UInt64($0) }), let ends = fields["ends"], let by = fields["by"]
        else { return nil }
        let endsAt = ends == "never" ? nil : UInt64(ends)
        guard ends == "never" || endsAt != nil, !by.contains(";") else { return nil }
        self.init(reason: String(rest.dropFirst("reason=".count)), by: String(by), sinceMs: since, endsAt: endsAt)
    }
}
