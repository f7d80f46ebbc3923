import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import NIOPosix
import PairNode
import Testing
import TestSupport
import WitnessClient

#if canImport(Glibc)
import Glibc
#endif

/// EtcdWitness against a real etcd: the key held by one server at a time, its lease kept,
/// released, expired, and what a stopped or silent witness answers.
@Suite(.serialized) struct EtcdWitnessTests {
    func witness(_ id: String, _ urls: [String], ttl: Duration = .seconds(2)) -> EtcdWitness {
        EtcdWitness(
            configuration: .init(endpoints: urls, key: "/vcom/test-pair/active", serverId: id, leaseTTL: ttl, requestTimeout: .milliseconds(500)),
            logger: Logger(label: "test"))
    }

    @Test(.enabled(if: EtcdProcess.installed)) func oneHolderAtATime_keptReleasedAndExpired() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        try await etcd.waitReady()
        let a = witness("vcom-primary", [etcd.clientURL])
        let b = witness("vcom-secondary", [etcd.clientURL])
        #expect(await a.perform(.acquire(epoch: 2)) == .holding)
        #expect(await b.perform(.acquire(epoch: 3)) == .heldByPeer(epoch: 2), "the key names the holder and its epoch")
        #expect(await a.perform(.keepAlive) == .holding)
        #expect(await b.perform(.keepAlive) == .free, "b holds no lease")
        #expect(await a.perform(.release) == .free)
        #expect(await b.perform(.acquire(epoch: 3)) == .holding, "released: free for the other")
        #expect(await a.perform(.acquire(epoch: 4)) == .heldByPeer(epoch: 3))
        // b stops renewing: its lease (2 s) runs out in etcd, and a takes the key.
        let start = ContinuousClock.now
        var reply = WitnessReply.unreachable
        while ContinuousClock.now - start < .seconds(8) {
            reply = await a.perform(.acquire(epoch: 4))
            if reply == .holding { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        let waited = ContinuousClock.now - start
        #expect(reply == .holding, "the expired lease freed the key")
        #expect(waited >= .milliseconds(1500), "not before the lease's time to live: \(waited)")
        // b's keepalive now finds its lease gone and the key a's.
        #expect(await b.perform(.keepAlive) == .heldByPeer(epoch: 4))
        await a.shutdown()
        await b.shutdown()
    }

    /// The key's history follows the pair's epochs: once epoch 5 held it, a server under an
    /// older epoch cannot take it, even free (a stale holder cannot re-assert); the same or a
    /// later epoch can.
    @Test(.enabled(if: EtcdProcess.installed)) func aStaleEpochCannotTakeTheKey_evenFree() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        try await etcd.waitReady()
        let a = witness("vcom-primary", [etcd.clientURL])
        let b = witness("vcom-secondary", [etcd.clientURL])
        #expect(await b.perform(.acquire(epoch: 5)) == .holding)
        #expect(await b.perform(.release) == .free)
        #expect(await a.perform(.acquire(epoch: 4)) == .heldByPeer(epoch: 5), "epoch 4 has passed")
        #expect(await a.perform(.acquire(epoch: 5)) == .holding)
        #expect(await a.perform(.release) == .free)
        #expect(await b.perform(.acquire(epoch: 7)) == .holding)
        #expect(await b.perform(.release) == .free)
        #expect(await a.perform(.acquire(epoch: 6)) == .heldByPeer(epoch: 7))
        await a.shutdown()
        await b.shutdown()
    }

    @Test(.enabled(if: EtcdProcess.installed)) func aDeletedKeyIsNotHeld_evenWithTheLeaseAlive() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        try await etcd.waitReady()
        let a = witness("vcom-primary", [etcd.clientURL])
        #expect(await a.perform(.acquire(epoch: 2)) == .holding)
        // An operator deletes the key (etcd's gateway, as etcdctl del would).
        var request = URLRequest(url: URL(string: "\(etcd.clientURL)/v3/kv/deleterange")!)
        request.httpMethod = "POST"
        request.httpBody = Data(#"{"key":"\#(Data("/vcom/test-pair/active".utf8).base64EncodedString())"}"#.utf8)
        _ = try await URLSession.shared.data(for: request)
        #expect(await a.perform(.keepAlive) == .free, "the keepalive checks the key, not only the lease")
        await a.shutdown()
    }

    @Test(.enabled(if: EtcdProcess.installed)) func aStoppedWitnessRefuses_aSilentOneIsUnreachable() async throws {
        let etcd = try EtcdProcess()
        try await etcd.waitReady()
        let a = witness("vcom-primary", [etcd.clientURL])
        #expect(await a.perform(.acquire(epoch: 2)) == .holding)
        etcd.stop()
        #expect(await a.perform(.keepAlive) == .refused, "its port refuses: the process is gone")
        #expect(await a.perform(.acquire(epoch: 2)) == .refused)
        await a.shutdown()

        // A port that accepts and never answers (a hung host, a firewall that drops replies).
        let group = MultiThreadedEventLoopGroup.singleton
        let silent = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let port = silent.localAddress!.port!
        let b = witness("vcom-secondary", ["http://127.0.0.1:\(port)"])
        let start = ContinuousClock.now
        #expect(await b.perform(.acquire(epoch: 3)) == .unreachable)
        #expect(ContinuousClock.now - start < .seconds(3), "bounded by the request timeout")
        // Two endpoints, the first refusing: the second answers.
        await b.shutdown()
    }

    @Test(.enabled(if: EtcdProcess.installed)) func theNextEndpointIsTried_whenTheFirstRefuses() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        try await etcd.waitReady()
        let closed = try EtcdProcess.freePort()
        let a = witness("vcom-primary", ["http://127.0.0.1:\(closed)", etcd.clientURL])
        #expect(await a.perform(.acquire(epoch: 2)) == .holding)
        await a.shutdown()
    }
}
