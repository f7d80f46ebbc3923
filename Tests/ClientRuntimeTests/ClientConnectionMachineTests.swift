import ClientRuntime
import HealthMonitor
import NIOCore
import Testing
import PairModel
import Wire

/// The client's connection machine, driven without sockets.
@Suite struct ClientConnectionMachineTests {
    let primary = Endpoint(host: "10.0.0.1", port: 7100)
    let secondary = Endpoint(host: "10.0.0.2", port: 7100)
    var random = SplitRandom(seed: 1)

    struct SplitRandom: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    func ms(_ value: Int64) -> MonotonicTime { .milliseconds(value) }

    /// Without the watch connection (its own suite below covers it).
    func machine() -> ClientConnectionMachine {
        ClientConnectionMachine(
            servers: [primary], username: "ann", password: "pw", clientInstance: "c1", configuration: .init(watchOther: false))
    }

    func accepted(on role: ServerRole, epoch: UInt64, alternate: Endpoint?) -> ClientMessage {
        .loginAccepted(
            LoginAccepted(
                sessionId: 7, epoch: epoch, serverRole: role, alternateServer: alternate, sessionToken: ByteBuffer(string: "token-\(epoch)"),
                heartbeatIntervalMs: 1000))
    }

    /// Connects and logs in on the current server; returns the actions of the last step.
    mutating func logIn(_ client: inout ClientConnectionMachine, at time: Int64, role: ServerRole = .primary, epoch: UInt64 = 2) -> [ClientConnectionMachine.Action] {
        guard case .connect(_, let attempt)? = client.handle(.start, at: ms(time), random: &random).first else { return [] }
        _ = client.handle(.connected(attempt: attempt), at: ms(time), random: &random)
        _ = client.handle(.received(.hello(Hello(nodeId: "s", software: "s"))), at: ms(time), random: &random)
        return client.handle(.received(accepted(on: role, epoch: epoch, alternate: secondary)), at: ms(time), random: &random)
    }

    @Test mutating func logsInWithThePasswordAndLearnsTheOtherServer() {
        var client = machine()
        let connect = client.handle(.start, at: ms(0), random: &random)
        #expect(connect == [.connect(primary, attempt: 1)])
        // The login goes right behind the hello, without waiting for the server's.
        let opening = client.handle(.connected(attempt: 1), at: ms(1), random: &random)
        #expect(opening.first.map { if case .send(.hello) = $0 { true } else { false } } == true)
        guard opening.count > 1, case .send(.login(let request)) = opening[1], case .password("pw") = request.credential else {
            Issue.record("expected a hello and a password login, got \(opening)")
            return
        }
        #expect(client.handle(.received(.hello(Hello(nodeId: "s", software: "s"))), at: ms(2), random: &random).isEmpty)
        let done = client.handle(.received(accepted(on: .primary, epoch: 2, alternate: secondary)), at: ms(3), random: &random)
        #expect(done == [.emit(.loggedIn(server: primary, role: .primary, epoch: 2, sessionId: 7))])
        #expect(client.servers == [primary, secondary])
        #expect(client.token == ByteBuffer(string: "token-2"))
    }

    @Test mutating func aConnectThatNeverEnds_isGivenUpAndRetried() {
        var client = machine()
        #expect(client.handle(.start, at: ms(0), random: &random) == [.connect(primary, attempt: 1)])
        #expect(client.nextDeadline == ms(5000), "connecting is not a wait without end")
        #expect(client.handle(.tick, at: ms(4999), random: &random).isEmpty)
        #expect(client.handle(.tick, at: ms(5000), random: &random) == [.connect(primary, attempt: 2)])
        // The abandoned attempt's late completion is not taken for the new one.
        #expect(client.handle(.connected(attempt: 1), at: ms(5001), random: &random).isEmpty)
        #expect(client.phase == .connecting(attempt: 2))
    }

    @Test mutating func losingItsServer_itTriesTheOtherAtOnceWithItsToken() {
        var client = machine()
        _ = logIn(&client, at: 0)
        let lost = client.handle(.closed(reason: "reset"), at: ms(100), random: &random)
        #expect(lost == [.emit(.lost(server: primary, reason: "reset")), .connect(secondary, attempt: 2)])
        let login = client.handle(.connected(attempt: 2), at: ms(101), random: &random)
        guard login.count > 1, case .send(.login(let request)) = login[1], case .sessionToken(let token) = request.credential else {
            Issue.record("expected a token login, got \(login)")
            return
        }
        #expect(token == ByteBuffer(string: "token-2"))
    }

    @Test mutating func missedHeartbeatsCountAsALoss() {
        var client = machine()
        _ = logIn(&client, at: 0)
        #expect(client.handle(.tick, at: ms(1000), random: &random) == [.send(.heartbeat(Heartbeat(sequence: 1)))])
        _ = client.handle(.received(.heartbeat(Heartbeat(sequence: 1))), at: ms(1001), random: &random)
        #expect(client.handle(.tick, at: ms(3_900), random: &random).contains(.send(.heartbeat(Heartbeat(sequence: 2)))))
        let silent = client.handle(.tick, at: ms(4_002), random: &random)
        #expect(silent.first == .close)
        #expect(silent.contains(.emit(.lost(server: primary, reason: "no heartbeat from the server for 3.0 seconds"))))
        #expect(silent.last == .connect(secondary, attempt: 2))
    }

    @Test mutating func notTheActiveServer_meansTryTheOther_thenBackOffWithJitter() {
        var client = machine()
        _ = client.handle(.start, at: ms(0), random: &random)
        _ = client.handle(.connected(attempt: 1), at: ms(1), random: &random)
        _ = client.handle(.received(.hello(Hello(nodeId: "s", software: "s"))), at: ms(2), random: &random)
        let refused = client.handle(
            .received(.loginRefused(LoginRefused(reason: .notActiveServer, detail: "no", alternateServer: secondary, epoch: 3))), at: ms(3),
            random: &random)
        #expect(refused.contains(.connect(secondary, attempt: 2)), "the other server at once: \(refused)")
        // The secondary is unreachable too: now the client waits, a little longer each time.
        #expect(client.handle(.connectFailed(attempt: 2, reason: "refused"), at: ms(10), random: &random) == [])
        guard case .waiting(let until) = client.phase else {
            Issue.record("expected a wait, got \(client.phase)")
            return
        }
        #expect(until > ms(10) + .milliseconds(79) && until < ms(10) + .milliseconds(121), "100 ms ± 20 %")
        #expect(client.handle(.tick, at: until, random: &random) == [.connect(primary, attempt: 3)])
        _ = client.handle(.connectFailed(attempt: 3, reason: "refused"), at: until, random: &random)
        guard case .waiting(let second) = client.phase else { return }
        #expect(second - until > .milliseconds(150), "doubling")
    }

    @Test mutating func aRedirectIsFollowedAtOnce() {
        var client = machine()
        _ = logIn(&client, at: 0)
        let moved = client.handle(.received(.redirect(Redirect(target: secondary, reason: .switchover, epoch: 3))), at: ms(50), random: &random)
        #expect(moved == [.close, .emit(.redirected(from: primary, to: secondary, reason: .switchover)), .connect(secondary, attempt: 2)])
    }

    @Test mutating func aRefusedTokenFallsBackToThePassword_andBadCredentialsStop() {
        var client = machine()
        _ = logIn(&client, at: 0)
        _ = client.handle(.closed(reason: "gone"), at: ms(10), random: &random)
        _ = client.handle(.connected(attempt: 2), at: ms(11), random: &random)
        _ = client.handle(.received(.hello(Hello(nodeId: "s", software: "s"))), at: ms(12), random: &random)
        let expired = client.handle(
            .received(.loginRefused(LoginRefused(reason: .tokenExpired, detail: "expired", epoch: 3))), at: ms(13), random: &random)
        #expect(expired.last == .connect(secondary, attempt: 3), "the same server again, with the password")
        #expect(client.token == nil)
        _ = client.handle(.connected(attempt: 3), at: ms(14), random: &random)
        _ = client.handle(.received(.hello(Hello(nodeId: "s", software: "s"))), at: ms(15), random: &random)
        let bad = client.handle(
            .received(.loginRefused(LoginRefused(reason: .badCredentials, detail: "wrong", epoch: 3))), at: ms(16), random: &random)
        #expect(bad.last == .emit(.stopped(reason: "login refused: bad credentials: wrong")))
        #expect(client.phase == .stopped)
    }

    @Test mutating func loggedInOnTheSecondary_itNeverMovesBackByItself() {
        var client = machine()
        _ = logIn(&client, at: 0)
        _ = client.handle(.closed(reason: "gone"), at: ms(10), random: &random)
        _ = client.handle(.connected(attempt: 2), at: ms(11), random: &random)
        _ = client.handle(.received(.hello(Hello(nodeId: "s", software: "s"))), at: ms(12), random: &random)
        _ = client.handle(.received(accepted(on: .secondary, epoch: 3, alternate: primary)), at: ms(13), random: &random)
        var actions: [ClientConnectionMachine.Action] = []
        var t: Int64 = 13
        for _ in 0..<60 {
            t += 1000
            actions += client.handle(.received(.heartbeat(Heartbeat(sequence: 1))), at: ms(t), random: &random)
            actions += client.handle(.tick, at: ms(t), random: &random)
        }
        #expect(!actions.contains { if case .connect = $0 { true } else { false } })
        #expect(client.server == secondary)
    }
}
