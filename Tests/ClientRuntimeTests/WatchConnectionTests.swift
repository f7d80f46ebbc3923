import ClientRuntime
import HealthMonitor
import NIOCore
import Testing
import PairModel
import Wire

/// A login reply, as the machine receives it.
private func accepted(
    session: UInt64, epoch: UInt64, role: ServerRole, alternate: Endpoint?, token: String
) -> ClientConnectionMachine.Event {
    .received(
        .loginAccepted(
            LoginAccepted(
                sessionId: session, epoch: epoch, serverRole: role, alternateServer: alternate, sessionToken: ByteBuffer(string: token),
                heartbeatIntervalMs: 1000)))
}

/// The watch connection: a logged-in client watches the other server, moves over that
/// connection when its own server is lost, and when the other announces its activation moves
/// only if its own server does not answer a probe.
@Suite struct WatchConnectionTests {
    typealias Machine = ClientConnectionMachine
    let primary = Endpoint(host: "10.0.0.1", port: 7100)
    let secondary = Endpoint(host: "10.0.0.2", port: 7100)
    var random = ClientConnectionMachineTests.SplitRandom(seed: 7)

    func ms(_ value: Int64) -> MonotonicTime { .milliseconds(value) }
    /// Times after the watch opened.
    var opened = MonotonicTime.zero
    func at(_ value: Int64) -> MonotonicTime { opened + .milliseconds(value) }

    /// Logged in to the primary (epoch 2) with an open watch on the secondary.
    mutating func watching() -> (Machine, watchAttempt: Int) {
        var client = Machine(servers: [primary], username: "ann", password: "pw", clientInstance: "c1")
        _ = client.handle(.start, at: ms(0), random: &random)
        _ = client.handle(.connected(attempt: 1), at: ms(1), random: &random)
        _ = client.handle(.received(.hello(Hello(nodeId: "p", software: "s"))), at: ms(2), random: &random)
        let login = client.handle(
            accepted(session: 7, epoch: 2, role: .primary, alternate: secondary, token: "tok"), at: ms(3), random: &random)
        #expect(!login.contains { if case .connectWatch = $0 { true } else { false } }, "not at once: spread over two seconds")
        guard case .waiting(let start) = client.watch, start <= ms(2003) else {
            Issue.record("a login schedules the watch on the other server, got \(client.watch)")
            return (client, 0)
        }
        _ = client.handle(.received(.heartbeat(Heartbeat(sequence: 0))), at: start, random: &random)
        let due = client.handle(.tick, at: start, random: &random)
        #expect(due.contains(.connectWatch(secondary, attempt: 2)), "\(due)")
        let opening = client.handle(.watchConnected(attempt: 2), at: start, random: &random)
        #expect(opening.count == 2)
        #expect(opening.last == .sendWatch(.watch(Watch(sessionToken: ByteBuffer(string: "tok"), epoch: 2, wantsWarnings: true))))
        _ = client.handle(.watchReceived(.hello(Hello(nodeId: "s", software: "s"))), at: start, random: &random)
        #expect(client.watch == .open(attempt: 2, to: secondary))
        opened = start
        return (client, 2)
    }

    @Test mutating func losingItsServer_itLogsInOverTheWatchConnection_withoutANewConnection() {
        var (client, _) = watching()
        let lost = client.handle(.closed(reason: "reset"), at: at(100), random: &random)
        #expect(lost.first == .emit(.lost(server: primary, reason: "reset")))
        #expect(lost.contains(.adoptWatch))
        #expect(!lost.contains { if case .connect = $0 { true } else { false } }, "no new connection: \(lost)")
        guard let login = lost.first(where: { if case .send(.login) = $0 { true } else { false } }), case .send(.login(let request)) = login,
            case .sessionToken(let token) = request.credential
        else {
            Issue.record("expected a token login on the adopted connection, got \(lost)")
            return
        }
        #expect(token == ByteBuffer(string: "tok"))
        #expect(client.phase == .loggingIn)
        #expect(client.server == secondary)
        #expect(client.watch == .none)
        // Logged in there, it watches the server it lost, but not before 15 s (within 75 s).
        _ = client.handle(
            accepted(session: 8, epoch: 3, role: .secondary, alternate: primary, token: "tok3"), at: at(110), random: &random)
        guard case .waiting(let until) = client.watch else {
            Issue.record("expected a delayed watch, got \(client.watch)")
            return
        }
        #expect(until >= at(15_110) && until <= at(75_110))
    }

    /// A first login that needed retries (refused by a standby, a slow start) is no failover:
    /// its watch starts within the usual two seconds, not a minute later.
    @Test mutating func aFirstLoginAfterRetriesWatchesSoon() {
        var client = Machine(servers: [secondary, primary], username: "ann", password: "pw", clientInstance: "c1")
        _ = client.handle(.start, at: ms(0), random: &random)
        _ = client.handle(.connected(attempt: 1), at: ms(1), random: &random)
        _ = client.handle(.received(.hello(Hello(nodeId: "s", software: "s"))), at: ms(2), random: &random)
        let refused = client.handle(
            .received(.loginRefused(LoginRefused(reason: .notActiveServer, detail: "standby", alternateServer: primary, epoch: 2))),
            at: ms(3), random: &random)
        #expect(refused.contains(.connect(primary, attempt: 2)), "\(refused)")
        _ = client.handle(.connected(attempt: 2), at: ms(4), random: &random)
        _ = client.handle(.received(.hello(Hello(nodeId: "p", software: "s"))), at: ms(5), random: &random)
        _ = client.handle(
            accepted(session: 9, epoch: 2, role: .primary, alternate: secondary, token: "tok"), at: ms(6), random: &random)
        guard case .waiting(let until) = client.watch else {
            Issue.record("expected a scheduled watch, got \(client.watch)")
            return
        }
        #expect(until <= ms(2006), "a first login's watch waited until \(until)")
    }

    @Test mutating func anActivationMovesTheClientOnlyIfItsServerIsSilent() {
        var (client, _) = watching()
        // The secondary activates: the client probes the primary.
        let probe = client.handle(.watchReceived(.activated(Activated(epoch: 3))), at: at(1000), random: &random)
        guard case .send(.heartbeat(let beat))? = probe.first else {
            Issue.record("expected a probe of the own server, got \(probe)")
            return
        }
        #expect(client.nextDeadline.map { $0 <= at(1250) } == true, "the probe's deadline is armed")
        // Nothing back within 250 ms: the client moves over the watch connection.
        let meanwhile = client.handle(.tick, at: at(1100), random: &random)
        #expect(!meanwhile.contains(.close) && !meanwhile.contains(.abandon) && !meanwhile.contains(.adoptWatch), "\(meanwhile)")
        let moved = client.handle(.tick, at: at(1250), random: &random)
        #expect(moved.first == .abandon)
        #expect(moved.contains(.adoptWatch), "\(moved)")
        #expect(client.server == secondary)
        _ = beat
    }

    @Test mutating func anAnsweredProbeKeepsTheClientWhereItIs_aSplitMovesNobody() {
        var (client, _) = watching()
        let probe = client.handle(.watchReceived(.activated(Activated(epoch: 3))), at: at(1000), random: &random)
        guard case .send(.heartbeat(let beat))? = probe.first else {
            Issue.record("expected a probe, got \(probe)")
            return
        }
        #expect(client.handle(.received(.heartbeat(beat)), at: at(1010), random: &random).isEmpty)
        let later = client.handle(.tick, at: at(1300), random: &random)
        #expect(!later.contains(.close) && !later.contains(.abandon) && !later.contains(.adoptWatch), "\(later)")
        #expect(client.isLoggedIn)
        #expect(client.server == primary)
        // An announcement of an epoch the client already has moves nothing either.
        #expect(client.handle(.watchReceived(.activated(Activated(epoch: 2))), at: at(1400), random: &random).isEmpty)
    }

    /// A takeover warning starts the probe early; the activation that follows finds it
    /// overdue and moves the client at once, without a probe of its own.
    @Test mutating func aWarningsProbe_unansweredWhenTheActivationComes_movesTheClientAtOnce() {
        var (client, _) = watching()
        let warned = client.handle(.watchReceived(.takeoverWarning(TakeoverWarning(epoch: 2))), at: at(1000), random: &random)
        guard case .send(.heartbeat)? = warned.first, warned.count == 1 else {
            Issue.record("expected a probe of the own server and nothing else, got \(warned)")
            return
        }
        // The deadline passes before the activation: nobody moves on a warning alone, and the
        // overdue probe arms no deadline (no tick loop).
        let due = client.handle(.tick, at: at(1250), random: &random)
        #expect(!due.contains(.close) && !due.contains(.abandon) && !due.contains(.adoptWatch), "\(due)")
        #expect(client.isLoggedIn && client.server == primary)
        #expect(client.nextDeadline.map { $0 > at(1250) } != false, "an overdue warning probe must not keep a deadline in the past: \(String(describing: client.nextDeadline))")
        let later = client.handle(.tick, at: at(1300), random: &random)
        #expect(!later.contains(.close) && !later.contains(.abandon) && !later.contains(.adoptWatch), "\(later)")
        let moved = client.handle(.watchReceived(.activated(Activated(epoch: 3))), at: at(1320), random: &random)
        #expect(moved.first == .abandon, "\(moved)")
        #expect(moved.contains(.adoptWatch), "\(moved)")
        #expect(!moved.contains { if case .send(.heartbeat) = $0 { true } else { false } }, "no second probe: \(moved)")
        #expect(client.server == secondary)
    }

    /// The activation arrives before the warning's probe is due: the client waits out the
    /// same probe (not a new one), and moves at its deadline.
    @Test mutating func anActivationBeforeTheWarningsDeadline_waitsForThatDeadline() {
        var (client, _) = watching()
        _ = client.handle(.watchReceived(.takeoverWarning(TakeoverWarning(epoch: 2))), at: at(1000), random: &random)
        let activated = client.handle(.watchReceived(.activated(Activated(epoch: 3))), at: at(1100), random: &random)
        #expect(activated.isEmpty, "the warning's probe is still running: \(activated)")
        #expect(client.nextDeadline.map { $0 <= at(1250) } == true)
        #expect(!client.handle(.tick, at: at(1200), random: &random).contains(.adoptWatch))
        let moved = client.handle(.tick, at: at(1250), random: &random)
        #expect(moved.first == .abandon && moved.contains(.adoptWatch), "\(moved)")
        #expect(client.server == secondary)
    }

    /// The split rule holds with warnings: a server that answered the warning's probe keeps
    /// its client through the activation unless it then fails a probe of its own.
    @Test mutating func aWarningAnswered_theActivationProbesAgain_andAnAnswerKeepsTheClient() {
        var (client, _) = watching()
        let warned = client.handle(.watchReceived(.takeoverWarning(TakeoverWarning(epoch: 2))), at: at(1000), random: &random)
        guard case .send(.heartbeat(let first))? = warned.first else {
            Issue.record("expected a probe, got \(warned)")
            return
        }
        #expect(client.handle(.received(.heartbeat(first)), at: at(1020), random: &random).isEmpty)
        let activated = client.handle(.watchReceived(.activated(Activated(epoch: 3))), at: at(1500), random: &random)
        guard case .send(.heartbeat(let second))? = activated.first else {
            Issue.record("the activation must start a new probe after an answered warning, got \(activated)")
            return
        }
        #expect(second.sequence > first.sequence)
        #expect(client.handle(.received(.heartbeat(second)), at: at(1510), random: &random).isEmpty)
        let later = client.handle(.tick, at: at(1800), random: &random)
        #expect(!later.contains(.close) && !later.contains(.abandon) && !later.contains(.adoptWatch), "\(later)")
        #expect(client.isLoggedIn && client.server == primary)
        // A late answer to an overdue warning probe clears it too: the activation then probes.
        for second in 2...8 {
            _ = client.handle(.tick, at: at(Int64(second) * 1000), random: &random)
            _ = client.handle(.received(.heartbeat(Heartbeat(sequence: 0))), at: at(Int64(second) * 1000 + 5), random: &random)
        }
        let warnedAgain = client.handle(.watchReceived(.takeoverWarning(TakeoverWarning(epoch: 2))), at: at(9000), random: &random)
        guard case .send(.heartbeat(let third))? = warnedAgain.first else {
            Issue.record("expected a probe, got \(warnedAgain)")
            return
        }
        _ = client.handle(.tick, at: at(9300), random: &random)
        _ = client.handle(.received(.heartbeat(third)), at: at(9400), random: &random)
        let again = client.handle(.watchReceived(.activated(Activated(epoch: 4))), at: at(9500), random: &random)
        #expect(!again.contains(.adoptWatch), "answered late, the server is alive: probe, do not move: \(again)")
        #expect(client.server == primary)
    }

    /// A client whose loop was held up (a busy or descheduled process) runs its tick late, with
    /// its server's answer perhaps still unread behind it: it looks once more before it moves.
    /// Chaos split rounds lost sessions this way: clients left a primary that served them,
    /// deciding 160-300 ms after the probe's deadline.
    @Test mutating func aLateTickLooksAgain_soAnAnswerReadAfterItKeepsTheClient() {
        for answered in [true, false] {
            var (client, _) = watching()
            let warned = client.handle(.watchReceived(.takeoverWarning(TakeoverWarning(epoch: 2))), at: at(1000), random: &random)
            guard case .send(.heartbeat(let beat))? = warned.first else {
                Issue.record("expected a probe, got \(warned)")
                return
            }
            _ = client.handle(.watchReceived(.activated(Activated(epoch: 3))), at: at(1100), random: &random)
            let late = client.handle(.tick, at: at(1400), random: &random)  // due at 1250
            #expect(!late.contains(.abandon) && !late.contains(.adoptWatch), "a late tick decides nothing at once: \(late)")
            #expect(client.nextDeadline.map { $0 <= at(1425) } == true, "it looks again soon")
            if answered { _ = client.handle(.received(.heartbeat(beat)), at: at(1401), random: &random) }
            let again = client.handle(.tick, at: at(1425), random: &random)
            #expect(again.contains(.adoptWatch) == !answered, "answered: \(answered), \(again)")
            #expect(client.server == (answered ? primary : secondary))
        }
    }

    /// The same when the activation is read before the tick that would have found the warning's
    /// probe overdue: the loop is behind, and the answer may be read next.
    @Test mutating func anActivationReadPastTheDeadlineBeforeItsTick_waitsForTheTick() {
        var (client, _) = watching()
        let warned = client.handle(.watchReceived(.takeoverWarning(TakeoverWarning(epoch: 2))), at: at(1000), random: &random)
        guard case .send(.heartbeat(let beat))? = warned.first else {
            Issue.record("expected a probe, got \(warned)")
            return
        }
        let activated = client.handle(.watchReceived(.activated(Activated(epoch: 3))), at: at(1400), random: &random)
        #expect(!activated.contains(.adoptWatch), "\(activated)")
        _ = client.handle(.received(.heartbeat(beat)), at: at(1401), random: &random)
        for time in [1402, 1430, 1500] as [Int64] { _ = client.handle(.tick, at: at(time), random: &random) }
        #expect(client.isLoggedIn && client.server == primary)
    }

    @Test mutating func aLostWatchIsRetriedWithBackoff_andAHeartbeatKeepsItAlive() {
        var (client, _) = watching()
        // The own server answers its heartbeats all along.
        for second in 1...9 {
            _ = client.handle(.tick, at: at(Int64(second) * 1000 + 3), random: &random)
            _ = client.handle(.received(.heartbeat(Heartbeat(sequence: 0))), at: at(Int64(second) * 1000 + 4), random: &random)
        }
        // Heartbeats every 10 s on the watch.
        #expect(client.handle(.tick, at: at(10_005), random: &random).contains { if case .sendWatch(.heartbeat) = $0 { true } else { false } })
        _ = client.handle(.watchReceived(.heartbeat(Heartbeat(sequence: 1))), at: at(10_006), random: &random)
        // The secondary goes away: the watch waits about a second, then reconnects.
        #expect(client.handle(.watchClosed, at: at(11_000), random: &random).isEmpty)
        guard case .waiting(let until) = client.watch else {
            Issue.record("expected a wait, got \(client.watch)")
            return
        }
        #expect(until >= at(11_800) && until <= at(12_200))
        let again = client.handle(.tick, at: until, random: &random)
        #expect(again.contains { if case .connectWatch(let to, _) = $0 { to == secondary } else { false } }, "\(again)")
        // Losing the own server while the watch is down: the classic path, the other at once.
        let lost = client.handle(.closed(reason: "reset"), at: until + .milliseconds(1), random: &random)
        #expect(lost.contains { if case .connect(let to, _) = $0 { to == secondary } else { false } }, "\(lost)")
    }

    @Test mutating func aRefusedWatchTokenClosesTheWatch_andStoppingClosesEverything() {
        var (client, _) = watching()
        let refused = client.handle(
            .watchReceived(.goodbye(Goodbye(reason: .authenticationFailed, detail: "bad token"))), at: at(50), random: &random)
        #expect(refused == [.closeWatch])
        var (other, _) = watching()
        let stop = other.handle(.stop, at: at(60), random: &random)
        // A logged-in client writes its logout and leaves the close to the server (no reset).
        #expect(stop.contains(.closeWatch) && stop.contains(.leave) && !stop.contains(.close), "\(stop)")
        #expect(stop.firstIndex(of: .send(.logout))! < stop.firstIndex(of: .leave)!)
        #expect(other.watch == .none)
    }
}

/// Keys held pressed travel with every login: a failover restores them with the session.
@Suite struct PressedKeyTests {
    var random = ClientConnectionMachineTests.SplitRandom(seed: 3)
    let line = KeyChange(action: .listen, target: .partyLine(4), pressed: true)
    let talk = KeyChange(action: .talk, target: .partyLine(4), pressed: true)

    @Test mutating func keysPressedBeforeTheLoginGoWithIt_andChangesAfterwardGoAtOnce() {
        var client = ClientConnectionMachine(
            servers: [Endpoint(host: "10.0.0.1", port: 7100)], username: "ann", password: "pw", clientInstance: "c1",
            configuration: .init(watchOther: false))
        #expect(client.handle(.keyChanged(line), at: .milliseconds(0), random: &random).isEmpty, "not logged in: nothing sent")
        _ = client.handle(.keyChanged(talk), at: .milliseconds(0), random: &random)
        _ = client.handle(.keyChanged(line), at: .milliseconds(0), random: &random)  // twice is once
        _ = client.handle(.start, at: .milliseconds(1), random: &random)
        let opening = client.handle(.connected(attempt: 1), at: .milliseconds(2), random: &random)
        guard opening.count > 1, case .send(.login(let request)) = opening[1] else {
            Issue.record("expected a login, got \(opening)")
            return
        }
        #expect(request.pressedKeys == [talk, line])
        _ = client.handle(.received(.hello(Hello(nodeId: "s", software: "s"))), at: .milliseconds(3), random: &random)
        _ = client.handle(
            accepted(session: 1, epoch: 2, role: .primary, alternate: nil, token: "t"), at: .milliseconds(4), random: &random)
        var release = talk
        release.pressed = false
        #expect(client.handle(.keyChanged(release), at: .milliseconds(5), random: &random) == [.send(.keyChange(release))])
        #expect(client.pressedKeys == [line])
    }
}
