import ArgumentParser
import ClientRuntime
import Dispatch
import Foundation
import HealthMonitor
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TransportSecurity
import PairModel
import Wire

@main
struct VcomClientSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcom-client-sim",
        abstract: "Simulates VCOM client panels: they log in, listen and talk, and fail over; it measures what a failover costs.",
        discussion: """
            N clients (op0, op1, ... with one password: the accounts of `vcom-server bootstrap \
            --demo-operators`) run in this process through the client library. Each listens on \
            its party line (client n is on line n / --operators-per-line, party line id \
            n / --operators-per-line + 1, as the bootstrap numbers them); --talkers of them, one \
            per line first, send 50 media frames a second of --frame-bytes each.

            It measures each client's first login, every outage (losing its session to logged in \
            again, and on which server) and, after a fault is marked (SIGUSR1, or --mark-after), \
            how long each client took to be back and the longest media silence a listener heard \
            while its line's talker kept talking. Figures are p50, p90, p99 and max \
            (hdrhistogram), with the clients that never came back.

            Output: a progress line every second (live on a terminal), then a summary (--json \
            for a machine). Exit codes: 0 done; 1 some clients never came back, or none could \
            log in; 64 bad arguments.
            """)

    @Option(help: "Server addresses, host:port, comma-separated (the first is where clients start).") var servers: String
    @Option(help: "How many clients.") var clients: Int = 100
    @Option(help: "How many of them talk (one per party line first).") var talkers: Int = 10
    @Option(help: "Seconds to run; 0 runs until SIGINT or SIGTERM.") var duration: Double = 30
    @Option(help: "Username prefix: clients are PREFIX0, PREFIX1, ...") var userPrefix: String = "op"
    @Option(help: "The first client's number (PREFIX<first-index>, ...): simulators can share the accounts.") var firstIndex: Int = 0
    @Option(help: "The clients' password (the bootstrap's --demo-password).") var password: String = "vcom-demo"
    @Option(help: "Clients per party line, as bootstrapped.") var operatorsPerLine: Int = 20
    @Option(help: "Bytes of audio per media frame (20 ms of Opus at 32 kbit/s is about 80).") var frameBytes: Int = 80
    @Option(help: "New clients per second while starting.") var ramp: Double = 2_000
    @Option(help: "At most this many clients in their first login attempt at once: the ramp waits for a place (the simulator's own handshakes must not starve the clients already in).")
    var maxStarting: Int = 256
    @Option(help: "Event loop threads (default: the number of cores).") var threads: Int = System.coreCount
    @Option(help: "Client heartbeat interval, ms.") var heartbeatMs: Int = 1_000
    @Option(help: "Mark the fault this many seconds after every client logged in (instead of SIGUSR1).") var markAfter: Double?
    @Option(help: "After the mark, stop as soon as every client is logged in to this host:port.") var untilAllOn: String?
    @Option(help: "The pair's CA certificate (ca.pem from vcom-admin pki init): the clients verify the servers with it.")
    var ca: String?
    @Flag(help: "Speak in clear, to servers whose client port has TLS switched off (tls.clients = false or --plaintext).")
    var plaintext = false
    @Flag(help: "Print JSON: a progress object per second and the summary.") var json = false
    @Option(help: ArgumentHelp("At the end, write one CSV row per client to FILE: its event loop, first login, and after the fault when it noticed its loss, when it was back, its media gap.", valueName: "FILE"))
    var perClient: String?
    @Option(help: "End with one line 'LABEL clients=N relogin_p50_ms=... never_back=N' (what make bench-failover prints).")
    var figuresLine: String?

    mutating func validate() throws {
        guard (1...200_000).contains(clients) else { throw ValidationError("--clients must be 1 to 200000") }
        guard (0...clients).contains(talkers) else { throw ValidationError("--talkers must be 0 to --clients") }
        guard (1...1_000).contains(operatorsPerLine) else { throw ValidationError("--operators-per-line must be 1 to 1000") }
        guard (1...1_200).contains(frameBytes) else { throw ValidationError("--frame-bytes must be 1 to 1200") }
        guard duration >= 0, ramp > 0 else { throw ValidationError("--duration must be ≥ 0 and --ramp > 0") }
        guard (1...200_000).contains(maxStarting) else { throw ValidationError("--max-starting must be 1 to 200000") }
        guard firstIndex >= 0 else { throw ValidationError("--first-index must be ≥ 0") }
        guard parsedServers() != nil else { throw ValidationError("--servers '\(servers)' must be host:port[,host:port]") }
        if let untilAllOn, Endpoint(parsing: untilAllOn) == nil { throw ValidationError("--until-all-on '\(untilAllOn)' must be host:port") }
        // Found out now, not after a long run: the file is written at the end.
        if let perClient, !FileManager.default.createFile(atPath: perClient, contents: nil) {
            throw ValidationError("--per-client: cannot create \(perClient)")
        }
        guard plaintext != (ca != nil) else {
            throw ValidationError("give --ca with the pair's CA certificate (client ports speak TLS by default), or --plaintext for servers without it")
        }
    }

    func parsedServers() -> [Endpoint]? {
        let list = servers.split(separator: ",").map { Endpoint(parsing: String($0)) }
        guard !list.isEmpty, list.count <= 2, list.allSatisfy({ $0 != nil }) else { return nil }
        return list.compactMap { $0 }
    }

    func run() async throws {
        let watches = DescriptorLimit.watches(forClients: clients)
        let endpoints = parsedServers()!
        let tls: ClientTLS?
        do {
            tls = try ca.map { try ClientTLS(trust: .authority(file: $0)) }
        } catch {
            throw ValidationError("--ca: \(error)")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        let run = SimulationRun(
            settings: .init(
                servers: endpoints, clients: clients, talkers: talkers, userPrefix: userPrefix, firstIndex: firstIndex, password: password,
                operatorsPerLine: operatorsPerLine, frameBytes: frameBytes, heartbeat: .milliseconds(heartbeatMs), tls: tls,
                maxStarting: maxStarting, watches: watches),
            group: group)
        let output = Output(json: json, live: isatty(STDOUT_FILENO) == 1 && !json)
        let signals = SignalWatcher { time in Task { await run.markFault(at: time) } }
        let started = ContinuousClock.now
        let duration = duration
        await run.start(ramp: ramp) {
            output.progress(run.counts(), at: ContinuousClock.now - started)
        } stopRequested: {
            signals.stopRequested || (duration > 0 && ContinuousClock.now - started >= .milliseconds(Int64(duration * 1000)))
        }

        var everyoneOnce = false
        var markDue: ContinuousClock.Instant?
        let target = untilAllOn.flatMap(Endpoint.init(parsing:))
        while true {
            try? await Task.sleep(for: .seconds(1))
            let counts = run.counts()
            output.progress(counts, at: ContinuousClock.now - started)
            if !everyoneOnce, counts.loggedIn == clients {
                everyoneOnce = true
                if let markAfter { markDue = ContinuousClock.now + .milliseconds(Int64(markAfter * 1000)) }
            }
            if let due = markDue, ContinuousClock.now >= due {
                markDue = nil
                await run.markFault(at: SimulationRun.now())
                output.note("fault marked at \(ContinuousClock.now - started)")
            }
            if signals.takeMark() != nil { output.note("fault marked (SIGUSR1)") }
            if let target, run.isMarked, counts.on[target] == clients {
                // A listener's media gap closes with its first frame after the re-login, up to
                // a loop turn after the login itself: a second more lets every gap close
                // (frames come every 20 ms) before the figures are taken.
                try? await Task.sleep(for: .seconds(1))
                break
            }
            if signals.stopRequested { break }
            if duration > 0, ContinuousClock.now - started >= .milliseconds(Int64(duration * 1000)) { break }
        }
        let summary = await run.summary()
        await run.stop()
        try? await group.shutdownGracefully()
        output.summary(summary)
        var unwritten = false
        if let perClient {
            let text = ([ClientRow.header] + summary.perClient.map(\.csv)).joined(separator: "\n") + "\n"
            do {
                try text.write(toFile: perClient, atomically: true, encoding: .utf8)
            } catch {
                output.note("cannot write --per-client \(perClient): \(error.localizedDescription)")
                unwritten = true
            }
        }
        output.reasons(run.counts().reasons.merging(summary.neverLoggedIn) { $0 + $1 })
        if let figuresLine { print("\(figuresLine) \(summary.keyValues)") }
        if summary.everLoggedIn == 0 {
            output.note("nobody could log in: check --servers, the accounts (--user-prefix, --password) and that a server is active")
            throw ExitCode(1)
        }
        if summary.neverBack > 0 || summary.notLoggedInAtEnd > 0 {
            output.note("\(max(summary.neverBack, summary.notLoggedInAtEnd)) clients were not logged in at the end")
            throw ExitCode(1)
        }
        if unwritten { throw ExitCode(1) }
    }
}

/// SIGUSR1 marks the fault (at the moment the signal arrives); SIGINT and SIGTERM end the run
/// (with its summary).
final class SignalWatcher: @unchecked Sendable {
    private let lock = NSLock()
    private var marks: [MonotonicTime] = []
    private var stop = false
    private var sources: [DispatchSourceSignal] = []
    private let onMark: @Sendable (MonotonicTime) -> Void

    init(onMark: @escaping @Sendable (MonotonicTime) -> Void) {
        self.onMark = onMark
        for (signal, handler) in [(SIGUSR1, { self.note(mark: true) }), (SIGINT, { self.note(mark: false) }), (SIGTERM, { self.note(mark: false) })] {
            Foundation.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler(handler: handler)
            source.resume()
            sources.append(source)
        }
    }

    private func note(mark: Bool) {
        let now = SimulationRun.now()
        if mark { onMark(now) }
        lock.lock()
        if mark { marks.append(now) } else { stop = true }
        lock.unlock()
    }

    func takeMark() -> MonotonicTime? {
        lock.lock()
        defer { lock.unlock() }
        return marks.isEmpty ? nil : marks.removeFirst()
    }

    var stopRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stop
    }
}

/// Every client keeps two connections (its session, and its watch of the other server) in this
/// one process. Below 2 x clients descriptors the last clients' connects failed with EMFILE and
/// they never logged in (3 of 10,000 at this machine's hard limit of 20,000, which root cannot
/// raise here). So the soft limit is raised as far as needed and allowed, and when the watches
/// still do not fit, the last clients run without one, said on standard error: a session for
/// every client matters more than a watch for every client.
enum DescriptorLimit {
    /// How many clients (the first ones) keep a watch.
    static func watches(forClients clients: Int) -> Int {
        let reserve = 64  // event loops (3 each), standard streams, connections being replaced
        var limit = rlimit()
        guard getrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return clients }
        let needed = rlim_t(2 * clients + reserve)
        if limit.rlim_cur < needed {
            limit.rlim_cur = min(needed, limit.rlim_max)
            _ = setrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit)
        }
        let available = Int(min(limit.rlim_cur, rlim_t(Int.max)))
        let watches = max(0, min(clients, available - clients - reserve))
        if watches < clients {
            FileHandle.standardError.write(
                Data("vcom-client-sim: \(clients) clients need \(needed) file descriptors (a session and a watch each) and the limit is \(available): the last \(clients - watches) clients run without a watch\n".utf8))
        }
        return watches
    }
}
