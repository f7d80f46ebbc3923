import AdminProtocol
import ConfigModel
import ConfigStore
import Foundation
import NIOCore
import PairModel
import Wire

/// One connection on the admin port: hello, SCRAM, then numbered requests, each answered and
/// audited. A session whose login fails is closed; requests are served one at a time, in order.
///
/// Every attempt is audited, refused ones included (through the refusal budget, so a stranger
/// cannot fill the disk): a login, a login abandoned after its challenge, a frame sent before
/// logging in. The throttle is asked when the proof arrives, not only at the start, so parallel
/// handshakes get no more guesses than sequential ones. The account's role is looked up for
/// every request: removing or demoting an administrator takes effect in their open sessions.
final class AdminSessionHandler: ChannelInboundHandler {
    typealias InboundIn = AdminMessage
    typealias OutboundOut = AdminMessage

    private enum State {
        case awaitingHello
        case awaitingStart
        case awaitingProof(ScramServer, role: AdminRole?, verifier: String)
        /// `verifier`: the stored verifier the login was checked against; a new one (a password
        /// change) or none (the account removed) ends the session at its next request.
        case loggedIn(user: String, verifier: String)
        case ended
    }

    private let service: AdminService
    private let ticket: ConnectionTicket?
    private var state = State.awaitingHello
    private var source = "unknown"
    /// Requests wait their turn: a switchover's answer must precede the next status.
    private var queue: [AdminRequest] = []
    private var busy = false

    init(service: AdminService, ticket: ConnectionTicket? = nil) {
        self.service = service
        self.ticket = ticket
    }

    func channelActive(context: ChannelHandlerContext) {
        source = ticket?.source ?? sourceKey(context.remoteAddress)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (state, unwrapInboundIn(data)) {
        case (.awaitingHello, .hello(let hello)):
            guard hello.negotiatedVersion() != nil else {
                service.refused(user: "-", source: source, action: "hello", result: "refused: unsupported protocol versions")
                end(context, Goodbye(reason: .unsupportedVersion, detail: "this server speaks protocol versions \(WireProtocol.supportedVersions)"))
                return
            }
            state = .awaitingStart
            context.writeAndFlush(wrapOutboundOut(.hello(Hello(nodeId: "vcom-server", software: "vcom-server admin"))), promise: nil)
        case (.awaitingStart, .authStart(let start)):
            guard start.username.utf8.count <= AdminService.maximumUsernameBytes else {
                service.refused(
                    user: start.username, source: source, action: "login",
                    result: "refused: a user name of \(start.username.utf8.count) bytes (at most \(AdminService.maximumUsernameBytes))")
                end(context, Goodbye(reason: .protocolError, detail: "user names are at most \(AdminService.maximumUsernameBytes) bytes"))
                return
            }
            if refuseIfLocked(context, account: start.username) { return }
            guard !start.clientNonce.isEmpty, start.clientNonce.count <= 256, !start.clientNonce.contains(",") else {
                service.refused(user: start.username, source: source, action: "login", result: "refused: a malformed client nonce")
                end(context, Goodbye(reason: .protocolError, detail: "the client nonce must be 1 to 256 printable characters without a comma"))
                return
            }
            let (verifier, role) = service.account(start.username)
            let server = ScramServer(username: start.username, clientNonce: start.clientNonce, verifier: verifier, decoyKey: service.decoyKey)
            state = .awaitingProof(server, role: verifier == nil ? nil : role, verifier: verifier?.text ?? "")
            let challenge = AdminAuthChallenge(nonce: server.nonce, salt: ByteBuffer(bytes: server.salt), iterations: UInt32(server.iterations))
            context.writeAndFlush(wrapOutboundOut(.authChallenge(challenge)), promise: nil)
        case (.awaitingProof(let server, let role, let verifier), .authProof(let proof)):
            // Asked again now, and atomically with the check: other attempts may have locked
            // the account since this one started, or be checked at this very moment.
            let checked = service.checkProof(source: source, account: server.username) { () -> (value: Result<[UInt8], Scram.Failure>, succeeded: Bool) in
                let result = server.check(proof: Array(proof.proof.readableBytesView))
                if case .success = result, role != nil { return (result, true) }
                return (result, false)
            }
            guard let outcome = checked.value else {
                refuseLocked(context, account: server.username, wait: checked.lockedFor ?? 1)
                return
            }
            switch outcome {
            case .success(let signature) where role != nil:
                let role = role!
                state = .loggedIn(user: server.username, verifier: verifier)
                ticket?.authenticated()
                service.loginSucceeded(source: source, account: server.username, role: role)
                // Requests that arrive meanwhile wait behind the acceptance.
                busy = true
                let service = service
                let promise = context.eventLoop.makePromise(of: RuntimeStatus?.self)
                promise.completeWithTask { await service.operations.status() }
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
            abandoned()
            state = .ended
            context.close(promise: nil)
        case (.ended, _):
            break
        case (.loggedIn, let message):
            end(context, Goodbye(reason: .protocolError, detail: "unexpected \(message.messageType) at this point of the admin session"))
        case (_, let message):
            service.refused(user: "-", source: source, action: "before login", result: "refused: unexpected \(message.messageType)")
            end(context, Goodbye(reason: .protocolError, detail: "unexpected \(message.messageType) at this point of the admin session"))
        }
    }

    /// Refuses the attempt without looking at a password when the account is locked from this
    /// source, or the source is; true when it did.
    private func refuseIfLocked(_ context: ChannelHandlerContext, account: String) -> Bool {
        guard let wait = service.lockout(source: source, account: account) else { return false }
        refuseLocked(context, account: account, wait: wait)
        return true
    }

    private func refuseLocked(_ context: ChannelHandlerContext, account: String, wait: TimeInterval) {
        let seconds = Int(wait.rounded(.up))
        service.refused(user: account, source: source, action: "login", result: "refused: locked out for \(seconds) s")
        refuse(context, .notAuthorized, "too many failed logins for this account from this address, or from this address; try again in \(seconds) s")
    }

    /// A login that got its challenge and then went away is an attempt too (an offline
    /// attacker gathering salts and iteration counts would do exactly that).
    private func abandoned() {
        if case .awaitingProof(let server, _, _) = state {
            service.refused(user: server.username, source: source, action: "login", result: "abandoned after the challenge")
        }
    }

    private func next(_ context: ChannelHandlerContext) {
        guard !busy, case .loggedIn(let user, let verifier) = state, !queue.isEmpty else { return }
        let request = queue.removeFirst()
        let current = service.account(user)
        guard let role = current.role, let stored = current.verifier, stored.text == verifier else {
            service.record(user: user, source: source, action: "request \(request.command)", result: "refused: the account was removed or its password changed")
            end(context, Goodbye(reason: .accessRevoked, detail: "this account was removed or its password changed: log in again"))
            return
        }
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

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Five minutes without a frame from a logged-in administrator (IdleStateHandler).
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, case .loggedIn = state {
            end(context, Goodbye(reason: .idleTimeout, detail: "nothing heard for five minutes"))
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        abandoned()
        state = .ended
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(after: error)
    }
}
