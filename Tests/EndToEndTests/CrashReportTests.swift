import Foundation
import Testing

/// A crashed server lets go of its sockets at once (Apps/vcom-server/FastCrash.swift): it runs
/// with the backtracer's symbolication off unless the operator chose otherwise.
@Suite struct CrashReportTests {
    @Test func aServerRunsWithAFastCrashReport() async throws {
        let pair = try TestPair()
        pair.tls = false
        defer { pair.stop() }
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = nil
        let server = try ServerProcess(
            role: .secondary, files: pair.files, arguments: pair.arguments(.secondary), name: "fast", environment: environment)
        pair.secondary = server
        try await server.start()
        #expect(try environmentOf(server.pid)["SWIFT_BACKTRACE"] == "symbolicate=off")
        #expect(server.process.isRunning, "the restart keeps the process (and its pid): \(server.log)")
        let name = try String(contentsOfFile: "/proc/\(server.pid)/comm", encoding: .utf8)
        #expect(name.trimmingCharacters(in: .whitespacesAndNewlines) == "vcom-server", "ps and pgrep see it by its name")
    }

    @Test func anOperatorsBacktraceSettingIsKept() async throws {
        let pair = try TestPair()
        pair.tls = false
        defer { pair.stop() }
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=yes,symbolicate=full"
        let server = try ServerProcess(
            role: .secondary, files: pair.files, arguments: pair.arguments(.secondary), name: "kept", environment: environment)
        pair.secondary = server
        try await server.start()
        #expect(try environmentOf(server.pid)["SWIFT_BACKTRACE"] == "enable=yes,symbolicate=full")
    }

    /// A running process's environment, as the kernel holds it (the one it was exec'd with).
    private func environmentOf(_ pid: Int32) throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
        var result: [String: String] = [:]
        for entry in data.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            guard let equals = text.firstIndex(of: "=") else { continue }
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        return result
    }
}
