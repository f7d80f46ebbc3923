import ActivationPolicy
import ClientRuntime
import ConfigModel
import ConfigStore
import Foundation
import NIOConcurrencyHelpers
import ServerRuntime
import Testing
import PairModel
import Wire

/// The pair in one process, over real sockets: what needs the runtime's own API.
@Suite(.serialized) struct RuntimeScenarioTests {
    @Test func aConfigurationChangeOnThePrimaryAppearsOnTheSecondary() async throws {
        let pair = try InProcessPair()
        try await pair.start()
        let records = try await pair.primary.write([.putPartyLine(PartyLine(name: "Tower")), .setSetting(key: "site.name", value: "Harbour")])
        let revision = try #require(records.last?.revision)
        #expect(await eventually { await pair.secondary.status()?.configRevision == revision })
        #expect(pair.secondary.store.configuration.partyLine("Tower") != nil)
        #expect(pair.secondary.store.head == pair.primary.store.head, "the same history, chain included")
        #expect(await eventually { await pair.primary.status()?.replicationLag == 0 })
        await pair.shutdown()
    }

    @Test func aPlannedSwitchoverMovesClientsBothWaysWithNoIncident() async throws {
        let pair = try InProcessPair()
        try await pair.start()
        let clients = (0..<3).map { RecordingClient([pair.primary.clientAddress], username: "op\($0)") }
        for client in clients { #expect(await client.waitLoggedIn(to: pair.primary.clientAddress)) }
        #expect(await eventually { await pair.primary.status()?.replicationLag == 0 })

        #expect(await pair.primary.switchover(acknowledging: nil) == .accepted("switchover to the secondary started"))
        #expect(await pair.secondary.waitForState(.active, timeout: .seconds(10)))
        for client in clients {
            #expect(await client.waitLoggedIn(to: pair.secondary.clientAddress), "\(client.events)")
            #expect(client.events.contains { if case .redirected(_, _, .switchover) = $0 { true } else { false } }, "redirected, not dropped")
        }
        #expect(await pair.secondary.status()?.activationIncident == nil, "a planned switchover is not a failover")
        #expect(await pair.primary.status()?.state == .standby)

        #expect(await eventually { await pair.secondary.status()?.replicationLag == 0 })
        let back = await pair.secondary.switchover(acknowledging: nil)
        #expect(back == .accepted("switchover to the primary started"))
        #expect(await pair.primary.waitForState(.active, timeout: .seconds(10)))
        for client in clients { #expect(await client.waitLoggedIn(to: pair.primary.clientAddress)) }
        clients.forEach { $0.connection.stop() }
        await pair.shutdown()
    }

    @Test func afterAFailoverTheSwitchBackMustNameTheIncident_andRedirectsTheClients() async throws {
        let pair = try InProcessPair()
        try await pair.start()
        let clients = (0..<3).map { RecordingClient([pair.primary.clientAddress], username: "op\($0)") }
        for client in clients { #expect(await client.waitLoggedIn(to: pair.primary.clientAddress)) }

        await pair.primary.stopAbruptly()  // kill -9
        #expect(await pair.secondary.waitForState(.active, timeout: .seconds(10)))
        for client in clients { #expect(await client.waitLoggedIn(to: pair.secondary.clientAddress), "\(client.events)") }
        let incident = try #require(await pair.secondary.status()?.activationIncident)

        try await pair.startPrimary()
        #expect(await pair.primary.waitForState(.awaitingAuthorization, timeout: .seconds(10)))
        #expect(await eventually { await pair.secondary.status()?.replicationLag == 0 })
        guard case .refused(let reason) = await pair.secondary.switchover(acknowledging: nil) else {
            Issue.record("a switch back naming no incident was accepted")
            return
        }
        #expect(reason.contains("must acknowledge it"))
        #expect(await pair.secondary.switchover(acknowledging: incident) == .accepted("switchover to the primary started"))
        #expect(await pair.primary.waitForState(.active, timeout: .seconds(10)))
        for client in clients {
            #expect(await client.waitLoggedIn(to: pair.primary.clientAddress), "\(client.events)")
            #expect(client.events.contains { if case .redirected(_, _, .switchover) = $0 { true } else { false } })
        }
        let stored = try await pair.secondary.incidents()
        #expect(stored.first { $0.id == incident }?.acknowledgedAt != nil, "the switch back acknowledged the incident")
        clients.forEach { $0.connection.stop() }
        await pair.shutdown()
    }

    @Test func aDisabledOperatorsTokenIsRefusedOnBothServers() async throws {
        let pair = try InProcessPair()
        try await pair.start()
        let client = RecordingClient([pair.primary.clientAddress], username: "op1")
        #expect(await client.waitLoggedIn(to: pair.primary.clientAddress))
        let token = try #require(client.connection.token)
        client.connection.stop()

        var account = try #require(pair.primary.store.configuration.operator("op1"))
        account.enabled = false
        let records = try await pair.primary.write([.putOperator(account)])
        // (The client's logout revoked its token too: a write of its own, before or after.)
        #expect(await eventually { await pair.secondary.status()?.configRevision ?? 0 >= records.last!.revision })
        for server in [pair.primary.clientAddress, pair.secondary.clientAddress] {
            let outcome = try await loginOnce(server, username: "op1", credential: .sessionToken(token))
            #expect(outcome == .refused(.accountDisabled) || (server == pair.secondary.clientAddress && outcome == .refused(.notActiveServer)))
        }
        // On the secondary the refusal is "not the active server" while the primary serves; make
        // it serve and try again.
        #expect(await pair.primary.switchover(acknowledging: nil) != .refused(""))
        #expect(await pair.secondary.waitForState(.active, timeout: .seconds(10)))
        #expect(try await loginOnce(pair.secondary.clientAddress, username: "op1", credential: .sessionToken(token)) == .refused(.accountDisabled))
        #expect(try await loginOnce(pair.secondary.clientAddress, username: "op2", credential: .password(InProcessPair.password)) == .accepted)
        await pair.shutdown()
    }

    @Test func theRuntimeRunsWithASubstitutedIncidentLog_andTheOtherModulesDoNotNotice() async throws {
        let pair = try InProcessPair()
        let log = MemoryIncidentLog()
        try await pair.startSecondary(modules: .init(incidents: log))
        try await pair.startPrimary()
        #expect(await pair.primary.waitForState(.active, timeout: .seconds(10)))
        #expect(await eventually { await pair.secondary.status()?.synced == true })
        await pair.primary.stopAbruptly()
        #expect(await pair.secondary.waitForState(.active, timeout: .seconds(10)))
        let recorded = log.recorded
        #expect(recorded.map(\.cause) == ["peer link lost; activated"], "the double got the failover's incident")
        #expect(try await pair.secondary.incidents() == recorded)
        #expect(await pair.secondary.status()?.activationIncident == recorded.first?.id, "the policy, the store and the link went on as usual")
        await pair.shutdown()
    }
}

/// An incident log kept in memory: the test double of the seam.
final class MemoryIncidentLog: IncidentRecording, @unchecked Sendable {
    private let lock = NSLock()
    private var kept: [StoredIncident] = []

    var recorded: [StoredIncident] {
        lock.lock()
        defer { lock.unlock() }
        return kept
    }

    func record(_ incident: Incident, at wall: Date) throws {
        lock.lock()
        kept.append(StoredIncident(incident, at: wall))
        lock.unlock()
    }

    func acknowledge(_ id: String, at wall: Date) throws {
        lock.lock()
        if let index = kept.firstIndex(where: { $0.id == id }) { kept[index].acknowledgedAt = wall }
        lock.unlock()
    }

    func incidents() throws -> [StoredIncident] { recorded }
}
