import DequeModule
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The queue of password checks (scrypt, ~56 ms of a core each): bounded in all and per
/// source, run on the hashing threads one per thread, sources taking turns (a newcomer waits
/// for one check, not for a flood's queue), and a check whose connection has gone is dropped
/// unrun. Unbounded and first come first served, 1,500 logins from one stranger in 2.5 s
/// queued 23 s of scrypt on both cores, and a legitimate first login waited behind them until
/// its client gave up.
final class PasswordChecks: Sendable {
    /// The check was dropped: its connection closed before its turn came.
    struct Dropped: Error {}

    private struct Job {
        var source: String
        var wanted: @Sendable () -> Bool
        var work: @Sendable () -> Bool
        var promise: EventLoopPromise<Bool>
    }

    let pool: NIOThreadPool
    let threads: Int
    let limit: Int
    let perSource: Int
    private struct State {
        var running = 0
        var waitingCount = 0
        var waiting: [String: Deque<Job>] = [:]
        /// Sources with waiting checks, in turn order.
        var turns = Deque<String>()
        var perSource: [String: Int] = [:]
    }

    private let state = NIOLockedValueBox(State())

    init(pool: NIOThreadPool, threads: Int, limit: Int, perSource: Int) {
        self.pool = pool
        self.threads = max(1, threads)
        self.limit = max(1, limit)
        self.perSource = max(1, perSource)
    }

    /// The check's outcome, or nil when the queue (in all, or for this source) is full.
    /// `wanted` is asked just before the check runs: false drops it (`Dropped`).
    func submit(
        source: String, on loop: EventLoop, wanted: @escaping @Sendable () -> Bool, work: @escaping @Sendable () -> Bool
    ) -> EventLoopFuture<Bool>? {
        let promise = loop.makePromise(of: Bool.self)
        let job = Job(source: source, wanted: wanted, work: work, promise: promise)
        let (accepted, start) = state.withLockedValue { state -> (Bool, Job?) in
            let mine = state.perSource[source, default: 0]
            guard state.running + state.waitingCount < limit, mine < perSource else { return (false, nil) }
            state.perSource[source] = mine + 1
            if state.running < threads {
                state.running += 1
                return (true, job)
            }
            if state.waiting[source] == nil { state.turns.append(source) }
            state.waiting[source, default: []].append(job)
            state.waitingCount += 1
            return (true, nil)
        }
        guard accepted else {
            promise.succeed(false)  // never handed out: completed so NIO does not report it leaked
            return nil
        }
        if let start { run(start) }
        return promise.futureResult
    }

    var counts: (running: Int, waiting: Int) { state.withLockedValue { ($0.running, $0.waitingCount) } }

    private func run(_ job: Job) {
        guard job.wanted() else {
            job.promise.fail(Dropped())
            finished(job)
            return
        }
        pool.submit { state in
            if state == .active {
                job.promise.succeed(job.work())
            } else {
                job.promise.fail(Dropped())
            }
            self.finished(job)
        }
    }

    /// A job ended (run or dropped): its place is free, and the next waiting one starts.
    private func finished(_ job: Job) {
        let next = state.withLockedValue { state -> Job? in
            let left = state.perSource[job.source, default: 1] - 1
            state.perSource[job.source] = left > 0 ? left : nil
            // The next source in turn gives its oldest check; it goes to the back of the turns.
            if let source = state.turns.popFirst(), var line = state.waiting[source], let next = line.popFirst() {
                state.waitingCount -= 1
                state.waiting[source] = line.isEmpty ? nil : line
                if !line.isEmpty { state.turns.append(source) }
                return next
            }
            state.running -= 1
            return nil
        }
        if let next { run(next) }
    }
}
