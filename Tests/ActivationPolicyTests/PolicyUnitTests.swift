import HealthMonitor
import Testing
import PairModel

@testable import ActivationPolicy

/// The pure state machine driven directly, for the rules a simulation would only reach by luck.
@Suite struct PolicyUnitTests {
    func ms(_ value: Int64) -> MonotonicTime { .milliseconds(value) }

    /// A policy that has started and heard from its peer, in the given state.
    func linked(_ role: ServerRole, peer: PeerStatus, at time: Int64 = 0) -> ActivationPolicy {
        var policy = ActivationPolicy(role: role)
        _ = policy.handle(.start, at: ms(time))
        _ = policy.handle(.link(.up), at: ms(time))
        _ = policy.handle(.link(.stable), at: ms(time))
        _ = policy.handle(.peerState(peer), at: ms(time + 1))
        return policy
    }

    @Test func epochsHaveTheirRolesParityAndNeverRepeat() {
        var primary = ActivationPolicy(role: .primary, persisted: PersistentState(epoch: 7))
        var secondary = ActivationPolicy(role: .secondary, persisted: PersistentState(epoch: 7))
        #expect(primary.nextEpoch == 8)
        #expect(secondary.nextEpoch == 9)
        _ = primary.handle(.start, at: ms(0))
        _ = primary.handle(.tick, at: ms(1000))
        #expect(primary.state == .active && primary.epoch == 8)
        _ = secondary.handle(.start, at: ms(0))
        _ = secondary.handle(.admin(.forceActivation(reason: "test")), at: ms(0))
        #expect(secondary.epoch == 9)
    }

    @Test func activationIsPersistedBeforeItTakesEffect() {
        var policy = linked(.secondary, peer: PeerStatus(role: .primary, state: .active, epoch: 2, loggedInClients: 5))
        let actions = policy.handle(.link(.lost(.timeout)), at: ms(500))
        let persistIndex = actions.firstIndex { if case .persist(let state) = $0 { state.state == .active } else { false } }
        let activateIndex = actions.firstIndex { if case .activate = $0 { true } else { false } }
        #expect(persistIndex != nil && activateIndex != nil && persistIndex! < activateIndex!)
    }

    @Test func aSecondaryWithoutALicenceDoesNotActivateAndSaysWhy() {
        var policy = linked(.secondary, peer: PeerStatus(role: .primary, state: .active, epoch: 2, loggedInClients: 5))
        _ = policy.handle(.activationPermission(refusal: "no licence received from the primary"), at: ms(10))
        let actions = policy.handle(.link(.lost(.closed)), at: ms(20))
        #expect(policy.state == .standby)
        #expect(actions.contains(.warning("peer link lost but cannot activate: no licence received from the primary")))
        #expect(policy.handle(.admin(.forceActivation(reason: "x")), at: ms(30)) == [.adminRefused("cannot activate: no licence received from the primary")])
    }

    @Test func tieOnClientsGoesToTheHigherEpoch() {
        let a = PeerStatus(role: .primary, state: .active, epoch: 4, loggedInClients: 10)
        let b = PeerStatus(role: .secondary, state: .active, epoch: 5, loggedInClients: 10)
        #expect(ActivationPolicy.ownYields(own: a, peer: b))
        #expect(!ActivationPolicy.ownYields(own: b, peer: a))
        let c = PeerStatus(role: .primary, state: .active, epoch: 4, loggedInClients: 11)
        #expect(!ActivationPolicy.ownYields(own: c, peer: b), "more clients beats a higher epoch")
    }

    @Test func switchoverChecksComeFirst() {
        let standbyPeer = PeerStatus(role: .secondary, state: .standby, epoch: 1, loggedInClients: 0)
        var primary = linked(.primary, peer: standbyPeer)
        #expect(primary.state == .active)
        // Replication state unknown, then behind.
        #expect(primary.handle(.admin(.switchover(acknowledging: nil)), at: ms(10)).first.map(isRefusal) == true)
        _ = primary.handle(.peerReplicationLag(12), at: ms(11))
        #expect(
            primary.handle(.admin(.switchover(acknowledging: nil)), at: ms(12))
                == [.adminRefused("the peer is 12 configuration revisions behind; wait until it caught up")])
        _ = primary.handle(.peerReplicationLag(0), at: ms(13))
        // No incident is open on a primary serving normally: naming one is an error.
        #expect(primary.handle(.admin(.switchover(acknowledging: "P2-1")), at: ms(14)).first.map(isRefusal) == true)
        let accepted = primary.handle(.admin(.switchover(acknowledging: nil)), at: ms(15))
        #expect(accepted.contains { if case .requestPeerActivation(let request) = $0 { request.reason == .plannedSwitchover } else { false } })
        #expect(primary.handle(.admin(.switchover(acknowledging: nil)), at: ms(16)).first.map(isRefusal) == true, "one at a time")
    }

    @Test func switchoverOnAServerThatIsNotActiveIsRefused() {
        var secondary = linked(.secondary, peer: PeerStatus(role: .primary, state: .active, epoch: 2, loggedInClients: 3))
        #expect(
            secondary.handle(.admin(.switchover(acknowledging: nil)), at: ms(5))
                == [.adminRefused("this server is standby; run the switchover on the active server")])
    }

    @Test func plannedSwitchoverAwayFromThePrimaryLeavesItStandbyNotAwaitingAuthorization() {
        var primary = linked(.primary, peer: PeerStatus(role: .secondary, state: .standby, epoch: 1, loggedInClients: 0))
        _ = primary.handle(.peerReplicationLag(0), at: ms(5))
        _ = primary.handle(.admin(.switchover(acknowledging: nil)), at: ms(6))
        let actions = primary.handle(.peerState(PeerStatus(role: .secondary, state: .active, epoch: 3, loggedInClients: 0)), at: ms(8))
        #expect(primary.state == .standby)
        #expect(actions.contains(.redirectClients(.switchover)))
        // A standby primary (not a failed-over one) takes over again if the link is lost.
        _ = primary.handle(.link(.lost(.closed)), at: ms(100))
        #expect(primary.state == .active && primary.epoch == 4)
    }

    @Test func anAwaitingPrimaryIgnoresLinkLossAndCensus() {
        var primary = linked(.primary, peer: PeerStatus(role: .secondary, state: .active, epoch: 3, loggedInClients: 9))
        _ = primary.handle(.link(.lost(.timeout)), at: ms(10))  // startup: secondary active → awaiting
        #expect(primary.state == .awaitingAuthorization)
        _ = primary.handle(.census(.majorityLost(lost: 6, population: 10)), at: ms(20))
        _ = primary.handle(.tick, at: ms(5000))
        #expect(primary.state == .awaitingAuthorization)
    }

    @Test func anAwaitingPrimaryResumesWhenTheSecondaryNeverTookOver() {
        var primary = linked(.primary, peer: PeerStatus(role: .secondary, state: .active, epoch: 3, loggedInClients: 9))
        #expect(primary.state == .awaitingAuthorization)
        _ = primary.handle(.link(.lost(.closed)), at: ms(10))
        _ = primary.handle(.link(.restored), at: ms(2000))
        _ = primary.handle(.peerState(PeerStatus(role: .secondary, state: .standby, epoch: 3, loggedInClients: 0)), at: ms(2001))
        // Once the announcement has stood, the link up (resumeConfirmation, 300 ms).
        #expect(primary.state == .awaitingAuthorization)
        #expect(primary.nextDeadline == ms(2301))
        let actions = primary.handle(.tick, at: ms(2301))
        #expect(primary.state == .active && primary.epoch == 4)
        #expect(actions.contains { if case .recordIncident(let incident) = $0 { incident.cause == .resumedService } else { false } })
    }

    /// `failover-sim --witness` seed 1324: a primary that wakes from a freeze reads the
    /// secondary's "standby", sent before the secondary took over, and right behind it the
    /// closed link (or the "active"): it must not serve on the stale word.
    @Test func anAwaitingPrimaryDoesNotResumeOnAStandbyThatATakeoverFollows() {
        for follow in ["closed link", "active"] {
            var primary = linked(.primary, peer: PeerStatus(role: .secondary, state: .active, epoch: 3, loggedInClients: 9))
            _ = primary.handle(.link(.lost(.closed)), at: ms(10))
            _ = primary.handle(.link(.restored), at: ms(2000))
            _ = primary.handle(.peerState(PeerStatus(role: .secondary, state: .standby, epoch: 3, loggedInClients: 0)), at: ms(2000))
            if follow == "closed link" {
                _ = primary.handle(.link(.lost(.closed)), at: ms(2000))
            } else {
                _ = primary.handle(.peerState(PeerStatus(role: .secondary, state: .active, epoch: 4, loggedInClients: 0)), at: ms(2001))
            }
            _ = primary.handle(.tick, at: ms(2400))
            _ = primary.handle(.tick, at: ms(9000))
            #expect(primary.state == .awaitingAuthorization, "\(follow)")
        }
    }

    /// `failover-sim --witness` seed 42885: a paired primary frozen just after its start wakes
    /// past its start-up wait and reads, at once, the link and a "standby" its secondary sent
    /// before taking over. The wait ended first: it awaits authorization, and the stale word
    /// must stand like any resumption's, which the closed link right behind it prevents.
    @Test func aPrimaryWokenPastItsStartupWaitDoesNotServeOnAStaleStandby() {
        let standby = PeerStatus(role: .secondary, state: .standby, epoch: 3, loggedInClients: 0)
        var primary = ActivationPolicy(role: .primary, persisted: PersistentState(epoch: 3, state: .standby, paired: true))
        _ = primary.handle(.start, at: ms(0))
        _ = primary.handle(.link(.up), at: ms(5700))
        #expect(primary.state == .awaitingAuthorization, "the start-up wait ended before the link was read")
        _ = primary.handle(.peerState(standby), at: ms(5700))
        #expect(primary.state == .awaitingAuthorization)
        _ = primary.handle(.link(.lost(.closed)), at: ms(5700))
        _ = primary.handle(.tick, at: ms(9000))
        #expect(primary.state == .awaitingAuthorization)

        // Within its wait, the same announcement lets it serve at once.
        var onTime = ActivationPolicy(role: .primary, persisted: PersistentState(epoch: 3, state: .standby, paired: true))
        _ = onTime.handle(.start, at: ms(0))
        _ = onTime.handle(.link(.up), at: ms(900))
        _ = onTime.handle(.peerState(standby), at: ms(901))
        #expect(onTime.state == .active)
    }

    /// The witness's epoch is adopted by a server not serving (seed 65370), never one near the
    /// top (a damaged key: minting above it would overflow), never by a serving one.
    @Test func anEpochNamedByTheWitness_isAdoptedByAStandbyOnly_andOnlyIfPlausible() {
        var policy = ActivationPolicy(role: .secondary, configuration: .init(witness: WitnessTiming()))
        _ = policy.handle(.start, at: ms(0))
        _ = policy.handle(.witness(.epochSeen(8)), at: ms(1))
        #expect(policy.epoch == 8 && policy.nextEpoch == 9)
        let odd = policy.handle(.witness(.epochSeen(.max)), at: ms(2))
        #expect(policy.epoch == 8 && odd.contains { if case .warning = $0 { true } else { false } })
        var serving = ActivationPolicy(role: .primary, configuration: .init(witness: WitnessTiming()))
        _ = serving.handle(.start, at: ms(0))
        _ = serving.handle(.link(.up), at: ms(1))
        _ = serving.handle(.peerState(PeerStatus(role: .secondary, state: .standby, epoch: 1, loggedInClients: 0)), at: ms(2))
        let epoch = serving.epoch
        #expect(serving.state == .active)
        _ = serving.handle(.witness(.epochSeen(epoch + 10)), at: ms(5))
        #expect(serving.state == .active && serving.epoch == epoch)
    }

    @Test func selfDeactivationWaitsForTheSettleDelayAndTheCorrelationWindow() {
        var primary = linked(.primary, peer: PeerStatus(role: .secondary, state: .standby, epoch: 1, loggedInClients: 0))
        _ = primary.handle(.census(.majorityLost(lost: 30, population: 40)), at: ms(1000))  // link up: row 4 first
        _ = primary.handle(.link(.lost(.timeout)), at: ms(1100))
        #expect(primary.state == .active)
        #expect(primary.nextDeadline == ms(1300))
        _ = primary.handle(.tick, at: ms(1299))
        #expect(primary.state == .active)
        _ = primary.handle(.tick, at: ms(1300))
        #expect(primary.state == .awaitingAuthorization)

        var uncorrelated = linked(.primary, peer: PeerStatus(role: .secondary, state: .standby, epoch: 1, loggedInClients: 0))
        _ = uncorrelated.handle(.link(.lost(.timeout)), at: ms(1000))
        _ = uncorrelated.handle(.census(.majorityLost(lost: 30, population: 40)), at: ms(7000))  // 6 s later
        _ = uncorrelated.handle(.tick, at: ms(8000))
        #expect(uncorrelated.state == .active)
    }

    func isRefusal(_ action: PolicyAction) -> Bool {
        if case .adminRefused = action { return true }
        return false
    }
}
