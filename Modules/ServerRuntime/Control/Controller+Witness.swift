import NIOCore
import NIOPosix
import PairModel
import PairNode
import WitnessClient

/// The witness's I/O (issue 29): the node's requests carried out by `EtcdWitness` off the
/// control loop, their answers fed back as inputs; the peer's client port checked after a
/// closed link. Every request is answered (a failure is an answer), so the node never waits
/// on one forever.
extension Controller {
    func askWitness(_ request: WitnessRequest) {
        guard let witnessClient else { return }  // only a node configured with a witness asks
        let sentAt = clock.now
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.makeFutureWithTask { await witnessClient.perform(request) }
            .assumeIsolated()
            .whenSuccess { reply in
                let controller = bound.value
                if reply != controller.node.witnessStatus(at: controller.clock.now)?.lastReply {
                    controller.logger.info("witness: \(request) answered \(reply)")
                }
                controller.feed(.witnessReply(reply, sentAt: sentAt))
            }
    }

    /// After a closed link: does the peer's client port refuse (its process is gone)? A
    /// connection that opens, times out or fails otherwise says it may live.
    func checkPeerPort() {
        let bound = NIOLoopBound(self, eventLoop: loop)
        guard let endpoint = peerClientEndpoint else {
            loop.execute { bound.value.feed(.peerPortChecked(refused: false)) }
            return
        }
        ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(200))
            .connect(host: endpoint.host, port: Int(endpoint.port))
            .assumeIsolated()
            .whenComplete { result in
                let refused: Bool
                switch result {
                case .success(let channel):
                    channel.close(promise: nil)
                    refused = false
                case .failure(let error):
                    refused = EtcdWitness.isRefused(error)
                }
                bound.value.feed(.peerPortChecked(refused: refused))
            }
    }

    /// The witness in one line, for status: who holds the key, the lease left, reachability.
    var witnessSummary: String? {
        guard witnessClient != nil, let status = node.witnessStatus(at: clock.now) else { return nil }
        let reach: String
        switch status.lastReply {
        case .refused?: reach = "refusing (etcd down)"
        case .unreachable?: reach = "unreachable"
        case nil: reach = "not asked yet"
        default: reach = "reachable"
        }
        if status.holding, let left = status.leaseLeft {
            return "\(reach), this server holds the key, lease \(String(format: "%.1f", Double(left.milliseconds) / 1000)) s left"
        }
        if let epoch = status.peerEpoch { return "\(reach), the peer holds the key (epoch \(epoch))" }
        return "\(reach), key not held here"
    }

    func publishWitness() {
        guard witnessClient != nil, let status = node.witnessStatus(at: clock.now) else { return }
        let reachable = status.lastReply.map { $0 != .refused && $0 != .unreachable } ?? false
        metrics.witness(holding: status.holding, reachable: reachable, leaseLeft: status.leaseLeft)
    }
}
