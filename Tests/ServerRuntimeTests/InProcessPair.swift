import ActivationPolicy
import ClientRuntime
import ConfigModel
import ConfigStore
import Foundation
import Licensing
import Logging
import NIOCore
import NIOPosix
import ServerRuntime
import Testing
import PairModel
import Wire

/// Two `ServerRuntime`s in this process, joined over loopback TCP exactly as two processes
/// would be: for the scenarios that need the runtime's own API (switchovers, writes) before
/// the admin port exists, and for substituting a module.
final class InProcessPair: @unchecked Sendable {
    let directory: URL
    let vendor = VendorSigningKey()
    let licenceFile: URL
    var secondary: ServerRuntime!
    var primary: ServerRuntime!
    var secondaryPeerPort: UInt16 = 0
    var clientPorts: [ServerRole: UInt16] = [:]
    /// Timings both servers start with (the client heartbeat is 500 ms here).
    var timings: ServerSettings.Timings = {
        var timings = ServerSettings.Timings()
        timings.clientHeartbeat = .milliseconds(500)
        return timings
    }()
    static let password = "correct horse battery"
    static let passwordHash = try! PasswordHasher().hash(password)
    static let secret = Array("in-process-cluster-secret-0123456789".utf8)
    var logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()

    init(operators: Int = 6) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-runtime-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let licence = try vendor.sign(
            Licence(
                licenceId: "LIC-RT", licensee: "Runtime tests", issued: Date().addingTimeInterval(-86_400),
                expires: Date().addingTimeInterval(365 * 86_400), maxClients: 100, features: [.failover], serverId: "vcom-primary"))
        licenceFile = directory.appendingPathComponent("licence.txt")
        try Data(licence.text.utf8).write(to: licenceFile)
        let store = try ConfigStore(path: dataDirectory(.primary).appendingPathComponent("config.sqlite").path)
        try store.setWriteEpoch(0)
        var changes: [ConfigChange] = [.putPartyLine(PartyLine(name: "Line-1"))]
        for n in 0..<operators {
            changes.append(.putOperator(Operator(username: "op\(n)", displayName: "Operator \(n)", passwordHash: Self.passwordHash)))
            changes.append(.setKeys(username: "op\(n)", keys: [PanelKey(slot: 1, talk: true, listen: true, target: .partyLine("Line-1"), latching: true)]))
        }
        try store.write(changes)
    }

    func dataDirectory(_ role: ServerRole) -> URL {
        let url = directory.appendingPathComponent(role == .primary ? "primary" : "secondary")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func settings(_ role: ServerRole) -> ServerSettings {
        var settings = ServerSettings(
            role: role, serverId: role == .primary ? "vcom-primary" : "vcom-secondary", primaryId: "vcom-primary",
            clientListen: Endpoint(host: "127.0.0.1", port: clientPorts[role] ?? 0), dataDirectory: dataDirectory(role),
            vendorKeys: [vendor.publicKey], clusterSecret: Self.secret, eventLoopThreads: 1)
        settings.timings = timings
        switch role {
        case .primary:
            settings.licenceFile = licenceFile
            settings.peerAddress = Endpoint(host: "127.0.0.1", port: secondaryPeerPort)
        case .secondary:
            settings.peerListen = Endpoint(host: "127.0.0.1", port: secondaryPeerPort)
        }
        return settings
    }

    func startSecondary(modules: ServerRuntime.Modules = .init()) async throws {
        secondary = try await ServerRuntime.start(settings: settings(.secondary), logger: logger, modules: modules)
        secondaryPeerPort = secondary.peerAddress!.port
        clientPorts[.secondary] = secondary.clientAddress.port
    }

    func startPrimary(modules: ServerRuntime.Modules = .init()) async throws {
        primary = try await ServerRuntime.start(settings: settings(.primary), logger: logger, modules: modules)
        clientPorts[.primary] = primary.clientAddress.port
    }

    /// Both started, the primary serving and the secondary synced.
    func start() async throws {
        try await startSecondary()
        try await startPrimary()
        #expect(await primary.waitForState(.active, timeout: .seconds(10)))
        #expect(await eventually { await self.secondary.status()?.synced == true })
    }

    func shutdown() async {
        await primary?.stopAbruptly()
        await secondary?.stopAbruptly()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(_ timeout: Duration = .seconds(15), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

/// A client through the client library, with its events recorded.
final class RecordingClient: @unchecked Sendable {
    let connection: ClientConnection
    private let lock = NSLock()
    private var heard: [ClientEvent] = []

    init(_ servers: [Endpoint], username: String, password: String = InProcessPair.password) {
        let recorder = Recorder()
        connection = ClientConnection(
            servers: servers, username: username, password: password, clientInstance: "rt-\(username)", tls: nil,
            configuration: .init(heartbeatInterval: .milliseconds(500), retryBase: .milliseconds(50), retryMaximum: .milliseconds(400)),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(), onEvent: { recorder.record($0) })
        recorder.client = self
        connection.start()
    }

    final class Recorder: @unchecked Sendable {
        weak var client: RecordingClient?
        func record(_ event: ClientEvent) { client?.append(event) }
    }

    func append(_ event: ClientEvent) {
        lock.lock()
        heard.append(event)
        lock.unlock()
    }

    var events: [ClientEvent] {
        lock.lock()
        defer { lock.unlock() }
        return heard
    }

    var server: Endpoint? { connection.isLoggedIn ? connection.state.server : nil }

    func waitLoggedIn(to endpoint: Endpoint) async -> Bool { await eventually(.seconds(20)) { self.server == endpoint } }
}

enum LoginResult: Equatable {
    case accepted
    case refused(RefusalReason)
}

/// One raw login over Wire (hello, login, the answer), with a deadline.
func loginOnce(_ server: Endpoint, username: String, credential: Credential) async throws -> LoginResult {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: server.host, port: Int(server.port)) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addWireHandlers(for: ClientMessage.self, configuration: .client)
                return try NIOAsyncChannel<ClientMessage, ClientMessage>(wrappingChannelSynchronously: channel)
            }
        }
    return try await withThrowingTaskGroup(of: LoginResult.self) { group in
        group.addTask {
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(.hello(Hello(nodeId: "probe", software: "test")))
                try await outbound.write(.login(LoginRequest(username: username, credential: credential, clientInstance: "probe")))
                for try await message in inbound {
                    switch message {
                    case .loginAccepted: return .accepted
                    case .loginRefused(let refused): return .refused(refused.reason)
                    default: continue
                    }
                }
                throw CancellationError()
            }
        }
        group.addTask {
            try await Task.sleep(for: .seconds(10))
            throw CancellationError()
        }
        let result = try await group.next()!
        group.cancelAll()
        return result
    }
}
