import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

#if canImport(Glibc)
import Glibc
#endif

/// A real etcd (Debian's `etcd-server`) for one test: its own data directory and loopback
/// ports, stopped by pid, its directory removed.
public final class EtcdProcess: @unchecked Sendable {
    public let clientURL: String
    public let clientPort: Int
    private let process = Process()
    private let directory: URL
    private let log: URL

    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("etcd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        clientPort = try Self.freePort()
        let peerPort = try Self.freePort()
        clientURL = "http://127.0.0.1:\(clientPort)"
        let peerURL = "http://127.0.0.1:\(peerPort)"
        log = directory.appendingPathComponent("etcd.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        // etcd runs under a shell that ends it when this test process is gone: a test binary
        // that crashes runs no `stop` and no deinit, and its etcd would outlive it (three did).
        // The shell also ends it on SIGTERM (`stop`).
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", Self.tiedToParent, "etcd-tied", String(getpid()), directory.path, Self.binary] + [
            "--name", "witness", "--data-dir", directory.appendingPathComponent("data").path,
            "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
            "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
            "--initial-cluster", "witness=\(peerURL)", "--log-level", "warn",
        ]
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
    }

    /// `$1`: the pid to outlive no longer, `$2`: the directory to remove if it is gone first;
    /// then the command. Polls twice a second.
    static let tiedToParent = """
        parent=$1; directory=$2; shift 2
        "$@" & child=$!
        trap 'kill -9 $child 2>/dev/null; wait $child; exit 0' TERM INT
        while kill -0 $parent 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done
        kill -9 $child 2>/dev/null
        wait $child
        kill -0 $parent 2>/dev/null || rm -rf "$directory"
        """

    public static var binary: String {
        ["/usr/bin/etcd", "/usr/local/bin/etcd"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "etcd"
    }
    public static var installed: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    /// Waits (at most `timeout`) until etcd answers on its client port.
    public func waitReady(timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw Failure("etcd exited: \(output)") }
            if let url = URL(string: "\(clientURL)/health"), let data = try? Data(contentsOf: url),
                String(decoding: data, as: UTF8.self).contains("true")
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure("etcd not ready in \(timeout): \(output)")
    }

    public var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)  // the shell kills etcd and waits for it
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ text: String) { description = text }
    }

    /// A loopback port free a moment ago (bound to port 0, read back, closed).
    public static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
