import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing
import TransportSecurity
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// Issue 14's bad input, on real servers: the wrong transport on each port, an untrusted
/// certificate, a wrong peer identity, an expired certificate. Each is refused with a logged
/// reason, and the pair's own link and sessions are not disturbed.
@Suite(.serialized) struct TLSFaultTests {
    @Test func wrongTransportsAndCertificatesAreRefusedWithAReason_andTheSessionsGoOn() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby }, "\(pair.logs)")
        let client = TestClient(servers: [pair.primary.clientEndpoint], username: "op1")
        defer { client.stop() }
        #expect(await client.waitLoggedIn(to: pair.primary.clientEndpoint))

        // A plaintext client on each TLS port.
        _ = try rawExchange(pair.primary.clientEndpoint, send: Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(await pair.primary.waitForLog("client port: 127.0.0.1"), "\(pair.primary.log.suffix(2000))")
        #expect(pair.primary.log.contains("refused: a plaintext client on a TLS port"))
        let hello = try plaintextHello()
        #expect(try rawExchange(pair.primary.adminEndpoint!, send: hello).isEmpty, "no Wire answer in clear")
        #expect(await pair.primary.waitForLog("admin port: 127.0.0.1"))
        #expect(try rawExchange(pair.secondary.peerEndpoint!, send: hello).isEmpty)
        #expect(await pair.secondary.waitForLog("peer port: 127.0.0.1"))

        // A client that does not trust the pair's CA does not log in; the server says why.
        let stranger = TestClient(
            servers: [pair.primary.clientEndpoint], username: "op2",
            tls: try ClientTLS(trust: .authorityPEM(try PairPKI.makeAuthority().certificatePEM)))
        #expect(!(await stranger.waitLoggedIn(to: pair.primary.clientEndpoint, timeout: .seconds(2))))
        // Stopped at once: its retries are TLS handshakes, slow in a debug build of BoringSSL,
        // and the suites run in parallel on two cores.
        stranger.stop()
        #expect(pair.primary.log.contains("TLS handshake failed"), "\(pair.primary.log.suffix(2000))")

        // Would-be primaries at the secondary's peer port: another CA, the pair's CA with the
        // wrong name, the pair's CA and the right name but expired. Each from an address of its
        // own: refusals are logged once a minute per address and kind (docs/security.md).
        let peerPort = pair.secondary.peerEndpoint!
        let foreign = try PairPKI.issue(name: "vcom-primary", hosts: ["127.0.0.1"], authority: try PairPKI.makeAuthority())
        #expect(try await tlsDial(peerPort, presenting: foreign, from: "127.0.0.11") == false)
        #expect(await pair.secondary.waitForLog("is not from this pair's CA"), "\(pair.secondary.log.suffix(2000))")
        let intruder = try PairPKI.issue(name: "vcom-intruder", hosts: ["127.0.0.1"], authority: PairFiles.authority)
        #expect(try await tlsDial(peerPort, presenting: intruder, from: "127.0.0.12") == false)
        #expect(await pair.secondary.waitForLog("names vcom-intruder, 127.0.0.1; this server's peer is 'vcom-primary'"))
        let longAgo = Date().addingTimeInterval(-400 * 86_400)
        let expired = try PairPKI.issue(name: "vcom-primary", hosts: ["127.0.0.1"], authority: PairFiles.authority, validityDays: 30, now: longAgo)
        #expect(try await tlsDial(peerPort, presenting: expired, from: "127.0.0.13") == false)
        #expect(await pair.secondary.waitForLog("expired on"))
        // The control: the pair's CA and the right name complete the handshake.
        let genuine = try PairPKI.issue(name: "vcom-primary", hosts: ["127.0.0.1"], authority: PairFiles.authority)
        #expect(try await tlsDial(peerPort, presenting: genuine) == true)

        // A server never starts with an expired certificate of its own.
        try Data(expired.certificatePEM.utf8).write(to: pair.files.file("expired.pem"))
        try Data(expired.privateKeyPEM.utf8).write(to: pair.files.file("expired-key.pem"))
        chmod(pair.files.file("expired-key.pem").path, 0o600)
        let stale = try ServerProcess(
            role: .primary, files: pair.files,
            arguments: pair.arguments(.primary) + [
                "--tls-certificate", pair.files.file("expired.pem").path, "--tls-key", pair.files.file("expired-key.pem").path,
                "--data-dir", pair.files.directory.appendingPathComponent("stale").path,
            ], name: "stale")
        await #expect(throws: TestFailure.self) { try await stale.start(timeout: .seconds(15)) }
        #expect(stale.log.contains("tls.certificate:") && stale.log.contains("expired on"), "\(stale.log)")

        // Through all of it: the pair's link never dropped and the session never noticed.
        #expect(pair.primary.isActive && pair.secondary.isStandby)
        #expect(!pair.primary.log.contains("peer link lost"))
        #expect(client.loggedInTo == pair.primary.clientEndpoint)
        #expect(!client.events.contains { if case .lost = $0 { true } else { false } }, "\(client.events)")
    }

    @Test func clientPortInClear_refusesTLSClients_whilePeerAndAdminKeepTLS() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.startSecondary(extra: ["--no-client-tls"])
        try await pair.startPrimary(extra: ["--no-client-tls"])
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby }, "\(pair.logs)")
        let tlsClient = TestClient(servers: [pair.primary.clientEndpoint], username: "op1")
        defer { tlsClient.stop() }
        #expect(!(await tlsClient.waitLoggedIn(to: pair.primary.clientEndpoint, timeout: .seconds(2))))
        #expect(await pair.primary.waitForLog("refused: a TLS client on a plaintext port"), "\(pair.primary.log.suffix(2000))")
        let plain = TestClient(servers: [pair.primary.clientEndpoint], username: "op2", tls: nil)
        defer { plain.stop() }
        #expect(await plain.waitLoggedIn(to: pair.primary.clientEndpoint))
        let status = try await admin(["status", "--json"], pair: pair)
        #expect(status.status == 0, "\(status.errors)")
        #expect(status.output.contains("\"transport\":\"tls, clients in clear\""), "\(status.output)")
        #expect(try rawExchange(pair.secondary.peerEndpoint!, send: try plaintextHello()).isEmpty, "the peer port keeps TLS")
    }

    /// A renewal with `vcom-admin pki issue` over the primary's files, then SIGHUP: the new
    /// certificate serves new connections, the open session stays, and a certificate within 30
    /// days of expiry is reported by the server's log and by `vcom-admin status`.
    @Test func aRenewedCertificateIsTakenWithoutARestart() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby }, "\(pair.logs)")
        let before = try await admin(["status", "--json"], pair: pair)
        #expect(before.output.contains("\"certificate_days_left\":"), "\(before.output)")
        let client = TestClient(servers: [pair.primary.clientEndpoint], username: "op1")
        defer { client.stop() }
        #expect(await client.waitLoggedIn(to: pair.primary.clientEndpoint))

        try Data(PairFiles.authority.privateKeyPEM.utf8).write(to: pair.files.file("ca-key.pem"))
        let issued = try await admin(
            ["pki", "issue", "--dir", pair.files.directory.path, "--name", "vcom-primary", "--host", "127.0.0.1", "--days", "20", "--json"],
            pair: pair)
        #expect(issued.status == 0, "\(issued.errors)")
        let shown = try await admin(["pki", "show", pair.files.file("vcom-primary.pem").path, "--json"], pair: pair)
        #expect(shown.output.contains("\"days_left\":19") || shown.output.contains("\"days_left\":20"), "\(shown.output)")
        pair.primary.kill(SIGHUP)
        #expect(await pair.primary.waitForLog("TLS: certificate reloaded"), "\(pair.primary.log.suffix(2000))")
        #expect(pair.primary.log.contains("expires in 19 days") || pair.primary.log.contains("expires in 20 days"))

        let status = try await admin(["status"], pair: pair)
        #expect(status.output.contains("RENEW SOON"), "\(status.output)")
        let pin = try #require(shown.output.firstMatch(of: /"fingerprint":"(sha256:[0-9a-f]{64})"/)?.1)
        let pinned = try await admin(
            ["status", "--json", "--pin", String(pin)], pair: pair, servers: pair.primary.adminEndpoint!.description,
            environment: ["VCOM_ADMIN_CA": ""])
        // Answered (a certificate within 30 days of its end makes the pair "degraded", exit 1).
        #expect(pinned.status == 1 && pinned.json?["problems"].map { "\($0)" }?.contains("TLS certificate expires in") == true,
            "the renewed certificate is what the admin port presents: \(pinned.output) \(pinned.errors)")
        let late = TestClient(servers: [pair.primary.clientEndpoint], username: "op2")
        defer { late.stop() }
        #expect(await late.waitLoggedIn(to: pair.primary.clientEndpoint))
        #expect(client.loggedInTo == pair.primary.clientEndpoint)
        #expect(!client.events.contains { if case .lost = $0 { true } else { false } })
        let wrongPin = try await admin(
            ["status", "--pin", "sha256:" + String(repeating: "ab", count: 32)], pair: pair, servers: pair.primary.adminEndpoint!.description)
        #expect(wrongPin.status == 2 && wrongPin.output.contains("TLS"), "\(wrongPin.output) \(wrongPin.errors)")
    }

    /// Issue 14's proof: the peer link's bytes, captured between the servers, hold no
    /// configuration value, name or password. The same capture of a pair started --plaintext
    /// finds the configuration value: the capture sees what crosses.
    @Test(arguments: [true, false]) func thePeerLinkCarriesNothingReadable(tls: Bool) async throws {
        let pair = try TestPair()
        pair.tls = tls
        defer { pair.stop() }
        try await pair.startSecondary()
        let relay = try Relay(to: pair.secondary.peerEndpoint!)
        defer { relay.stop() }
        pair.secondaryPeerPort = relay.port
        try await pair.startPrimary()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby }, "\(pair.logs)")

        let value = "value-\(UUID().uuidString)"
        let displayName = "Name-\(UUID().uuidString.prefix(12))"
        let password = "password-\(UUID().uuidString.prefix(12))"
        #expect(try await admin(["config", "set", "capture.marker", value], pair: pair).status == 0)
        let added = try await admin(
            ["users", "add", "captured", "--display-name", displayName], pair: pair, environment: ["VCOM_NEW_PASSWORD": password])
        #expect(added.status == 0, "\(added.errors)")
        #expect(await eventually { pair.secondary.configRevision == pair.primary.configRevision && pair.primary.configRevision > 0 })
        try await Task.sleep(for: .milliseconds(300))

        let captured = relay.captured
        #expect(captured.count > 1000, "the capture saw the link (\(captured.count) bytes)")
        let found = { (text: String) in captured.firstRange(of: Array(text.utf8)) != nil }
        #expect(!found(password), "a password never crosses, not even in clear (only its hash)")
        if tls {
            #expect(!found(value) && !found(displayName) && !found("capture.marker"))
            #expect(captured.first == 0x16, "the link starts with a TLS handshake")
        } else {
            #expect(found(value) && found(displayName), "the control: in clear, the capture finds them")
        }
    }
}

/// A Wire hello, in clear.
func plaintextHello() throws -> [UInt8] {
    var buffer = ByteBuffer()
    try FrameCodec<ClientMessage>(configuration: .client).encode(.hello(Hello(nodeId: "probe", software: "test")), into: &buffer)
    return Array(buffer.readableBytesView)
}

/// Dials `endpoint` with TLS 1.3 presenting `identity` (and trusting any server); true when the
/// server completed the handshake, false when it refused it.
func tlsDial(_ endpoint: Endpoint, presenting identity: IssuedIdentity, from source: String = "127.0.0.1") async throws -> Bool {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.minimumTLSVersion = .tlsv13
    configuration.certificateVerification = .none
    configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificatePEM.utf8)).map { .certificate($0) }
    configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.privateKeyPEM.utf8), format: .pem))
    let context = try NIOSSLContext(configuration: configuration)
    let group = MultiThreadedEventLoopGroup.singleton
    let outcome = group.next().makePromise(of: Bool.self)
    let channel = try await ClientBootstrap(group: group)
        .bind(to: try SocketAddress(ipAddress: source, port: 0))
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                try channel.pipeline.syncOperations.addHandler(HandshakeOutcome(outcome))
            }
        }
        .connect(host: endpoint.host, port: Int(endpoint.port)).get()
    // In TLS 1.3 the client finishes first; a server that refuses the client's certificate says
    // so right after. A Wire hello makes the server answer (a peer hello) if it accepted.
    channel.writeAndFlush(ByteBuffer(bytes: try plaintextHello()), promise: nil)
    let timeout = channel.eventLoop.scheduleTask(in: .seconds(5)) { outcome.succeed(false) }
    defer {
        timeout.cancel()
        channel.close(promise: nil)
    }
    return try await outcome.futureResult.get()
}

/// True at the first bytes the server sends after the handshake, false at an error or close.
final class HandshakeOutcome: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<Bool>
    init(_ promise: EventLoopPromise<Bool>) { self.promise = promise }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { promise.succeed(true) }
    func errorCaught(context: ChannelHandlerContext, error: Error) { promise.succeed(false) }
    func channelInactive(context: ChannelHandlerContext) { promise.succeed(false) }
}

/// `chaos-relay` on loopback, recording every byte it passes: the wire between the two
/// servers, as an eavesdropper sees it. Killed (by pid) when it ends.
final class Relay: @unchecked Sendable {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("chaos-relay")
    let process = Process()
    let capture = FileManager.default.temporaryDirectory.appendingPathComponent("relay-\(UUID().uuidString.prefix(8))")
    var control: URL { URL(fileURLWithPath: capture.path + ".none") }
    private(set) var port: UInt16 = 0

    /// `pass`, `delay MS JITTER_MS` or `stall` (the relay reads it every 20 ms).
    func shape(_ mode: String) throws { try Data(mode.utf8).write(to: control) }

    init(to upstream: Endpoint) throws {
        process.executableURL = Self.binary
        process.arguments = [
            "--listen", "127.0.0.1:0", "--to", upstream.description, "--control", capture.path + ".none", "--capture", capture.path,
        ]
        let ready = Pipe()
        process.standardOutput = ready
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The relay prints {"relay":"127.0.0.1:PORT"} once it listens, then nothing more.
        let line = String(decoding: ready.fileHandleForReading.availableData, as: UTF8.self)
        guard let address = line.firstMatch(of: /"relay":"([^"]+)"/)?.1, let endpoint = Endpoint(parsing: String(address)) else {
            stop()
            throw TestFailure("chaos-relay did not start: \(line)")
        }
        port = endpoint.port
    }

    var captured: [UInt8] { Array((try? Data(contentsOf: capture)) ?? Data()) }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: capture)
        try? FileManager.default.removeItem(at: control)
    }

    deinit { stop() }
}
