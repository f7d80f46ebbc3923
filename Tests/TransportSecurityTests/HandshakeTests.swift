import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@testable import TransportSecurity

/// Real TLS 1.3 handshakes over loopback between the module's contexts.
@Suite struct HandshakeTests {
    let authority = try! PairPKI.makeAuthority()
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try authority.certificatePEM.write(to: directory.appendingPathComponent("ca.pem"), atomically: true, encoding: .utf8)
    }

    func contexts(name: String, hosts: [String] = ["127.0.0.1"], authority: IssuedIdentity? = nil) throws -> ServerTLSContexts {
        let issued = try PairPKI.issue(name: name, hosts: hosts, authority: authority ?? self.authority)
        let files = TLSFiles(
            certificate: directory.appendingPathComponent("\(name).pem").path, privateKey: directory.appendingPathComponent("\(name)-key.pem").path,
            authority: directory.appendingPathComponent("ca.pem").path)
        try issued.certificatePEM.write(toFile: files.certificate, atomically: true, encoding: .utf8)
        try issued.privateKeyPEM.write(toFile: files.privateKey, atomically: true, encoding: .utf8)
        return try ServerTLSContexts(files: files)
    }

    @Test func clientReachesTheServerThroughTheCAOrAPin() async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try contexts(name: "vcom-primary")
        let refusals = Refusals()
        try await withEcho(
            { [$0.makeSniffer(.tls, refusals), NIOSSLServerHandler(context: server.current.serving)] },
            body: { port in
                let viaCA = try ClientTLS(trust: .authority(file: directory.appendingPathComponent("ca.pem").path))
                #expect(try await roundTrip(port: port) { [try viaCA.makeHandler(host: "127.0.0.1")] } == "ping")
                let pinned = try ClientTLS(trust: .pinned(fingerprint: server.current.certificate.fingerprint))
                #expect(try await roundTrip(port: port) { [try pinned.makeHandler(host: "127.0.0.1")] } == "ping")
                let wrongPin = try ClientTLS(trust: .pinned(fingerprint: "sha256:" + String(repeating: "0", count: 64)))
                await #expect(throws: (any Error).self) { try await roundTrip(port: port) { [try wrongPin.makeHandler(host: "127.0.0.1")] } }
                // A plaintext client: refused with a reason, and the port still serves.
                _ = try? await roundTrip(port: port) { [] }
                #expect(refusals.all.contains { $0.contains("a plaintext client on a TLS port") })
                #expect(try await roundTrip(port: port) { [try viaCA.makeHandler(host: "127.0.0.1")] } == "ping")
            })
        #expect(throws: PairPKI.Problem.self) { try ClientTLS(trust: .pinned(fingerprint: "sha256:abc")) }
    }

    @Test func clientRefusesACertificateForAnotherAddress() async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let elsewhere = try contexts(name: "vcom-primary", hosts: ["192.0.2.7", "intercom.example"])
        try await withEcho({ _ in [NIOSSLServerHandler(context: elsewhere.current.serving)] }) { port in
            let viaCA = try ClientTLS(trust: .authority(file: directory.appendingPathComponent("ca.pem").path))
            await #expect(throws: (any Error).self) { try await roundTrip(port: port) { [try viaCA.makeHandler(host: "127.0.0.1")] } }
            await #expect(throws: (any Error).self) { try await roundTrip(port: port) { [try viaCA.makeHandler(host: "localhost")] } }
            let pinned = try ClientTLS(trust: .pinned(fingerprint: elsewhere.current.certificate.fingerprint))
            #expect(try await roundTrip(port: port) { [try pinned.makeHandler(host: "127.0.0.1")] } == "ping")
        }
    }

    @Test func plaintextPortRefusesATLSClient() async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let refusals = Refusals()
        try await withEcho({ [$0.makeSniffer(.plaintext, refusals)] }) { port in
            let viaCA = try ClientTLS(trust: .authority(file: directory.appendingPathComponent("ca.pem").path))
            await #expect(throws: (any Error).self) { try await roundTrip(port: port) { [try viaCA.makeHandler(host: "127.0.0.1")] } }
            #expect(refusals.all.contains { $0.contains("a TLS client on a plaintext port") })
            #expect(try await roundTrip(port: port) { [] } == "ping")
        }
    }

    @Test func peerLinkNeedsThePairsCAAndTheConfiguredName() async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let secondary = try contexts(name: "vcom-secondary")
        let primary = try contexts(name: "vcom-primary")
        let impostor = try contexts(name: "vcom-impostor")
        let foreign = try contexts(name: "vcom-primary-foreign", authority: try PairPKI.makeAuthority())
        let refusals = Refusals()
        let acceptCheck = try PeerCertificateCheck(authorityPEM: authority.certificatePEM, expectedName: "vcom-primary")
        try await withEcho(
            { _ in
                [NIOSSLServerHandler(
                    context: secondary.current.peerAccepting, customVerificationCallback: acceptCheck.callback(report: refusals.add),
                    configuration: .init())]
            },
            body: { port in
                func dial(_ contexts: ServerTLSContexts, expecting name: String = "vcom-secondary") async throws -> String {
                    let check = try PeerCertificateCheck(authorityPEM: authority.certificatePEM, expectedName: name)
                    return try await roundTrip(port: port) {
                        [try NIOSSLClientHandler(
                            context: contexts.current.peerDialing, serverHostname: nil,
                            customVerificationCallback: check.callback(report: refusals.add), configuration: .init())]
                    }
                }
                let first = try await dial(primary)
                #expect(first == "ping")
                await #expect(throws: (any Error).self) { try await dial(impostor) }
                #expect(refusals.all.contains { $0.contains("names vcom-impostor, 127.0.0.1; this server's peer is 'vcom-primary'") })
                await #expect(throws: (any Error).self) { try await dial(foreign) }
                #expect(refusals.all.contains { $0.contains("not from this pair's CA") })
                // The dialer checks the acceptor too.
                await #expect(throws: (any Error).self) { try await dial(primary, expecting: "vcom-other") }
                #expect(refusals.all.contains { $0.contains("this server's peer is 'vcom-other'") })
                let again = try await dial(primary)
                #expect(again == "ping")
            })
    }
}

final class Refusals: Sendable {
    private let box = NIOLockedValueBox<[String]>([])
    var all: [String] { box.withLockedValue { $0 } }
    @Sendable func add(_ reason: String) { box.withLockedValue { $0.append(reason) } }
}

extension Channel {
    func makeSniffer(_ expectation: TransportSniffer.Expectation, _ refusals: Refusals) -> TransportSniffer {
        TransportSniffer(expecting: expectation, refuse: refusals.add)
    }
}

/// Echoes one read back.
final class Echo: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// Collects the first reply.
final class FirstReply: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<String>
    init(_ promise: EventLoopPromise<String>) { self.promise = promise }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        promise.succeed(String(buffer: unwrapInboundIn(data)))
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
    }
}

let group = MultiThreadedEventLoopGroup.singleton

func withEcho(
    _ handlers: @escaping @Sendable (Channel) throws -> [ChannelHandler], body: (Int) async throws -> Void
) async throws {
    let listener = try await ServerBootstrap(group: group)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers(try handlers(channel) + [Echo()])
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    do {
        try await body(listener.localAddress!.port!)
    } catch {
        try? await listener.close()
        throw error
    }
    try await listener.close()
}

func roundTrip(port: Int, _ handlers: @escaping @Sendable () throws -> [ChannelHandler]) async throws -> String {
    let promise = group.next().makePromise(of: String.self)
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers(try handlers() + [FirstReply(promise)])
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    channel.writeAndFlush(ByteBuffer(string: "ping"), promise: nil)
    let timeout = channel.eventLoop.scheduleTask(in: .seconds(5)) { promise.fail(ChannelError.connectTimeout(.seconds(5))) }
    defer {
        timeout.cancel()
        channel.close(promise: nil)
    }
    return try await promise.futureResult.get()
}
