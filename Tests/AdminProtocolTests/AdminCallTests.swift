import AdminProtocol
import NIOCore
import Testing
import PairModel
import Wire

/// Every request and answer survives its encoding, and bad bodies are refused with a typed error.
@Suite struct AdminCallTests {
    static let calls: [AdminCall] = [
        .status, .incidents(includeAcknowledged: true), .incident(id: "S3-1"), .acknowledge(incident: "S3-1"),
        .switchover(incident: "S3-1", dryRun: false), .switchover(incident: nil, dryRun: true), .forceActivate(reason: "site cut off, ticket 881"),
        .audit(limit: 50),
    ]

    static let report = ServerReport(
        serverId: "vcom-secondary", role: .secondary, state: .active, epoch: 3, peerLinkUp: false, peerState: .awaitingAuthorization,
        peerCanActivate: nil, clientsLoggedIn: 200, clientsWatching: 0, licenceId: "LIC-1", licenceExpiresMs: 1_800_000_000_000,
        configRevision: 812, replicationLag: nil, synced: true, canActivate: true, activationIncident: "S3-1", openIncidents: 1,
        openDivergence: 0)

    static let incident = IncidentReport(
        id: "S3-1", cause: "peer link lost", role: "secondary", epoch: 3, decidedAtMs: 1_790_000_000_000, linkLostMsBefore: 2,
        clientLossMsBefore: nil, loggedInClients: 0, clientsLost: nil, clientPopulation: nil, peer: "vcom-primary", acknowledgedAtMs: nil)

    @Test(arguments: calls) func aCallRoundTrips(_ call: AdminCall) throws {
        #expect(try AdminCall(code: call.code.rawValue, body: try call.encode()) == call)
    }

    @Test func everyAnswerRoundTrips() throws {
        let answers: [(AdminCall.Code, AdminAnswer)] = [
            (.status, .status(Self.report)), (.incidents, .incidents([Self.incident, Self.incident])), (.incident, .incident(Self.incident)),
            (.switchover, .done("switching over to vcom-primary")),
            (.audit, .audit([AuditRecord(atMs: 1, user: "root", source: "127.0.0.1", action: "status", result: "ok")])),
            (.switchover, .error(.refused, "the secondary is 12 revisions behind")), (.incident, .error(.notFound, "no incident X")),
        ]
        for (code, answer) in answers {
            #expect(try AdminAnswer(for: code, status: answer.status.rawValue, body: try answer.encode()) == answer)
        }
    }

    @Test func roleRequirementsRiseWithTheConsequences() {
        #expect(AdminCall.status.requiredRole == .viewer)
        #expect(AdminCall.switchover(incident: nil, dryRun: false).requiredRole == .operator)
        #expect(AdminCall.forceActivate(reason: "x").requiredRole == .admin)
    }

    @Test func badBodiesAreRefusedWithTypedErrors() {
        #expect(throws: WireError.self) { try AdminCall(code: 999, body: ByteBuffer()) }
        #expect(throws: WireError.self) { try AdminCall(code: AdminCall.Code.incident.rawValue, body: ByteBuffer()) }
        var truncated = try! AdminAnswer.status(Self.report).encode()
        truncated.moveWriterIndex(to: truncated.writerIndex - 3)
        #expect(throws: WireError.self) { try AdminAnswer(for: .status, status: 0, body: truncated) }
        #expect(throws: WireError.self) { try AdminAnswer(for: .status, status: 77, body: ByteBuffer()) }
        var hugeCount = ByteBuffer()
        hugeCount.writeInteger(UInt32.max)
        #expect(throws: WireError.self) { try AdminAnswer(for: .incidents, status: 0, body: hugeCount) }
    }
}
