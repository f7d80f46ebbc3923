import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One `vcom-client-sim` process with `--json`: its progress and summary objects, read from a
/// file it writes. Killed (by pid) when it ends or when the test fails.
final class SimProcess: @unchecked Sendable {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vcom-client-sim")
    let process = Process()
    let output: URL

    init(arguments: [String]) throws {
        output = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-sim-\(UUID().uuidString.prefix(8)).jsonl")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        process.executableURL = Self.binary
        process.arguments = arguments + ["--json"]
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Every JSON object printed so far.
    var objects: [[String: Any]] {
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    var lastProgress: [String: Any]? { objects.last { $0["type"] as? String == "progress" } }
    var summary: [String: Any]? { objects.last { $0["type"] as? String == "summary" } }

    /// Clients logged in to `server` ("host:port") at the last progress report.
    func loggedIn(to server: String) -> Int { (lastProgress?["on"] as? [String: Any])?[server] as? Int ?? 0 }

    func signal(_ number: Int32) { if process.isRunning { kill(process.processIdentifier, number) } }

    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: output)
    }
}

/// A figure of the summary: `summary["relogin"]["p50_ms"]`, say.
func figure(_ summary: [String: Any]?, _ group: String, _ key: String) -> Double? {
    ((summary?[group] as? [String: Any])?[key] as? NSNumber)?.doubleValue
}
