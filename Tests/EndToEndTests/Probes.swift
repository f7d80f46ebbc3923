import ClientRuntime
import Foundation
import NIOCore
import NIOPosix
import Testing
import TransportSecurity
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP connection to an IPv4 endpoint whose reads give up after two seconds; nil
/// when it cannot connect. The caller closes it.
func blockingConnect(_ endpoint: Endpoint) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = endpoint.port.bigEndian
    inet_pton(AF_INET, endpoint.host, &address.sin_addr)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        return nil
    }
    return fd
}

/// Sends `bytes`, then reads until the other side closes (or two silent seconds).
func exchange(_ fd: Int32, send bytes: [UInt8]) -> [UInt8] {
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var response = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        response += chunk[0..<count]
    }
    return response
}

/// Reads a server's `/metrics` with a plain blocking HTTP GET on loopback.
func scrapeMetrics(_ endpoint: Endpoint) -> [String: Double] {
    guard let fd = blockingConnect(endpoint) else { return [:] }
    defer { close(fd) }
    let response = exchange(fd, send: Array("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8))
    var values: [String: Double] = [:]
    let text = String(decoding: response, as: UTF8.self)
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let parts = line.split(separator: " ")
        if parts.count >= 2, let value = Double(parts[parts.count - 1]) { values[String(parts[0])] = value }
    }
    return values
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(_ timeout: Duration = .seconds(15), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(25))
    }
    return await condition()
}

extension ServerProcess {
    func metric(_ name: String) -> Double? { metricsEndpoint.flatMap { scrapeMetrics($0)[name] } }
    var isActive: Bool { metric("vcom_state{state=\"active\"}") == 1 }
    var isAwaitingAuthorization: Bool { metric("vcom_state{state=\"awaiting_authorization\"}") == 1 }
    var isStandby: Bool { metric("vcom_state{state=\"standby\"}") == 1 }
    var loggedInClients: Int { Int(metric("vcom_clients_logged_in") ?? -1) }
    var configRevision: Int { Int(metric("vcom_config_revision") ?? -1) }
}

/// A client through the client library, recording every event it hears.
final class TestClient: @unchecked Sendable {
    let connection: ClientConnection
    private let lock = NSLock()
    private var heard: [ClientEvent] = []

    /// `tls`: the test pairs' CA by default (client ports speak TLS); nil for a plaintext port.
    init(
        servers: [Endpoint], username: String, password: String = PairFiles.password, heartbeatMs: Int64 = 500,
        tls: ClientTLS? = PairFiles.clientTLS
    ) {
        let box = EventBox()
        connection = ClientConnection(
            servers: servers, username: username, password: password, clientInstance: "e2e-\(username)", tls: tls,
            configuration: .init(heartbeatInterval: .milliseconds(heartbeatMs), retryBase: .milliseconds(50), retryMaximum: .milliseconds(500)),
            eventLoop: TestPair.group.next(), onEvent: { box.append($0) })
        box.owner = self
        connection.start()
    }

    final class EventBox: @unchecked Sendable {
        weak var owner: TestClient?
        func append(_ event: ClientEvent) { owner?.record(event) }
    }

    func record(_ event: ClientEvent) {
        lock.lock()
        heard.append(event)
        lock.unlock()
    }

    var events: [ClientEvent] {
        lock.lock()
        defer { lock.unlock() }
        return heard
    }

    /// The server it is logged in to, if any.
    var loggedInTo: Endpoint? {
        guard connection.isLoggedIn else { return nil }
        return connection.state.server
    }

    func waitLoggedIn(to endpoint: Endpoint, timeout: Duration = .seconds(20)) async -> Bool {
        await eventually(timeout) { self.loggedInTo == endpoint }
    }

    func stop() { connection.stop() }
}

/// Runs a program to its end (killed after `timeout`): its exit status, standard output and
/// standard error. `input` is its standard input. Files, not pipes, for its output: a pipe holds
/// 64 KiB, and a program writing more would wait for a reader that reads only once it exited.
func runProgram(
    _ path: String, _ arguments: [String], input: String = "", in directory: URL? = nil, timeout: Duration = .seconds(120)
) throws -> (status: Int32, output: String, errors: String) {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("program-\(UUID().uuidString.prefix(8))")
    let files = ["in", "out", "err"].map { base.appendingPathExtension($0) }
    defer { for file in files { try? FileManager.default.removeItem(at: file) } }
    try Data(input.utf8).write(to: files[0])
    for file in files.dropFirst() { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.currentDirectoryURL = directory
    process.standardInput = try FileHandle(forReadingFrom: files[0])
    process.standardOutput = try FileHandle(forWritingTo: files[1])
    process.standardError = try FileHandle(forWritingTo: files[2])
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
    let text = files.dropFirst().map { (try? String(contentsOf: $0, encoding: .utf8)) ?? "" }
    return (process.terminationStatus, text[0], text[1])
}
