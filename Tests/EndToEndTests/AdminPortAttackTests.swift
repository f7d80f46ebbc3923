import AdminProtocol
import ConfigModel
import ConfigStore
import Foundation
import NIOCore
import Testing
import TransportSecurity
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// Issue 24's attacks on the admin port of a running pair, and on what every port does before
/// a login (8 to 15).
@Suite(.serialized) struct AdminPortAttackTests {
    static func session<T: Sendable>(
        _ pair: TestPair, _ endpoint: Endpoint? = nil, user: String, password: String = PairFiles.adminPassword, from source: String = "127.0.0.1",
        _ body: @escaping @Sendable (inout AdminClient) async throws -> T
    ) async throws -> T {
        try await AdminClient.with(
            endpoint ?? pair.primary.adminEndpoint!, tls: PairFiles.clientTLS, user: user, password: password, timeout: .seconds(10), source: source, body)
    }

    /// 8. Below the admin role no password hash or verifier leaves the server, export included;
    /// a change written from such a read keeps the stored hash.
    @Test func hashesAndVerifiersNeverReachAViewerOrAnOperator() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive }, "\(pair.logs)")
        for user in ["watcher", "duty"] {
            let export = try await admin(["config", "export"], pair: pair, user: user)
            #expect(export.status == 0, "\(export.errors)")
            #expect(!export.output.contains("$scrypt$") && !export.output.contains("SCRAM-SHA-256$"), "\(user): \(export.output.prefix(600))")
            #expect(export.output.contains("\"secrets\" : \"redacted\""), "\(export.output.prefix(300))")
        }
        let full = try await admin(["config", "export"], pair: pair, user: "root")
        #expect(full.output.contains("SCRAM-SHA-256$") && full.output.contains("\"secrets\" : \"included\""), "\(full.output.prefix(300))")

        // An operator disables and enables a user: the password still works (the hash was kept).
        #expect(try await admin(["users", "disable", "op1"], pair: pair, user: "duty").status == 0)
        #expect(try await admin(["users", "enable", "op1"], pair: pair, user: "duty").status == 0)
        let (answer, conversation) = try await WireConversation.login(
            pair.primary.clientEndpoint, username: "op1", credential: .password(PairFiles.password), from: "127.0.0.1")
        conversation.close()
        #expect(answer?.isAccepted == true, "\(String(describing: answer))")
    }

    /// 9. An administrator removed or demoted loses the role in the sessions already open.
    @Test func aRoleIsLookedUpPerRequest() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby && pair.secondary.configRevision == pair.primary.configRevision })
        let outcome: (before: AdminStatus, demoted: AdminStatus, removed: String) = try await Self.session(pair, user: "duty") { duty in
            let before = try await duty.call(.switchover(incident: nil, dryRun: true)).status
            // root demotes duty to a viewer, then removes the account, while duty's session is open.
            try await Self.session(pair, user: "root") { root in
                guard case .configuration(_, let configuration) = try await root.call(.configuration), var account = configuration.admin("duty") else {
                    throw TestFailure("no duty account")
                }
                account.role = .viewer
                _ = try await root.call(.writeConfiguration([.putAdmin(account)]))
            }
            let demoted = try await duty.call(.switchover(incident: nil, dryRun: true)).status
            try await Self.session(pair, user: "root") { root in _ = try await root.call(.writeConfiguration([.removeAdmin(username: "duty")])) }
            do {
                _ = try await duty.call(.status)
                return (before, demoted, "answered")
            } catch {
                return (before, demoted, "\(error)")
            }
        }
        #expect(outcome.before != .forbidden, "an operator may ask for a switchover check")
        #expect(outcome.demoted == .forbidden, "demoted to viewer: refused in the same session")
        #expect(outcome.removed.contains("removed"), "\(outcome.removed)")
    }

    /// 10. Parallel logins get no more guesses than sequential ones; a stranger's failures lock
    /// the account from their address only; a right password during the lock is refused too.
    @Test func theLockoutHoldsAgainstParallelGuessesAndLocksOnlyTheGuessingSource() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive }, "\(pair.logs)")
        let answers = await withTaskGroup(of: String.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    do {
                        try await Self.session(pair, user: "root", password: "a wrong guess", from: Attacker.stranger) { _ in }
                        return "in"
                    } catch {
                        return "\(error)"
                    }
                }
            }
            var answers: [String] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
        let checked = answers.filter { $0.contains("wrong user name or password") }.count
        #expect(checked <= 5, "\(checked) guesses checked of 8 in parallel: \(answers)")
        #expect(answers.allSatisfy { $0 != "in" })
        // The real administrator, from another address, is not locked out.
        let status = try await admin(["status"], pair: pair, servers: pair.primary.adminEndpoint!.description)
        #expect(status.status == 0, "\(status.errors)")
        // From the guessing address, even the right password waits for the lock.
        do {
            try await Self.session(pair, user: "root", from: Attacker.stranger) { _ in }
            Issue.record("the right password got in during the lock")
        } catch {
            #expect("\(error)".contains("too many failed logins"), "\(error)")
        }
    }

    /// 11. Every attempt is audited, refused ones included; a 60 KB name is refused before
    /// anything is looked up and audited capped; a burst of refusals from one source writes a
    /// bounded number of rows.
    @Test func everyAttemptIsAuditedWithinABudget() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive }, "\(pair.logs)")
        let endpoint = pair.primary.adminEndpoint!
        // A request before any login.
        let early = try await WireConversation<AdminMessage>.open(endpoint, configuration: .admin)
        try await early.send(.hello(Hello(nodeId: "attack", software: "attack")))
        try await early.send(.request(AdminRequest(requestId: 1, command: AdminCall.Code.status.rawValue, body: ByteBuffer())))
        #expect(await early.closedByServer(within: .seconds(3)))
        // A SCRAM start, abandoned after its challenge.
        let abandoned = try await WireConversation<AdminMessage>.open(endpoint, configuration: .admin)
        try await abandoned.send(.hello(Hello(nodeId: "attack", software: "attack")))
        try await abandoned.send(.authStart(AdminAuthStart(username: "root", clientNonce: "abcdefgh")))
        _ = try await abandoned.next()
        _ = try await abandoned.next()
        abandoned.close()
        // A 60 KB user name: a frame above what a stranger may send; a 200-byte one fits a frame
        // but not a name.
        let long = try await WireConversation<AdminMessage>.open(endpoint, configuration: .admin)
        try await long.send(.hello(Hello(nodeId: "attack", software: "attack")))
        try await long.send(.authStart(AdminAuthStart(username: String(repeating: "x", count: 60_000), clientNonce: "abcdefgh")))
        #expect(await long.closedByServer(within: .seconds(3)))
        let named = try await WireConversation<AdminMessage>.open(endpoint, configuration: .admin)
        try await named.send(.hello(Hello(nodeId: "attack", software: "attack")))
        try await named.send(.authStart(AdminAuthStart(username: String(repeating: "y", count: 200), clientNonce: "abcdefgh")))
        #expect(await named.closedByServer(within: .seconds(3)))
        // Forty wrong passwords from one more address.
        for _ in 0..<40 {
            _ = try? await Self.session(pair, user: "guess", password: "wrong", from: "127.0.0.3") { _ in }
        }
        try await Task.sleep(for: .milliseconds(300))
        let audit = try await admin(["audit", "--limit", "1000", "--json"], pair: pair, servers: endpoint.description)
        let rows = try #require(audit.json?["audit"] as? [[String: Any]], "\(audit.output.prefix(500)) \(audit.errors)")
        let fromStranger = rows.filter { $0["source"] as? String == Attacker.stranger }
        let texts = fromStranger.map { "\($0["action"] ?? "") \($0["result"] ?? "")" }
        #expect(texts.contains { $0.contains("before login") }, "\(texts)")
        #expect(texts.contains { $0.contains("abandoned after the challenge") }, "\(texts)")
        #expect(texts.contains { $0.contains("before login refused:") && $0.contains("above the limit of 8192 bytes") }, "\(texts)")
        let namedRow = try #require(fromStranger.first { ($0["result"] as? String)?.contains("a user name of 200 bytes") == true }, "\(texts)")
        #expect((namedRow["user"] as? String ?? "").hasSuffix("…(200 bytes)"), "the name is audited capped: \(namedRow)")
        #expect(rows.filter { $0["source"] as? String == "127.0.0.3" }.count <= 10, "40 refusals from one source write at most 10 rows a minute")
    }

    /// 12. Before a login every port takes small frames only, compressed or not: a 16 MiB
    /// header is refused at once (before, the server waited to buffer it), and so is a frame
    /// that would inflate to 64 MiB.
    @Test func framesBeforeLoginAreSmallOnEveryPort() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.start()
        #expect(await eventually { pair.primary.isActive && pair.secondary.isStandby }, "\(pair.logs)")
        let hello = try plaintextHello()
        let primaryIdentity = try PairPKI.issue(name: "vcom-primary", hosts: ["127.0.0.1"], authority: PairFiles.authority)
        let targets: [(String, Endpoint, IssuedIdentity?, MessageType)] = [
            ("client", pair.primary.clientEndpoint, nil, ClientMessage.Types.login),
            ("admin", pair.primary.adminEndpoint!, nil, AdminMessage.Types.authStart),
            ("peer", pair.secondary.peerEndpoint!, primaryIdentity, PeerMessage.Types.auth),
        ]
        for (port, endpoint, identity, type) in targets {
            let partial = try await RawTLS.open(endpoint, presenting: identity)
            try await partial.send(hello + RawFrame.header(type: type, length: 16 << 20) + [1, 2, 3])
            #expect(await partial.closedByServer(within: .seconds(2)), "\(port) port: a 16 MiB frame header before login")
            partial.close()
            let bomb = try await RawTLS.open(endpoint, presenting: identity)
            try await bomb.send(hello + (try RawFrame.bomb(type: type, inflated: 64 << 20)))
            #expect(await bomb.closedByServer(within: .seconds(2)), "\(port) port: a 64 MiB bomb before login")
            bomb.close()
        }
        #expect(pair.primary.isActive && !pair.primary.log.contains("peer link lost"))
    }

    /// 13. A connection that never logs in (or trickles a byte now and then) is closed at the
    /// port's login deadline; `/metrics` connections are capped and time out.
    @Test func strangersAreClosedAtTheirDeadlineAndMetricsConnectionsAreCapped() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        let config = try pair.files.config("[limits]\nadmin-login-timeout-ms = 3000\n")
        try await pair.startSecondary(extra: config)
        try await pair.startPrimary(extra: config)
        #expect(await eventually { pair.primary.isActive }, "\(pair.logs)")
        let trickler = try await RawTLS.open(pair.primary.adminEndpoint!)
        let started = ContinuousClock.now
        var closed = false
        for byte in try plaintextHello() {
            try? await trickler.send([byte])
            if await trickler.closedByServer(within: .milliseconds(400)) {
                closed = true
                break
            }
        }
        let lived = ContinuousClock.now - started
        #expect(closed && lived < .seconds(5), "a trickling stranger lived \(lived)")

        let metrics = pair.primary.metricsEndpoint!
        let idle = Attacker.idleConnections(40, to: metrics)
        defer { Attacker.closeAll(idle) }
        let closedAtOnce = idle.filter { Attacker.closedByServer($0, within: .milliseconds(200)) }.count
        #expect(closedAtOnce >= 32 - 8, "\(closedAtOnce) of 40 idle /metrics connections closed at once (8 per source allowed)")
        #expect(Attacker.closedByServer(idle[0], within: .seconds(7)), "an idle /metrics connection times out")
        #expect(pair.primary.metric("vcom_epoch") != nil, "a scrape still works")
    }

    /// 14. At a descriptor limit of 1,024 (a supervisor's default), 1,100 idle admin connections
    /// leave an operator's login and an administrator's working.
    @Test func aFloodOfAdminConnectionsLeavesDescriptorsForLogins() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        try await pair.startSecondary()
        try await pair.startPrimary(under: ["prlimit", "--nofile=1024:1024"])
        #expect(await eventually { pair.primary.isActive }, "\(pair.logs)")
        #expect(pair.primary.log.contains("open files: limit 1024"), "\(pair.primary.log.prefix(3000))")
        let idle = Attacker.idleConnections(1_100, to: pair.primary.adminEndpoint!)
        defer { Attacker.closeAll(idle) }
        let client = TestClient(servers: [pair.primary.clientEndpoint], username: "op1")
        defer { client.stop() }
        #expect(await client.waitLoggedIn(to: pair.primary.clientEndpoint, timeout: .seconds(5)))
        let status = try await admin(["status"], pair: pair, servers: pair.primary.adminEndpoint!.description)
        #expect(status.status == 0, "\(status.output) \(status.errors)")
    }

    /// 15. Re-applying a divergence entry that changes an administrator needs the admin role.
    @Test func aDivergenceEntryTouchingAnAdministratorNeedsTheAdminRole() async throws {
        let pair = try TestPair()
        defer { pair.stop() }
        // The primary's store as a split once left it: an administrator added in the history
        // that lost, now in the divergence journal.
        let store = try ConfigStore(path: pair.files.dataDirectory(.primary).appendingPathComponent("config.sqlite").path)
        try store.setWriteEpoch(0)
        let before = store.snapshot()
        try store.write([.putAdmin(AdminAccount(username: "intruder", passwordHash: try ScramVerifier(password: "x", iterations: 4096).text, role: .admin))])
        try store.installSnapshot(before, journalAfter: before.revision, at: Date())
        try await pair.start()
        #expect(await eventually { pair.primary.isActive }, "\(pair.logs)")
        let list = try await admin(["divergence", "list", "--json"], pair: pair, user: "duty")
        let entries = try #require(list.json?["divergence"] as? [[String: Any]], "\(list.output) \(list.errors)")
        let id = try #require(entries.first?["id"] as? Int)
        #expect(!list.output.contains("SCRAM-SHA-256$"), "the entry's verifier is not shown to an operator")
        let byOperator = try await admin(["divergence", "apply", "\(id)"], pair: pair, user: "duty")
        #expect(byOperator.status == 1 && byOperator.errors.contains("admin role"), "\(byOperator.output) \(byOperator.errors)")
        let admins = try await admin(["admins", "list", "--json"], pair: pair)
        #expect(!admins.output.contains("intruder"))
        let byAdmin = try await admin(["divergence", "apply", "\(id)"], pair: pair, user: "root")
        #expect(byAdmin.status == 0, "\(byAdmin.output) \(byAdmin.errors)")
    }
}
