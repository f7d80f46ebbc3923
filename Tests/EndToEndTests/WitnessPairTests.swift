import Foundation
import PairModel
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Issue 29 with real processes: a pair and a real etcd as its witness. The serving server
/// holds the key; a silent link with both servers reaching the witness never gives two active
/// servers; a frozen primary is replaced once its lease ran out; a killed one at once.
@Suite(.serialized, .enabled(if: EtcdProcess.installed)) struct WitnessPairTests {
    static let ttl = 2

    /// A pair whose peer link runs through a relay (to cut it silently), both servers with the
    /// witness; returns once the primary serves and holds the key.
    func start(_ etcd: EtcdProcess) async throws -> (TestPair, Relay) {
        let pair = try TestPair()
        let witness = ["--witness-etcd", etcd.clientURL, "--witness-lease-ttl-s", "\(Self.ttl)", "--witness-margin-ms", "500"]
        try await pair.startSecondary(extra: witness)
        let relay = try Relay(to: pair.secondary.peerEndpoint!)
        pair.secondaryPeerPort = relay.port
        try await pair.startPrimary(extra: witness)
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby }, "\(pair.logs)")
        #expect(await eventually(.seconds(5)) { pair.primary.metric("vcom_witness_holding") == 1 }, "\(pair.logs)")
        #expect(pair.secondary.metric("vcom_witness_holding") == 0)
        return (pair, relay)
    }

    @Test func aCutLinkWithBothReachingTheWitness_neverTwoActive() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        try await etcd.waitReady()
        let (pair, relay) = try await start(etcd)
        defer { pair.stop(); relay.stop() }
        try relay.shape("stall")
        // Watch both for three lease times: the secondary must never serve.
        let until = ContinuousClock.now + .seconds(Self.ttl * 3)
        var bothActive = 0
        while ContinuousClock.now < until {
            if pair.primary.isActive && pair.secondary.isActive { bothActive += 1 }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(bothActive == 0, "\(pair.logs)")
        #expect(pair.primary.isActive && pair.secondary.isStandby, "\(pair.logs)")
        #expect(pair.secondary.log.contains("taking over once the witness's key is held"), "\(pair.secondary.log.suffix(2000))")
        #expect(pair.primary.metric("vcom_witness_holding") == 1)
        // vcom-admin status says who holds the key.
        let status = try await admin(["status"], pair: pair)
        #expect(status.output.contains("witness: reachable, this server holds the key"), "\(status.output)")
        #expect(status.output.contains("witness: reachable, the peer holds the key"), "\(status.output)")
        let json = try await admin(["status", "--json"], pair: pair)
        let rows = (json.json?["servers"] as? [[String: Any]]) ?? []
        let witnesses = rows.compactMap { ($0["status"] as? [String: Any])?["witness"] as? String }
        #expect(witnesses.contains { $0.contains("this server holds the key") }, "\(json.output)")
        #expect(witnesses.contains { $0.contains("the peer holds the key") }, "\(json.output)")
        // The status page's document says it too.
        let page = try #require(httpGet(pair.primary.metricsEndpoint!, "/status.json"))
        #expect(page.body.contains(#""witness":"reachable, this server holds the key"#), "\(page.body)")
    }

    @Test func aFrozenPrimary_theSecondaryServesAfterTheLease_andTheResumedPrimaryStops() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        try await etcd.waitReady()
        let (pair, relay) = try await start(etcd)
        defer { pair.stop(); relay.stop() }
        let frozen = ContinuousClock.now
        pair.primary.kill(SIGSTOP)
        #expect(await eventually(.seconds(10)) { pair.secondary.isActive }, "\(pair.logs)")
        let waited = ContinuousClock.now - frozen
        #expect(waited >= .seconds(Self.ttl) - .milliseconds(800), "not before the primary's lease could run out: \(waited)")
        #expect(waited <= .seconds(Self.ttl) + .seconds(3), "\(waited)")
        #expect(await eventually(.seconds(3)) { pair.secondary.metric("vcom_witness_holding") == 1 })
        pair.primary.kill(SIGCONT)
        // Resumed, it finds its lease over by its own clock with the link down: it stops.
        #expect(await eventually(.seconds(5)) { !pair.primary.isActive }, "\(pair.logs)")
        #expect(pair.primary.log.contains("witness lease lost") || pair.primary.log.contains("not serving"), "\(pair.primary.log.suffix(2000))")
    }

    @Test func aKilledPrimary_noLeaseWait() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        try await etcd.waitReady()
        let (pair, relay) = try await start(etcd)
        defer { pair.stop(); relay.stop() }
        let killed = ContinuousClock.now
        pair.primary.kill(SIGKILL)
        #expect(await eventually(.seconds(5)) { pair.secondary.isActive }, "\(pair.logs)")
        let waited = ContinuousClock.now - killed
        #expect(waited < .seconds(Self.ttl), "a crash (link closed, port refused) costs no lease wait: \(waited)")
        // It takes the key once the dead primary's lease has run out.
        #expect(await eventually(.seconds(Double(Self.ttl) + 4)) { pair.secondary.metric("vcom_witness_holding") == 1 }, "\(pair.secondary.log.suffix(2000))")
    }

    @Test func theWitnessKilledWithTheLinkUp_changesNothing() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        try await etcd.waitReady()
        let (pair, relay) = try await start(etcd)
        defer { pair.stop(); relay.stop() }
        etcd.stop()
        try await Task.sleep(for: .seconds(Self.ttl * 2))
        #expect(pair.primary.isActive && pair.secondary.isStandby, "\(pair.logs)")
        #expect(await eventually(.seconds(3)) { pair.primary.metric("vcom_witness_reachable") == 0 })
    }
}
