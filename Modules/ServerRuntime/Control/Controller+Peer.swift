import ActivationPolicy
import Foundation
import Licensing
import Logging
import NIOCore
import NIOPosix
import PairNode
import PairModel
import Wire

/// The peer link: the primary dials with a jittered, bounded backoff; the secondary accepts;
/// an authenticated connection feeds the link monitor and carries the policy's frames, the
/// licence and replication.
extension Controller {
    /// `ticket`: an accepted connection's standing on the peer port (nil when dialled).
    func makePeerHandler(remote: String, ticket: ConnectionTicket? = nil) -> PeerChannelHandler {
        nextPeerConnectionId += 1
        let handshake = PeerHandshake(role: settings.role, keys: keys, clientEndpoint: advertisedEndpoint)
        return PeerChannelHandler(controller: self, handshake: handshake, id: nextPeerConnectionId, remote: remote, ticket: ticket)
    }

    // MARK: Dialling (the primary)

    func dial() {
        guard settings.role == .primary, let address = settings.peerAddress, peer == nil, !dialing, !shuttingDown else { return }
        dialing = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        let loop = self.loop
        // Connected on a thread (a blocking connect, bounded by 1 s) so that the socket lands on a
        // high descriptor: see `PeerSocket` for why that makes a killed primary's link close first.
        NIOThreadPool.singleton.runIfActive(eventLoop: loop) {
            try PeerSocket.connect(host: address.host, port: Int(address.port), timeout: .seconds(1))
        }
        .flatMap { descriptor in
            ClientBootstrap(group: loop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = bound.value.makePeerHandler(remote: address.description)
                        try bound.value.transport.addDialing(to: channel, address: address.description, logger: bound.value.logger)
                        try channel.pipeline.syncOperations.addWireHandlers(for: PeerMessage.self, configuration: .peer)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .withConnectedSocket(descriptor)
        }
        .hop(to: loop)
        .assumeIsolated()
        .whenComplete { result in
            let controller = bound.value
            controller.dialing = false
            if case .failure(let error) = result {
                controller.logger.debug("cannot reach the secondary at \(address): \(error)")
                controller.scheduleRedial()
            }
        }
    }

    /// Tries again after a delay that doubles up to 2 s, with ±20 % jitter so two primaries
    /// restarted together do not dial in step.
    func scheduleRedial() {
        guard settings.role == .primary, !shuttingDown, redialTask == nil else { return }
        let jitter = Double.random(in: 0.8...1.2)
        let delay = Duration.nanoseconds(Int64(Double(redialDelay.nanoseconds) * jitter))
        redialDelay = min(redialDelay * 2, .seconds(2))
        redialTask = loop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanoseconds)) { [self] in
            redialTask = nil
            dial()
        }
    }

    // MARK: An authenticated connection

    /// `handshake`: how long the connection's opening took (it bounds the link's round trip).
    func peerEstablished(_ handler: PeerChannelHandler, peer: PeerHandshake.Peer, handshake: Duration = .zero) {
        loop.preconditionInEventLoop()
        if let old = self.peer, old !== handler {
            logger.notice("a new peer connection replaces the old one")
            old.close(Goodbye(reason: .superseded, detail: "a newer connection from the peer replaces this one"))
            peerClosed(old)
        }
        self.peer = handler
        peerInfo = peer
        lastPeerId = peer.nodeId
        redialDelay = .milliseconds(50)
        if let endpoint = peer.clientEndpoint, endpoint != peerClientEndpointLearned {
            peerClientEndpointLearned = endpoint
            try? stateStore.setFact("peer-client-endpoint", endpoint.description)
        }
        logger.info("peer link authenticated with \(peer.role) \(peer.nodeId) (epoch \(peer.epoch))", metadata: ["peer": "\(peer.nodeId)"])
        feed(.peerConnected(handshake: handshake))
        if case .own(let verified?) = licence {
            sendPeer(.licence(LicenceTransfer(text: verified.text)))
        }
    }

    func peerClosed(_ handler: PeerChannelHandler) {
        guard handler === peer else { return }
        peer = nil
        peerInfo = nil
        feed(.peerDisconnected)
        scheduleRedial()
    }

    func peerFrame(_ message: PeerMessage, from handler: PeerChannelHandler) {
        guard handler === peer else { return }
        if case .own = licence {} else { licence.primaryContact(at: clock.wallNow) }
        // Every frame is a sign of life; these four are the node's to decide.
        switch message {
        case .heartbeat: feed(.peerSignal(.heartbeat))
        case .stateAnnouncement(let announcement):
            peerRevision = announcement.configRevision
            feed(.peerSignal(.status(PeerStatus(announcement))))
        case .activationRequest(let request): feed(.peerSignal(.activationRequest(request)))
        case .clientCountReport(let report): feed(.peerSignal(.clientCount(report)))
        default: feed(.peerSignal(.other))
        }
        switch message {
        case .heartbeat, .stateAnnouncement, .activationRequest, .clientCountReport:
            break
        case .licence(let transfer):
            licenceReceived(transfer)
        case .licenceReceipt(let receipt):
            if receipt.accepted {
                logger.info("the secondary holds licence \(receipt.licenceId)")
            } else {
                logger.error("the secondary refused licence \(receipt.licenceId): \(receipt.detail)")
            }
        case .configChange, .configSnapshot, .configAck, .catchUpRequest, .configDivergence:
            inbox.append(message)
            processReplicationInbox()
        case .goodbye(let goodbye):
            logger.notice("the peer closes the link: \(goodbye.reason): \(goodbye.detail)")
            handler.close(nil)
        case .hello, .auth:
            logger.warning("unexpected \(message.messageType) on an established peer link: closing it")
            handler.close(Goodbye(reason: .protocolError, detail: "\(message.messageType) after the handshake"))
        }
    }

    private func licenceReceived(_ transfer: LicenceTransfer) {
        let receipt = licence.receive(transfer.text, at: clock.wallNow, files: LicenceFileStore(directory: settings.dataDirectory), logger: logger)
        sendPeer(.licenceReceipt(receipt))
        updateActivationPermission()
    }
}
