import Logging
import NIOCore
import PairModel
import Wire

/// One client connection on the server: the hello, the login, heartbeats, keys and media,
/// and the end of the session (a loss, or a deliberate departure). Lives on its channel's
/// event loop; the shared logic is `ClientService`.
final class ClientSessionHandler: ChannelDuplexHandler {
    typealias InboundIn = ClientMessage
    typealias OutboundIn = ClientMessage
    typealias OutboundOut = ClientMessage

    private enum State {
        case awaitingHello
        case awaitingLogin
        case loggingIn
        case loggedIn(ClientSessionRef)
        /// A client of the other server, waiting to hear that this one activates.
        case watching
        case ended
    }

    private let service: ClientService
    /// Its standing on the port: a stranger until its login or watch is accepted.
    private let ticket: ConnectionTicket?
    private var state = State.awaitingHello
    private var outlet: MediaOutlet?
    private var context: ChannelHandlerContext?
    private var sweeper: IdleSweeper?
    private var lastRead = MonotonicTime.zero
    /// The keys the login said are held, applied once it is accepted.
    private var pendingKeys: [KeyChange] = []

    init(service: ClientService, ticket: ConnectionTicket? = nil) {
        self.service = service
        self.ticket = ticket
    }

    func handlerAdded(context: ChannelHandlerContext) {
        outlet = MediaOutlet(channel: context.channel)
        self.context = context
        lastRead = service.clock.now
        sweeper = service.sweepers.sweeper(for: context.eventLoop, clock: service.clock)
        sweeper?.add(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweeper?.remove(self)
        sweeper = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead = service.clock.now
        let message = unwrapInboundIn(data)
        switch (state, message) {
        case (.awaitingHello, .hello(let hello)):
            guard hello.negotiatedVersion() != nil else {
                end(context, Goodbye(reason: .unsupportedVersion, detail: "this server speaks protocol versions \(WireProtocol.supportedVersions)"))
                return
            }
            state = .awaitingLogin
            context.writeAndFlush(wrapOutboundOut(.hello(Hello(nodeId: service.serverId, software: "vcom-server"))), promise: nil)
        case (.awaitingLogin, .watch(let request)):
            startWatching(request, context: context)
        case (.watching, .heartbeat(let beat)):
            context.writeAndFlush(wrapOutboundOut(.heartbeat(beat)), promise: nil)
        case (.awaitingLogin, .login(let request)), (.watching, .login(let request)):
            if case .watching = state { stopWatching(context) }
            guard let outlet else {
                end(context, Goodbye(reason: .shuttingDown, detail: "this session cannot be served (no frame encoder)"))
                return
            }
            state = .loggingIn
            pendingKeys = request.pressedKeys
            let source = ticket?.source ?? sourceKey(context.channel.remoteAddress)
            service.login(request, outlet: outlet, source: source).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                self.loginFinished(result, context: context)
            }
        case (.loggedIn, .heartbeat(let beat)):
            context.writeAndFlush(wrapOutboundOut(.heartbeat(beat)), promise: nil)
        case (.loggedIn(let session), .keyChange(let change)):
            if let outlet, service.allows(change, username: session.username) {
                service.router.key(change, session: session.id, outlet: outlet)
            }
        case (.loggedIn(let session), .media(let frame)):
            let outlets = service.router.recipients(of: session.id)
            guard !outlets.isEmpty else { return }
            // Framed once for all its listeners.
            var bytes = context.channel.allocator.buffer(capacity: FrameHeader.size + frame.audio.readableBytes + 16)
            do {
                try service.mediaCodec.encode(.media(frame), into: &bytes)
            } catch {
                end(context, Goodbye(error: error))
                return
            }
            MediaRouter.send(bytes, to: outlets, from: context.eventLoop)
        case (.loggedIn(let session), .logout):
            // Its token must not log in again (on either server): the connection closes once
            // that is written, so a client that saw the close cannot get in ahead of it.
            finish(session, lost: false)
            guard let revoked = service.loggedOut(session) else {
                context.close(promise: nil)
                return
            }
            revoked.hop(to: context.eventLoop).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case (_, .goodbye):
            if case .loggedIn(let session) = state { finish(session, lost: true, why: "the client said goodbye") }
            if case .watching = state { stopWatching(context) }
            context.close(promise: nil)
        case (.loggingIn, _), (.ended, _):
            break
        case (.awaitingHello, _):
            end(context, Goodbye(reason: .protocolError, detail: "the first frame must be a hello"))
        default:
            end(context, Goodbye(reason: .protocolError, detail: "unexpected \(message.messageType) at this point of the session"))
        }
    }

    /// A watcher holds no seat and no session; it needs a valid token of this pair, and is
    /// allowed a longer silence than a session (its client sends a heartbeat every 10 s).
    private func startWatching(_ request: Watch, context: ChannelHandlerContext) {
        guard let outlet else { return }
        guard case .watching(let announced) = service.watch(request, outlet: outlet) else {
            end(context, Goodbye(reason: .authenticationFailed, detail: "the watch token is not valid"))
            return
        }
        state = .watching
        ticket?.authenticated()
        if let epoch = announced {
            context.writeAndFlush(wrapOutboundOut(.activated(Activated(epoch: epoch))), promise: nil)
        }
    }

    private func stopWatching(_ context: ChannelHandlerContext) {
        service.unwatch(context.channel)
    }

    /// Called by the loop's sweeper: silence for the client's heartbeat timeout (a watcher's
    /// own, longer one) ends the connection; a lost session counts in the census.
    func checkIdle(at now: MonotonicTime) {
        guard let context else { return }
        let timeout: Duration
        switch state {
        case .watching: timeout = ClientService.watchTimeout
        case .ended: return
        default: timeout = service.sessionTimeout
        }
        guard now - lastRead >= timeout else { return }
        if case .loggedIn(let session) = state { finish(session, lost: true, why: "silent for \(timeout)") }
        if case .watching = state { service.unwatch(context.channel) }
        state = .ended
        context.close(promise: nil)
    }

    private func loginFinished(_ result: Result<ClientService.LoginOutcome, Error>, context: ChannelHandlerContext) {
        guard case .loggingIn = state else {
            // The connection went away during a slow check: give the seat back.
            if case .success(.accepted(_, let session)) = result { service.ended(session, lost: false) }
            return
        }
        switch result {
        case .success(.accepted(let accepted, let session)):
            state = .loggedIn(session)
            ticket?.authenticated()
            if let outlet {
                for change in pendingKeys where service.allows(change, username: session.username) {
                    service.router.key(change, session: session.id, outlet: outlet)
                }
            }
            pendingKeys = []
            context.writeAndFlush(wrapOutboundOut(.loginAccepted(accepted)), promise: nil)
        case .success(.refused(let refused)):
            // The client learns why, then goes elsewhere: the connection is not kept.
            state = .ended
            context.writeAndFlush(wrapOutboundOut(.loginRefused(refused))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .failure(let error):
            state = .ended
            service.logger.error("login check failed: \(error)")
            context.close(promise: nil)
        }
    }

    /// The runtime's commands (redirect, end) arrive as outbound user events.
    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let command = event as? SessionCommand else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        if case .loggedIn(let session) = state { finish(session, lost: false) }
        if case .watching = state { service.unwatch(context.channel) }
        state = .ended
        switch command {
        case .depart(let redirect):
            if let redirect {
                context.writeAndFlush(wrapOutboundOut(.redirect(redirect))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        case .end(let goodbye):
            context.writeAndFlush(wrapOutboundOut(.goodbye(goodbye))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        sweeper?.remove(self)
        sweeper = nil
        if case .loggedIn(let session) = state { finish(session, lost: true, why: "the connection closed") }
        if case .watching = state { service.unwatch(context.channel) }
        state = .ended
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Protocol errors were answered by WireErrorHandler; anything else ends the session.
        context.close(after: error)
    }

    private func finish(_ session: ClientSessionRef, lost: Bool, why: @autoclosure () -> String = "") {
        guard case .loggedIn = state else { return }
        state = .ended
        // Which session the census counts as lost, and why: at debug level (a failover ends
        // thousands at once).
        if lost { service.logger.debug("session \(session.id) of \(session.username) lost: \(why())") }
        service.ended(session, lost: lost)
    }

    private func end(_ context: ChannelHandlerContext, _ goodbye: Goodbye) {
        state = .ended
        context.writeAndFlush(wrapOutboundOut(.goodbye(goodbye))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
