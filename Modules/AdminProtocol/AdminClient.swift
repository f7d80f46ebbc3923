import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import TransportSecurity
import PairModel
import Wire

/// Why a command could not do its job, and the exit code that says so.
public enum AdminFailure: Error, CustomStringConvertible {
    /// The server said no (a login refused, a request refused): exit 1.
    case refused(String)
    /// No answer: nothing listening, a timeout, a broken connection: exit 2.
    case unreachable(String)

    public var description: String {
        switch self {
        case .refused(let text), .unreachable(let text): text
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .refused: 1
        case .unreachable: 2
        }
    }
}

/// The client side of the admin port (docs/admin.md): one logged-in session with one server,
/// SCRAM-SHA-256 over TLS (the server's signature checked too), then numbered requests.
/// vcom-admin and the tests speak to servers through it.
public struct AdminClient {
    public let endpoint: Endpoint
    public let accepted: AdminLoginAccepted
    private var inbound: NIOAsyncChannelInboundStream<AdminMessage>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<AdminMessage>
    private var nextId: UInt32 = 1

    /// Connects, logs in with SCRAM (checking the server's signature too) and runs `body`;
    /// every step within `timeout`.
    /// `source`: the local address to connect from (a host with several), nil for the system's choice.
    public static func with<T: Sendable>(
        _ endpoint: Endpoint, tls: ClientTLS?, user: String, password: String, timeout: Duration, source: String? = nil,
        _ body: @escaping @Sendable (inout AdminClient) async throws -> T
    ) async throws -> T {
        let channel: NIOAsyncChannel<AdminMessage, AdminMessage>
        do {
            var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            if let source { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0)) }
            channel = try await bootstrap
                .connectTimeout(TimeAmount(timeout))
                .connect(host: endpoint.host, port: Int(endpoint.port)) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try channel.pipeline.syncOperations.addHandler(try tls.makeHandler(host: endpoint.host)) }
                        try channel.pipeline.syncOperations.addWireHandlers(for: AdminMessage.self, configuration: .admin)
                        return try NIOAsyncChannel<AdminMessage, AdminMessage>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw AdminFailure.unreachable("\(endpoint): cannot connect (\(error))")
        }
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    var iterator = inbound.makeAsyncIterator()
                    try await outbound.write(.hello(Hello(nodeId: "vcom-admin", software: "vcom-admin")))
                    guard case .hello = try await Self.next(&iterator, endpoint) else {
                        throw AdminFailure.unreachable("\(endpoint): not a VCOM admin port")
                    }
                    var scram = ScramClient(username: user, password: password)
                    try await outbound.write(.authStart(AdminAuthStart(username: user, clientNonce: scram.clientNonce)))
                    let challenge: AdminAuthChallenge
                    switch try await Self.next(&iterator, endpoint) {
                    case .authChallenge(let value): challenge = value
                    case .loginRefused(let refused): throw AdminFailure.refused("\(endpoint): login refused: \(refused.detail)")
                    case let other: throw AdminFailure.unreachable("\(endpoint): unexpected \(other.messageType) during the login")
                    }
                    let proof: [UInt8]
                    do {
                        proof = try scram.proof(nonce: challenge.nonce, salt: Array(challenge.salt.readableBytesView), iterations: Int(challenge.iterations))
                    } catch {
                        throw AdminFailure.refused("\(endpoint): \(error)")
                    }
                    try await outbound.write(.authProof(AdminAuthProof(proof: ByteBuffer(bytes: proof))))
                    switch try await Self.next(&iterator, endpoint) {
                    case .loginAccepted(let accepted):
                        do {
                            try scram.verify(serverSignature: Array(accepted.serverSignature.readableBytesView))
                        } catch {
                            throw AdminFailure.refused("\(endpoint): \(error)")
                        }
                        var session = AdminClient(endpoint: endpoint, accepted: accepted, inbound: iterator, outbound: outbound)
                        let result = try await body(&session)
                        try? await outbound.write(.goodbye(Goodbye(reason: .normal, detail: "done")))
                        return result
                    case .loginRefused(let refused):
                        throw AdminFailure.refused("\(endpoint): login refused: \(refused.detail)")
                    case let other:
                        throw AdminFailure.unreachable("\(endpoint): unexpected \(other.messageType) during the login")
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw AdminFailure.unreachable("\(endpoint): no answer within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private static func next(
        _ iterator: inout NIOAsyncChannelInboundStream<AdminMessage>.AsyncIterator, _ endpoint: Endpoint
    ) async throws -> AdminMessage {
        let message: AdminMessage?
        do {
            message = try await iterator.next()
        } catch let error as NIOSSLError {
            throw AdminFailure.unreachable("\(endpoint): TLS failed (\(error)): \(tlsHint)")
        } catch let error as BoringSSLError {
            throw AdminFailure.unreachable("\(endpoint): TLS failed (\(error)): \(tlsHint)")
        } catch let error as NIOSSLExtraError {
            throw AdminFailure.unreachable("\(endpoint): the server's certificate is refused (\(error)): \(tlsHint)")
        } catch {
            throw AdminFailure.unreachable("\(endpoint): \(error)")
        }
        guard let message else { throw AdminFailure.unreachable("\(endpoint): the server closed the connection") }
        if case .goodbye(let goodbye) = message { throw AdminFailure.refused("\(endpoint): \(goodbye.detail)") }
        return message
    }

    static let tlsHint =
        "is --ca the pair's CA and the address one the certificate names, or --pin the server's current certificate? A server started with --plaintext needs --plaintext"

    /// Sends one call and waits for its answer.
    public mutating func call(_ call: AdminCall) async throws -> AdminAnswer {
        let id = nextId
        nextId &+= 1
        try await outbound.write(.request(AdminRequest(requestId: id, command: call.code.rawValue, body: try call.encode())))
        while true {
            guard case .reply(let reply) = try await Self.next(&inbound, endpoint) else { continue }
            guard reply.requestId == id else { continue }
            do {
                return try AdminAnswer(for: call.code, status: reply.status, body: reply.body)
            } catch {
                throw AdminFailure.unreachable("\(endpoint): the answer cannot be read: \(error)")
            }
        }
    }
}
