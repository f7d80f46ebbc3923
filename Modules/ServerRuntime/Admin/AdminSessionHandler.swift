import AdminProtocol
import Foundation
import NIOCore
import Wire

/// One connection on the admin port: hello, SCRAM, then numbered requests, each answered and
/// audited. A session whose login fails is closed; requests are served one at a time, in order.
final class AdminSessionHandler: ChannelInboundHandler {
    typealias InboundIn = AdminMessage
    typealias OutboundOut = AdminMessage

    private enum State {
        case awaitingHello
        case awaitingStart
        case awaitingProof(ScramServer, role: AdminRole?)
        case loggedIn(user: String, role: AdminRole)
        case ended
    }

    private let service: AdminService
    private var state = State.awaitingHello
    private var source = "unknown"
    /// Requests wait their turn: a switchover's answer must precede the next status.
    private var queue: [AdminRequest] = []
    private var busy = false

    init(service: AdminService) {
        self.service = service
    }

    func channelActive(context: ChannelHandlerContext) {
        source = context.remoteAddress?.ipAddress ?? "unknown"
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (state, unwrapInboundIn(data)) {
        case (.awaitingHello, .hello(let hello)):
            guard hello.negotiatedVersion() != nil else {
                end(context, Goodbye(reason: .unsupportedVersion, detail: "this server speaks protocol versions \(WireProtocol.supportedVersions)"))
                return
            }
            state = .awaitingStart
            context.writeAndFlush(wrapOutboundOut(.hello(Hello(nodeId: "vcom-server", software: "vcom-server admin"))), promise: nil)
        case (.awaitingStart, .authStart(let start)):
            if let wait = service.lockout(source: source, account: start.username) {
                service.record(user: start.username, source: source, action: "login", result: "refused: locked out for \(Int(wait.rounded(.up))) s")
                refuse(context, .notAuthorized, "too many failed logins from this address or for this account; try again in \(Int(wait.rounded(.up))) s")
                return
            }
            guard !start.clientNonce.isEmpty, start.clientNonce.count <= 256, !start.clientNonce.contains(",") else {
                end(context, Goodbye(reason: .protocolError, detail: "the client nonce must be 1 to 256 printable characters without a comma"))
                return
            }
            let (verifier, role) = service.account(start.username)
            let server = ScramServer(username: start.username, clientNonce: start.clientNonce, verifier: verifier, decoyKey: service.decoyKey)
            state = .awaitingProof(server, role: verifier == nil ? nil : role)
            let challenge = AdminAuthChallenge(nonce: server.nonce, salt: ByteBuffer(bytes: server.salt), iterations: UInt32(server.iterations))
            context.writeAndFlush(wrapOutboundOut(.authChallenge(challenge)), promise: nil)
        case (.awaitingProof(let server, let role), .authProof(let proof)):
            switch server.check(proof: Array(proof.proof.readableBytesView)) {
            case .success(let signature) where role != nil:
                let role = role!
                state = .loggedIn(user: server.username, role: role)
                service.loginSucceeded(source: source, account: server.username, role: role)
                // Requests that arrive meanwhile wait behind the acceptance.
                busy = true
                let service = service
                let promise = context.eventLoop.makePromise(of: RuntimeStatus?.self)
                promise.completeWithTask { await service.runtime()?.status() }
                promise.futureResult.assumeIsolated().whenSuccess { status in
                    let accepted = AdminLoginAccepted(
                        role: role, serverRole: status?.role ?? .primary, serverState: status?.state ?? .standby, epoch: status?.epoch ?? 0,
                        serverSignature: ByteBuffer(bytes: signature))
                    context.writeAndFlush(self.wrapOutboundOut(.loginAccepted(accepted)), promise: nil)
                    self.busy = false
                    self.next(context)
                }
            default:
                service.loginFailed(source: source, account: server.username)
                refuse(context, .badCredentials, "wrong user name or password")
            }
        case (.loggedIn, .request(let request)):
            queue.append(request)
            if queue.count > 64 {
                end(context, Goodbye(reason: .protocolError, detail: "more than 64 requests waiting for an answer"))
                return
            }
            next(context)
        case (_, .goodbye):
            state = .ended
            context.close(promise: nil)
        case (.ended, _):
            break
        case (_, let message):
            end(context, Goodbye(reason: .protocolError, detail: "unexpected \(message.messageType) at this point of the admin session"))
        }
    }

    private func next(_ context: ChannelHandlerContext) {
        guard !busy, case .loggedIn(let user, let role) = state, !queue.isEmpty else { return }
        let request = queue.removeFirst()
        let call: AdminCall
        do {
            call = try AdminCall(code: request.command, body: request.body)
        } catch {
            service.record(user: user, source: source, action: "request \(request.command)", result: "invalid: \(error)")
            reply(context, request.requestId, .error(.invalid, "the request cannot be read: \(error)"))
            next(context)
            return
        }
        busy = true
        let service = service
        let source = source
        let promise = context.eventLoop.makePromise(of: AdminAnswer.self)
        promise.completeWithTask { await service.perform(call, user: user, role: role, source: source) }
        promise.futureResult.assumeIsolated().whenSuccess { answer in
            self.busy = false
            self.reply(context, request.requestId, answer)
            self.next(context)
        }
    }

    private func reply(_ context: ChannelHandlerContext, _ id: UInt32, _ answer: AdminAnswer) {
        guard context.channel.isActive else { return }
        let body = (try? answer.encode()) ?? (try? AdminAnswer.error(.failed, "the answer was too large to send").encode()) ?? ByteBuffer()
        context.writeAndFlush(wrapOutboundOut(.reply(AdminReply(requestId: id, status: answer.status.rawValue, body: body))), promise: nil)
    }

    private func refuse(_ context: ChannelHandlerContext, _ reason: RefusalReason, _ detail: String) {
        state = .ended
        let refused = LoginRefused(reason: reason, detail: detail, alternateServer: nil, epoch: 0)
        context.writeAndFlush(wrapOutboundOut(.loginRefused(refused))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func end(_ context: ChannelHandlerContext, _ goodbye: Goodbye) {
        state = .ended
        context.writeAndFlush(wrapOutboundOut(.goodbye(goodbye))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(after: error)
    }
}
