import ClientRuntime
import HealthMonitor
import PairModel
import Wire

/// What one simulated panel measures, fed its connection's events and media with the time:
/// how long its first login took, every outage (from losing its session to logged in again,
/// and where), and, once a fault is marked, how long after it the panel was back and the
/// longest silence on its party line while a talker kept talking.
struct ClientMeter: Sendable {
    struct Outage: Equatable, Sendable {
        var start: MonotonicTime
        var end: MonotonicTime
        var server: Endpoint
    }

    let startedAt: MonotonicTime
    var firstLogin: Duration?
    var server: Endpoint?
    var outageStart: MonotonicTime?
    var outages: [Outage] = []
    var refusals = 0
    var stopped: String?

    /// The fault's moment, once marked, and whether the panel was logged in then.
    var mark: MonotonicTime?
    var loggedInAtMark = false
    /// From the mark to logged in again, for a panel that lost its session after the mark.
    var backAfterMark: Duration?
    var lostAfterMark = false
    /// Media: the last frame heard, and the silences longer than a few frames (kept with
    /// their times, since the mark may be applied after them).
    var firstMedia: MonotonicTime?
    var lastMedia: MonotonicTime?
    var heardBeforeMark = false
    var gaps: [(from: MonotonicTime, to: MonotonicTime)] = []

    init(startedAt: MonotonicTime) {
        self.startedAt = startedAt
    }

    var isLoggedIn: Bool { server != nil }
    var inOutage: Bool { outageStart != nil }

    /// The last thing that happened to this client (not media), kept as it came: it is only
    /// written out for a client that never got in (`lastDescription`), not formatted per event.
    var lastEvent: ClientEvent?
    /// Where a client that never got in is stuck, filled in when the summary is taken.
    var stuck: String?

    var lastDescription: String {
        switch lastEvent {
        case nil: "not started"
        case .connecting(let to): "connecting to \(to)"
        case .refused(let by, let reason, _): "refused by \(by): \(reason)"
        case .lost(let at, let reason): "lost on \(at): \(reason.prefix(60))"
        case .redirected(let from, let to, _): "redirected from \(from) to \(to)"
        case .stopped(let reason): "stopped: \(reason.prefix(60))"
        case .loggedIn(let at, _, _, _): "logged in to \(at)"
        case .media: "media"
        }
    }

    mutating func record(_ event: ClientEvent, at now: MonotonicTime) {
        if case .media = event {} else { lastEvent = event }
        switch event {
        case .loggedIn(let at, _, _, _):
            server = at
            if firstLogin == nil { firstLogin = now - startedAt }
            if let start = outageStart {
                outages.append(Outage(start: start, end: now, server: at))
                outageStart = nil
                if let mark, lostAfterMark, backAfterMark == nil { backAfterMark = now - mark }
            }
        case .lost, .redirected:
            if server != nil, outageStart == nil { outageStart = now }
            if let mark, now >= mark, server != nil { lostAfterMark = true }
            server = nil
        case .refused:
            refusals += 1
        case .stopped(let reason):
            stopped = reason
            server = nil
        case .connecting, .media:
            break
        }
    }

    mutating func media(at now: MonotonicTime) {
        if let last = lastMedia, now - last > .milliseconds(60) {
            gaps.append((last, now))
            if gaps.count > 64 { gaps.removeFirst() }
        }
        if firstMedia == nil { firstMedia = now }
        lastMedia = now
    }

    /// The longest silence that ends after the mark, counting one still going on at `end`,
    /// for a listener that was hearing its line when the fault came.
    func mediaGap(until end: MonotonicTime) -> Duration? {
        guard let mark, heardBeforeMark, let last = lastMedia else { return nil }
        var longest = end - last
        for gap in gaps where gap.to > mark { longest = max(longest, gap.to - gap.from) }
        return longest
    }

    /// Marks the fault at `time`, which may be a little in the past (the mark reaches each
    /// client's event loop after the fault): what happened since is read from the record.
    mutating func markFault(at time: MonotonicTime) {
        mark = time
        let covering = outages.first { $0.start < time && $0.end > time }
        let startedOutside = firstLogin.map { startedAt + $0 <= time } ?? false
        loggedInAtMark = startedOutside && covering == nil && !(outageStart.map { $0 < time } ?? false)
        if let after = outages.first(where: { $0.start >= time }) {
            lostAfterMark = true
            backAfterMark = after.end - time
        } else if let start = outageStart, start >= time {
            lostAfterMark = true
        }
        // Hearing the line when the fault came: a frame before it, and either frames after it
        // (through it, or a silence that spans it) or the last one shortly before it. The mark
        // reaches each event loop some milliseconds after `time`: frames heard meanwhile were
        // taken for "nothing before the fault", and those listeners' gaps went uncounted.
        let heardBefore = firstMedia.map { $0 <= time } ?? false
        let lastFrame = lastMedia ?? time
        heardBeforeMark = heardBefore && (lastFrame > time || time - lastFrame < .milliseconds(200))
    }

    /// From the mark to this panel noticing it had lost its server (its first outage after
    /// the mark): what detection costs, apart from the way back.
    var lossNoticedAfterMark: Duration? {
        guard let mark else { return nil }
        if let outage = outages.first(where: { $0.start >= mark }) { return outage.start - mark }
        return outageStart.flatMap { $0 >= mark ? $0 - mark : nil }
    }

    /// Logged in at the fault and not logged in at the end.
    var neverBack: Bool { loggedInAtMark && server == nil }
}
