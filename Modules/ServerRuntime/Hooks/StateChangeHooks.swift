import Foundation
import Logging
import NIOConcurrencyHelpers
import PairModel

#if canImport(Glibc)
import Glibc
#endif

/// A change of serving state, as a hook's environment gives it.
struct StateChange: Sendable, Equatable {
    var state: String
    var role: String
    var epoch: UInt64
    var incident: String?
    var reason: String
    var serverId: String

    var environment: [String: String] {
        [
            "VCOM_STATE": state, "VCOM_ROLE": role, "VCOM_EPOCH": String(epoch), "VCOM_INCIDENT": incident ?? "", "VCOM_REASON": reason,
            "VCOM_SERVER_ID": serverId,
        ]
    }
}

/// `hooks.on-state-change`, as keepalived's `notify_master`: the program runs on every change of
/// serving state, directly (never through a shell, so nothing in a reason is ever interpreted),
/// one at a time and in order, on a thread of its own: the control loop only appends to a
/// queue, so a hook that hangs delays no decision. A hook still running at its timeout gets
/// SIGTERM, then SIGKILL 2 s later; a failure is logged; its output joins the server's standard error.
///
/// The queue holds 64 changes; a hook slower than the pair's changes loses the oldest waiting
/// ones (counted and logged), never the latest, which is the state the program must end up with.
final class StateChangeHooks: Sendable {
    static let queueLimit = 64
    let hook: ServerSettings.StateChangeHook
    let logger: Logger
    private let queue = NIOLockedValueBox(Queue())
    private let wake = DispatchSemaphore(value: 0)
    /// Called after each run with its outcome (metrics; tests).
    let finished: @Sendable (Outcome) -> Void

    enum Outcome: Sendable, Equatable {
        case succeeded
        case failed(status: Int32)
        case timedOut
        case couldNotStart(String)
    }

    private struct Queue {
        var waiting: [StateChange] = []
        var dropped = 0
        var stopped = false
    }

    init(hook: ServerSettings.StateChangeHook, logger: Logger, finished: @escaping @Sendable (Outcome) -> Void = { _ in }) {
        self.hook = hook
        self.logger = logger
        self.finished = finished
        let thread = Thread { [self] in runLoop() }
        thread.name = "vcom-hooks"
        thread.start()
    }

    /// Queues a run for `change` (from the control loop: never blocks).
    func notify(_ change: StateChange) {
        queue.withLockedValue { queue in
            if queue.waiting.count >= Self.queueLimit {
                queue.waiting.removeFirst()
                queue.dropped += 1
            }
            queue.waiting.append(change)
        }
        wake.signal()
    }

    /// Ends the thread once the queue is empty (the run in progress completes or times out).
    func stop() {
        queue.withLockedValue { $0.stopped = true }
        wake.signal()
    }

    private func runLoop() {
        while true {
            wake.wait()
            while let (change, dropped, stopped) = next() {
                if dropped > 0 { logger.warning("hooks.on-state-change: \(dropped) older state changes were not run: the hook is slower than the pair's changes") }
                if let change { finished(run(change)) }
                if stopped, change == nil { return }
            }
        }
    }

    private func next() -> (StateChange?, Int, Bool)? {
        queue.withLockedValue { queue in
            let dropped = queue.dropped
            queue.dropped = 0
            if queue.waiting.isEmpty { return queue.stopped ? (nil, dropped, true) : nil }
            return (queue.waiting.removeFirst(), dropped, queue.stopped)
        }
    }

    /// One run of the program, to its end or its timeout.
    func run(_ change: StateChange) -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: hook.program)
        process.arguments = []
        process.environment = ProcessInfo.processInfo.environment.merging(change.environment) { _, new in new }
        process.standardInput = FileHandle.nullDevice
        // Its output joins the server's log stream (journald keeps both); not captured, so a
        // hook that leaves a child holding the pipe costs nothing here.
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError
        let started = ContinuousClock.now
        do {
            try process.run()
        } catch {
            logger.error("hooks.on-state-change: \(hook.program) could not start: \(error)")
            return .couldNotStart("\(error)")
        }
        let deadline = started + hook.timeout
        var outcome: Outcome?
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                process.terminate()
                let killAt = ContinuousClock.now + .seconds(2)
                while process.isRunning, ContinuousClock.now < killAt { Thread.sleep(forTimeInterval: 0.02) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                outcome = .timedOut
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        process.waitUntilExit()
        let elapsed = ContinuousClock.now - started
        let context = "\(change.state), epoch \(change.epoch)"
        if outcome == .timedOut {
            logger.error("hooks.on-state-change: \(hook.program) (\(context)) still running after \(hook.timeout): killed")
            return .timedOut
        }
        if process.terminationStatus != 0 || process.terminationReason != .exit {
            logger.warning("hooks.on-state-change: \(hook.program) (\(context)) failed with status \(process.terminationStatus) after \(elapsed.milliseconds) ms")
            return .failed(status: process.terminationStatus)
        }
        logger.info("hooks.on-state-change: \(hook.program) (\(context)) done in \(elapsed.milliseconds) ms")
        return .succeeded
    }
}

extension ServerState {
    /// The state's name in a hook's VCOM_STATE and in /health bodies: one word each.
    var hookName: String {
        switch self {
        case .standby: "standby"
        case .active: "active"
        case .awaitingAuthorization: "awaiting_authorization"
        }
    }
}
