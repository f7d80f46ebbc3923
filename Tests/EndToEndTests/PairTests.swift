import ClientRuntime
import Foundation
import Testing
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// The pair as operators run it: real `vcom-server` processes on loopback, clients through
/// the client library (issue 10's proof, 1 to 6). Each test kills its processes, whatever
/// happens, and removes its files.
@Suite(.serialized) struct PairTests {
    @Test func aNormalPair_primaryServesSecondaryRefusesAndHoldsTheConfiguration() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        let primary = pair.primary!
        let secondary = pair.secondary!
        #expect(await eventually { primary.isActive && secondary.isStandby }, "\(pair.logs)")
        // The secondary holds the primary's configuration once the first sync is done.
        #expect(await eventually { secondary.configRevision == primary.configRevision && primary.configRevision > 0 }, "\(pair.logs)")

        let direct = TestClient(servers: [secondary.clientEndpoint], username: "op1")
        defer { direct.stop() }
        #expect(await direct.waitLoggedIn(to: primary.clientEndpoint), "\(direct.events)\n\(pair.logs)")
        let refusal = direct.events.compactMap { event -> RefusalReason? in
            if case .refused(let server, let reason, _) = event, server == secondary.clientEndpoint { return reason }
            return nil
        }
        #expect(refusal.first == .notActiveServer, "the secondary refused with 'not the active server' and pointed at the primary")
        #expect(await eventually { primary.loggedInClients == 1 })
    }

    @Test func killingThePrimary_clientsMoveToTheSecondaryAndTheRestartedPrimaryWaitsForAuthorization() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby })
        #expect(await eventually { pair.secondary.configRevision == pair.primary.configRevision })
        let clients = (0..<4).map { TestClient(servers: [pair.primary.clientEndpoint], username: "op\($0)") }
        defer { clients.forEach { $0.stop() } }
        for client in clients { #expect(await client.waitLoggedIn(to: pair.primary.clientEndpoint)) }
        let secondaryEndpoint = pair.secondary.clientEndpoint

        pair.primary.kill(SIGKILL)
        #expect(await pair.primary.waitForExit() != nil)
        #expect(await eventually { pair.secondary.isActive }, "\(pair.logs)")
        for client in clients {
            #expect(await client.waitLoggedIn(to: secondaryEndpoint), "\(client.events)\n\(pair.logs)")
        }
        #expect(pair.secondary.log.contains("incident S"), "the failover left an incident")

        // The primary comes back: it catches up and waits for authorization.
        try await pair.startPrimary()
        #expect(await eventually { pair.primary.isAwaitingAuthorization }, "\(pair.logs)")
        #expect(await eventually { pair.primary.configRevision == pair.secondary.configRevision })
        let late = TestClient(servers: [pair.primary.clientEndpoint], username: "op5")
        defer { late.stop() }
        #expect(await late.waitLoggedIn(to: secondaryEndpoint), "the primary refuses logins; the client goes to the secondary")
        #expect(late.events.contains { if case .refused(_, .notActiveServer, _) = $0 { true } else { false } })
    }

    @Test func sigtermOnTheServingPrimary_handsItsClientsToTheSecondaryAndExitsZero() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby })
        let clients = (0..<3).map { TestClient(servers: [pair.primary.clientEndpoint], username: "op\($0)") }
        defer { clients.forEach { $0.stop() } }
        for client in clients { #expect(await client.waitLoggedIn(to: pair.primary.clientEndpoint)) }

        pair.primary.kill(SIGTERM)
        #expect(await pair.primary.waitForExit() == 0, "a graceful shutdown exits 0\n\(pair.logs)")
        #expect(await eventually { pair.secondary.isActive }, "\(pair.logs)")
        for client in clients {
            #expect(await client.waitLoggedIn(to: pair.secondary.clientEndpoint), "\(client.events)\n\(pair.logs)")
            #expect(client.events.contains { if case .redirected = $0 { true } else { false } }, "told to move, not cut off: \(client.events)")
        }
    }
}
