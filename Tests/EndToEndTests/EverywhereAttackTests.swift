import Foundation
import Testing
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// Issue 24's attacks that concern every port and the server's files (16 to 18).
@Suite(.serialized) struct EverywhereAttackTests {
    /// 16. A flood of refused connections is counted, and logged at most once per source and
    /// kind of refusal a minute, with a count.
    @Test func refusalsAreCountedAndLoggedOncePerSource() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby }, "\(pair.logs)")
        let peer = pair.secondary.peerEndpoint!
        for _ in 0..<300 {
            guard let fd = Attacker.connect(peer) else { continue }
            _ = "GET / HTTP/1.0\r\n\r\n".withCString { send(fd, $0, 18, 0) }
            close(fd)
        }
        #expect(
            await eventually(.seconds(5)) {
                let refused = scrapeMetrics(pair.secondary.metricsEndpoint!).filter { $0.key.hasPrefix("vcom_connections_refused_total{port=\"peer\"") }
                return refused.values.reduce(0, +) >= 300
            }, "\(scrapeMetrics(pair.secondary.metricsEndpoint!).filter { $0.key.hasPrefix("vcom_connections_refused") })")
        let lines = pair.secondary.log.split(separator: "\n").filter { $0.contains("peer port: 127.0.0.2 refused") }
        #expect(lines.count >= 1 && lines.count <= 3, "\(lines.count) log lines for 300 refusals:\n\(lines.prefix(5).joined(separator: "\n"))")
        #expect(!pair.secondary.log.contains("peer link lost"))
    }

    /// 17. The cluster secret is the file's raw bytes: two different secrets of non-UTF-8 bytes
    /// do not authenticate to each other, and a 6-byte file is refused (exit 78).
    @Test func theClusterSecretIsRawBytes() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        // Lone UTF-8 continuation bytes: decoded as text, both were 32 replacement characters.
        try Data((0..<32).map { UInt8(0x80 + $0) }).write(to: pair.files.file("cluster.secret"))
        try Data((0..<32).map { UInt8(0xBF - $0) }).write(to: pair.files.file("other.secret"))
        chmod(pair.files.file("other.secret").path, 0o600)
        try await pair.startSecondary()
        try await pair.startPrimary(extra: ["--cluster-secret-file", pair.files.file("other.secret").path])
        #expect(await pair.secondary.waitForLog("the cluster secrets differ", timeout: .seconds(10)), "\(pair.logs)")
        #expect(pair.secondary.metric("vcom_peer_link_up") != 1)

        try Data("short\n".utf8).write(to: pair.files.file("short.secret"))
        let short = try ServerProcess(
            role: .secondary, files: pair.files,
            arguments: pair.arguments(.secondary) + [
                "--cluster-secret-file", pair.files.file("short.secret").path, "--data-dir", pair.files.directory.appendingPathComponent("short").path,
                "--peer-listen", "127.0.0.1:0",
            ], name: "short")
        await #expect(throws: TestFailure.self) { try await short.start(timeout: .seconds(15)) }
        #expect(short.process.terminationStatus == 78 && short.log.contains("holds 5 bytes; at least 32"), "\(short.log)")
    }

    /// 18. The data directory is 0700 and every file in it 0600, and a store left readable by
    /// others is tightened at start, with a warning.
    @Test func theDataDirectoryIsTheServersAlone() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        let data = pair.files.dataDirectory(.primary)
        chmod(data.path, 0o755)
        chmod(data.appendingPathComponent("config.sqlite").path, 0o644)
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby }, "\(pair.logs)")
        #expect(pair.primary.log.contains("was readable by other users"), "\(pair.primary.log.prefix(2000))")
        #expect(pair.primary.log.contains("was open to other users"))
        for role in [ServerRole.primary, .secondary] {
            let directory = pair.files.dataDirectory(role)
            #expect(mode(directory.path) == 0o700, "\(role): \(String(mode(directory.path), radix: 8))")
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            #expect(files.contains("config.sqlite") && files.contains("audit.sqlite") && files.contains("state.sqlite"), "\(files)")
            for file in files {
                #expect(mode(directory.appendingPathComponent(file).path) == 0o600, "\(role) \(file): \(String(mode(directory.appendingPathComponent(file).path), radix: 8))")
            }
        }
    }

    func mode(_ path: String) -> mode_t {
        var info = stat()
        stat(path, &info)
        return info.st_mode & 0o777
    }
}
