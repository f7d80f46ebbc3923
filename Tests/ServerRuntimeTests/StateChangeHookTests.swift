import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import ServerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// hooks.on-state-change (issue 26, 5): run directly with the change in its environment, one at
/// a time and in order; one that hangs is killed at its timeout and the next ones still run.
@Suite struct StateChangeHookTests {
    @Test func aHangingHookIsKilledAndTheNextChangesRunInOrder() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hooks-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("runs")
        let program = directory.appendingPathComponent("hook")
        // A reason with shell syntax in it: never interpreted (the program is run directly).
        try Data(
            """
            #!/bin/sh
            echo "$VCOM_EPOCH $VCOM_STATE $VCOM_ROLE [$VCOM_REASON]" >> \(log.path)
            [ "$VCOM_EPOCH" = 1 ] && exec sleep 60
            exit 0

            """.utf8
        ).write(to: program)
        chmod(program.path, 0o755)
        let outcomes = NIOLockedValueBox<[StateChangeHooks.Outcome]>([])
        let hooks = StateChangeHooks(hook: .init(program: program.path, timeout: .seconds(1)), logger: Logger(label: "test")) { outcome in
            outcomes.withLockedValue { $0.append(outcome) }
        }
        defer { hooks.stop() }
        for epoch in UInt64(1)...3 {
            hooks.notify(StateChange(state: "active", role: "secondary", epoch: epoch, incident: "S\(epoch)-1", reason: "$(touch \(directory.path)/pwned)", serverId: "s"))
        }
        #expect(await eventually(.seconds(10)) { outcomes.withLockedValue { $0.count } == 3 })
        #expect(outcomes.withLockedValue { $0 } == [.timedOut, .succeeded, .succeeded])
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.map { $0.prefix(1) } == ["1", "2", "3"], "\(lines)")
        #expect(lines[1] == "2 active secondary [$(touch \(directory.path)/pwned)]")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("pwned").path))
    }

    @Test func aProgramThatCannotStartIsReported() async throws {
        let outcomes = NIOLockedValueBox<[StateChangeHooks.Outcome]>([])
        let hooks = StateChangeHooks(hook: .init(program: "/nonexistent/hook", timeout: .seconds(1)), logger: Logger(label: "test")) { outcome in
            outcomes.withLockedValue { $0.append(outcome) }
        }
        defer { hooks.stop() }
        hooks.notify(StateChange(state: "standby", role: "primary", epoch: 0, incident: nil, reason: "start", serverId: "p"))
        #expect(await eventually(.seconds(5)) { outcomes.withLockedValue { $0.count } == 1 })
        if case .couldNotStart = outcomes.withLockedValue({ $0.first }) {} else { Issue.record("\(outcomes.withLockedValue { $0 })") }
    }
}
