import ClientRuntime
import Foundation
import HealthMonitor
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TransportSecurity
import PairModel
import Wire

/// The simulated panels, their traffic and their figures.
final class SimulationRun: @unchecked Sendable {
    struct Settings {
        var servers: [Endpoint]
        var clients: Int
        var talkers: Int
        var userPrefix: String
        /// The first client's number: two simulators can share one set of accounts.
        var firstIndex = 0
        var password: String
        var operatorsPerLine: Int
        var frameBytes: Int
        var heartbeat: Duration
        var tls: ClientTLS?
        /// Clients in their first login attempt at once; the ramp waits for a place.
        var maxStarting = 256
        /// The first this many clients keep a watch of the other server (all, unless the
        /// process's descriptor limit is short: see `DescriptorLimit`).
        var watches = Int.max
    }

    struct Counts: Sendable {
        var loggedIn = 0
        var on: [Endpoint: Int] = [:]
        var inOutage = 0
        var logins = 0
        var refusals = 0
        var started = 0
        /// Launched clients whose first attempt has not ended yet (logged in, refused or lost).
        var starting = 0
        /// Why sessions were lost or refused, by reason (a number is cut off, to group them).
        var reasons: [String: Int] = [:]
    }

    /// One simulated panel. Its meter and media counter are touched on its event loop only.
    final class Panel: @unchecked Sendable {
        let index: Int
        let lineId: UInt32
        let talker: Bool
        let loop: EventLoop
        var connection: ClientConnection!
        var meter: ClientMeter
        var sequence: UInt32 = 0
        /// Counted in `Counts.starting` until its first attempt ends.
        var starting = false
        var attempts = 0

        init(index: Int, lineId: UInt32, talker: Bool, loop: EventLoop, startedAt: MonotonicTime) {
            self.index = index
            self.lineId = lineId
            self.talker = talker
            self.loop = loop
            meter = ClientMeter(startedAt: startedAt)
        }
    }

    let settings: Settings
    let group: MultiThreadedEventLoopGroup
    private(set) var panels: [Panel] = []
    private let counters = NIOLockedValueBox(Counts())
    private let marked = NIOLockedValueBox(false)
    private var talkTasks: [RepeatedTask] = []
    /// One coarse clock per event loop for all its panels (see `ClientTimers`).
    private var timers: [ObjectIdentifier: ClientTimers] = [:]
    private let audio: ByteBuffer

    init(settings: Settings, group: MultiThreadedEventLoopGroup) {
        self.settings = settings
        self.group = group
        audio = ByteBuffer(repeating: 0x55, count: settings.frameBytes)
    }

    static func now() -> MonotonicTime { MonotonicTime(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds)) }

    func counts() -> Counts { counters.withLockedValue { $0 } }
    var isMarked: Bool { marked.withLockedValue { $0 } }

    /// Starts the panels at `ramp` per second; talkers are the first panel of each line, then
    /// the second, and so on, until there are enough.
    /// Returns early when `stopRequested` says so (a signal, or the run's duration over while
    /// the first logins still hold the ramp back).
    func start(ramp: Double, progress: @escaping () -> Void, stopRequested: @escaping () -> Bool) async {
        let lines = (settings.clients + settings.operatorsPerLine - 1) / settings.operatorsPerLine
        var talkerIndexes = Set<Int>()
        var round = 0
        while talkerIndexes.count < settings.talkers {
            for line in 0..<lines where talkerIndexes.count < settings.talkers {
                let index = line * settings.operatorsPerLine + round
                if index < settings.clients { talkerIndexes.insert(index) }
            }
            round += 1
        }
        panels = (0..<settings.clients).map { index in
            Panel(
                index: index, lineId: UInt32((index + settings.firstIndex) / settings.operatorsPerLine + 1), talker: talkerIndexes.contains(index),
                loop: group.next(),
                startedAt: Self.now())
        }
        for loop in group.makeIterator() {
            timers[ObjectIdentifier(loop)] = ClientTimers(eventLoop: loop)
            let mine = panels.filter { $0.talker && $0.loop === loop }
            guard !mine.isEmpty else { continue }
            talkTasks.append(loop.scheduleRepeatedTask(initialDelay: .milliseconds(20), delay: .milliseconds(20)) { _ in self.talk(mine) })
        }
        let batch = max(1, Int(ramp / 100))
        var nextProgress = ContinuousClock.now + .seconds(1)
        func showProgress() {
            // A ramp of thousands of clients lasts tens of seconds: the progress line runs meanwhile.
            guard ContinuousClock.now >= nextProgress else { return }
            progress()
            nextProgress = nextProgress + .seconds(1)
        }
        var start = 0
        while start < panels.count, !stopRequested() {
            // Closed loop as well as a rate: the simulator runs every client's TLS handshake on
            // the same cores as the servers, and started faster than it could finish them (500
            // a second on a slow hour of this machine) its own loops fell behind, heartbeats of
            // the clients already in went unanswered for 3 s and the primary's census handed
            // over before any fault. What a benchmark measured then was the simulator.
            let room = settings.maxStarting - counters.withLockedValue { $0.starting }
            guard room > 0 else {
                try? await Task.sleep(for: .milliseconds(5))
                showProgress()
                continue
            }
            let end = min(start + min(batch, room), panels.count)
            counters.withLockedValue {
                $0.starting += end - start
                $0.started = end
            }
            for panel in panels[start..<end] { launch(panel) }
            start = end
            if start < panels.count { try? await Task.sleep(for: .milliseconds(10)) }
            showProgress()
        }
    }

    private func launch(_ panel: Panel) {
        panel.starting = true
        panel.meter = ClientMeter(startedAt: Self.now())
        panel.connection = ClientConnection(
            servers: settings.servers, username: "\(settings.userPrefix)\(panel.index + settings.firstIndex)", password: settings.password,
            clientInstance: "sim-\(panel.index + settings.firstIndex)", tls: settings.tls,
            configuration: .init(heartbeatInterval: settings.heartbeat, watchOther: panel.index < settings.watches), eventLoop: panel.loop, timers: timers[ObjectIdentifier(panel.loop)],
            onEvent: { [unowned self] event in self.handle(event, panel: panel) })
        // Held from the start: the library sends them with every login, the first included.
        panel.connection.press(KeyChange(action: .listen, target: .partyLine(panel.lineId), pressed: true))
        if panel.talker { panel.connection.press(KeyChange(action: .talk, target: .partyLine(panel.lineId), pressed: true)) }
        panel.connection.start()
    }

    /// On the panel's event loop.
    private func handle(_ event: ClientEvent, panel: Panel) {
        let now = Self.now()
        if case .media = event {
            panel.meter.media(at: now)
            return
        }
        let before = panel.meter
        panel.meter.record(event, at: now)
        let after = panel.meter
        // The first attempt ends in a login, a refusal, a loss, a stop, or (a connection that
        // failed or timed out says nothing else) the next attempt.
        let firstAttemptEnded: Bool
        switch event {
        case .loggedIn, .refused, .lost, .stopped: firstAttemptEnded = panel.starting
        case .connecting:
            firstAttemptEnded = panel.starting && panel.attempts > 0
            panel.attempts += 1
        default: firstAttemptEnded = false
        }
        if firstAttemptEnded { panel.starting = false }
        counters.withLockedValue { counts in
            if firstAttemptEnded { counts.starting -= 1 }
            if let server = before.server, after.server != server {
                counts.on[server, default: 0] -= 1
                counts.loggedIn -= 1
            }
            if let server = after.server, before.server != server {
                counts.on[server, default: 0] += 1
                counts.loggedIn += 1
                counts.logins += 1
            }
            if !before.inOutage && after.inOutage { counts.inOutage += 1 }
            if before.inOutage && !after.inOutage { counts.inOutage -= 1 }
            if after.refusals > before.refusals { counts.refusals += 1 }
            switch event {
            case .lost(_, let reason): counts.reasons["lost: " + Self.grouped(reason), default: 0] += 1
            case .refused(_, let reason, _): counts.reasons["refused: \(reason)", default: 0] += 1
            case .stopped(let reason): counts.reasons["stopped: " + Self.grouped(reason), default: 0] += 1
            default: break
            }
        }

    }

    static func describe(_ phase: ClientConnectionMachine.Phase, at now: MonotonicTime) -> String {
        switch phase {
        case .waiting(let until): "waiting, due \((until - now).formatted(.units(allowed: [.seconds, .milliseconds])))"
        case .connecting: "connecting"
        default: "\(phase)"
        }
    }

    static func grouped(_ reason: String) -> String {
        String(reason.prefix(80))
    }

    /// Every 20 ms: one frame from every talker of this event loop.
    private func talk(_ talkers: [Panel]) {
        for panel in talkers where panel.connection?.isLoggedIn == true {
            panel.sequence &+= 1
            panel.connection.sendOnLoop(
                .media(MediaFrame(streamId: UInt32(panel.index), sequence: panel.sequence, timestamp: panel.sequence &* 960, audio: audio)))
        }
    }

    /// The fault's moment, for every panel.
    func markFault(at time: MonotonicTime) async {
        marked.withLockedValue { $0 = true }
        await forEachLoop { panels in for panel in panels { panel.meter.markFault(at: time) } }
    }

    private func forEachLoop(_ body: @escaping @Sendable ([Panel]) -> Void) async {
        for loop in group.makeIterator() {
            let mine = panels.filter { $0.loop === loop }
            try? await loop.submit { body(mine) }.get()
        }
    }

    func stop() async {
        for task in talkTasks { task.cancel() }
        for panel in panels { panel.connection?.stop() }
        // Each logged-in client's logout is read and its connection closed by the server; a
        // process that exits first resets them (ClientConnection.leaveGrace).
        try? await Task.sleep(for: ClientConnection.leaveGrace + .milliseconds(100))
        for clock in timers.values { clock.cancel() }
    }

    func summary() async -> Summary {
        let meters = NIOLockedValueBox([(Panel, ClientMeter)]())
        let now = Self.now()
        await forEachLoop { panels in
            let copies = panels.map { panel in
                var meter = panel.meter
                // Where a client that never got in is stuck: its connection's phase now.
                if meter.firstLogin == nil, let connection = panel.connection {
                    let state = connection.state
                    meter.stuck = "now \(Self.describe(state.phase, at: now)), next \(state.server.map { "\($0)" } ?? "none")"
                        + (connection.lastConnectFailure.map { "; last connect failure: \($0)" } ?? "")
                }
                return (panel, meter)
            }
            meters.withLockedValue { $0 += copies }
        }
        let end = Self.now()
        let loops = Array(group.makeIterator())
        let talkingLines = Set(panels.filter(\.talker).map(\.lineId))
        var summary = Summary(meters: meters.withLockedValue { $0.map { ($0.0.talker, $0.0.lineId, $0.1) } }, talkingLines: talkingLines, end: end)
        summary.perClient = meters.withLockedValue { entries in
            entries.sorted { $0.0.index < $1.0.index }.map { panel, meter in
                ClientRow(
                    client: panel.index + settings.firstIndex, loop: loops.firstIndex { $0 === panel.loop } ?? -1, talker: panel.talker,
                    watch: panel.index < settings.watches, meter: meter, mediaGapCounted: talkingLines.contains(panel.lineId), end: end)
            }
        }
        return summary
    }
}

/// The run's figures.
struct Summary {
    struct Figures: Equatable {
        var count: Int
        var p50: Double
        var p90: Double
        var p99: Double
        var max: Double

        init(_ milliseconds: [Double]) {
            count = milliseconds.count
            var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
            for value in milliseconds { _ = histogram.record(UInt64(Swift.max(0, value * 1000))) }  // microseconds
            let empty = milliseconds.isEmpty
            let recorded = histogram
            func at(_ percentile: Double) -> Double { empty ? 0 : Double(recorded.valueAtPercentile(percentile)) / 1000 }
            p50 = at(50)
            p90 = at(90)
            p99 = at(99)
            max = empty ? 0 : Double(recorded.max) / 1000
        }

        var json: [String: Any] { ["count": count, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max] }
    }

    /// The figures a benchmark compares run to run, as `key=value` pairs.
    var keyValues: String {
        func ms(_ value: Double) -> String { String(format: "%.0f", value) }
        return "clients=\(clients) relogin_p50_ms=\(ms(relogin.p50)) relogin_p99_ms=\(ms(relogin.p99)) relogin_max_ms=\(ms(relogin.max)) "
            + "media_gap_p99_ms=\(ms(mediaGap.p99)) never_back=\(max(neverBack, notLoggedInAtEnd))"
    }

    var clients: Int
    var everLoggedIn: Int
    var notLoggedInAtEnd: Int
    var neverBack: Int
    var marked: Bool
    var login: Figures
    var outages: Figures
    var relogin: Figures
    var lossNoticed: Figures
    var mediaGap: Figures
    var onAtEnd: [String: Int]
    var refusals: Int
    /// One row per client, in client order (`--per-client`).
    var perClient: [ClientRow] = []
    /// Clients that never logged in, by the last thing that happened to them.
    var neverLoggedIn: [String: Int] = [:]

    init(meters: [(talker: Bool, line: UInt32, meter: ClientMeter)], talkingLines: Set<UInt32>, end: MonotonicTime) {
        clients = meters.count
        everLoggedIn = meters.filter { $0.meter.firstLogin != nil }.count
        for entry in meters where entry.meter.firstLogin == nil { neverLoggedIn["never logged in, last: \(entry.meter.lastDescription)\(entry.meter.stuck.map { " (\($0))" } ?? "")", default: 0] += 1 }
        notLoggedInAtEnd = meters.filter { !$0.meter.isLoggedIn }.count
        neverBack = meters.filter { $0.meter.neverBack }.count
        marked = meters.contains { $0.meter.mark != nil }
        login = Figures(meters.compactMap { $0.meter.firstLogin.map(Self.ms) })
        outages = Figures(meters.flatMap { $0.meter.outages.map { Self.ms($0.end - $0.start) } })
        relogin = Figures(meters.compactMap { $0.meter.backAfterMark.map(Self.ms) })
        lossNoticed = Figures(meters.compactMap { $0.meter.lossNoticedAfterMark.map(Self.ms) })
        // Listeners on a line whose talker kept talking: the longest silence after the fault.
        mediaGap = Figures(
            meters.compactMap { entry in
                guard talkingLines.contains(entry.line) else { return nil }
                return entry.meter.mediaGap(until: end).map(Self.ms)
            })
        var on: [String: Int] = [:]
        for entry in meters { if let server = entry.meter.server { on[server.description, default: 0] += 1 } }
        onAtEnd = on
        refusals = meters.map(\.meter.refusals).reduce(0, +)
    }

    static func ms(_ duration: Duration) -> Double { Double(duration.nanoseconds) / 1_000_000 }
}

/// One client's figures, for a look at the distribution behind the percentiles: which event
/// loop a slow client was on, when it noticed its loss against when it was back.
struct ClientRow {
    static let header = "client,loop,talker,watch,first_login_ms,loss_noticed_ms,back_ms,media_gap_ms,on_at_end"
    var client: Int
    var loop: Int
    var talker: Bool
    var watch: Bool
    var firstLogin: Double?
    var lossNoticed: Double?
    var back: Double?
    var mediaGap: Double?
    var onAtEnd: String?

    init(client: Int, loop: Int, talker: Bool, watch: Bool, meter: ClientMeter, mediaGapCounted: Bool, end: MonotonicTime) {
        self.client = client
        self.loop = loop
        self.talker = talker
        self.watch = watch
        firstLogin = meter.firstLogin.map(Summary.ms)
        lossNoticed = meter.lossNoticedAfterMark.map(Summary.ms)
        back = meter.backAfterMark.map(Summary.ms)
        mediaGap = mediaGapCounted ? meter.mediaGap(until: end).map(Summary.ms) : nil
        onAtEnd = meter.server?.description
    }

    /// Milliseconds to the microsecond; an empty field where the client has no such figure.
    var csv: String {
        func ms(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? "" }
        return "\(client),\(loop),\(talker ? 1 : 0),\(watch ? 1 : 0),\(ms(firstLogin)),\(ms(lossNoticed)),\(ms(back)),\(ms(mediaGap)),\(onAtEnd ?? "")"
    }
}
