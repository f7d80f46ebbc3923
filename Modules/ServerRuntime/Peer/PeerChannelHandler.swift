import HealthMonitor
import Logging
import NIOCore
import PairModel
import Wire

/// One peer-link connection, on the control loop: the handshake first (`PeerHandshake`),
/// then every frame goes to the controller. A connection that has not proved itself within
/// five seconds is closed, so garbage on the peer port costs nothing.
final class PeerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    private let controller: Controller
    private var handshake: PeerHandshake
    private(set) var established = false
    private var context: ChannelHandlerContext?
    let id: Int
    let remote: String
    private let ticket: ConnectionTicket?
    /// When the connection became active: the handshake's duration bounds the link's round trip.
    private var activeAt: MonotonicTime?

    init(controller: Controller, handshake: PeerHandshake, id: Int, remote: String, ticket: ConnectionTicket? = nil) {
        self.controller = controller
        self.handshake = handshake
        self.id = id
        self.remote = remote
        self.ticket = ticket
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        activeAt = controller.clock.now
        context.writeAndFlush(wrapOutboundOut(handshake.hello(nodeId: controller.settings.serverId, epoch: controller.node.epoch)), promise: nil)
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(5)) { [weak self] in
            guard let self, !self.established else { return }
            self.fail(PeerHandshake.Failure(reason: .authenticationFailed, detail: "no proof of the cluster secret within 5 s"))
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard established else {
            do {
                let (reply, peer) = try handshake.received(message)
                if let reply { context.writeAndFlush(wrapOutboundOut(reply), promise: nil) }
                if let peer {
                    established = true
                    ticket?.authenticated()
                    let handshake = activeAt.map { controller.clock.now - $0 } ?? .zero
                    controller.peerEstablished(self, peer: peer, handshake: handshake)
                }
            } catch {
                fail(error)
            }
            return
        }
        controller.peerFrame(message, from: self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        controller.peerClosed(self)
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        controller.logger.warning("peer link error from \(remote): \(error)")
        context.close(after: error)
    }

    /// Sends a frame (flushed at once unless `flush` is false).
    func send(_ message: PeerMessage, flush: Bool = true) {
        guard let context else { return }
        if flush {
            context.writeAndFlush(wrapOutboundOut(message), promise: nil)
        } else {
            context.write(wrapOutboundOut(message), promise: nil)
        }
    }

    func flush() { context?.flush() }

    var channel: Channel? { context?.channel }

    func close(_ goodbye: Goodbye?) {
        guard let context else { return }
        if let goodbye {
            context.writeAndFlush(wrapOutboundOut(.goodbye(goodbye))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    private func fail(_ failure: PeerHandshake.Failure) {
        if let ticket {
            // A stranger at the peer port: counted, and logged once a minute per source.
            ticket.strangers.refusals.refused(
                port: "peer", source: ticket.source, reason: "handshake", detail: failure.detail, level: .warning)
        } else {
            controller.logger.warning("peer link to \(remote) refused: \(failure.detail)", metadata: ["reason": "\(failure.reason)"])
        }
        close(Goodbye(reason: failure.reason, detail: failure.detail))
    }
}
