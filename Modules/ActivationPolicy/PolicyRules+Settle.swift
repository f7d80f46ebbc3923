import HealthMonitor
import PairModel

/// Row 6: both servers were active when the link came up (a split healed). The side with
/// fewer logged-in clients yields, so as few clients as possible move; on a tie the higher
/// epoch keeps serving.
///
/// The decision is taken on the counts of the moment it is carried out, not of the moment
/// the link came up: during a long flap hold clients keep arriving on either side, and a
/// decision taken on stale counts could strand them. Each side, once its own link is stable,
/// sends one *settle entry* (an announcement with a round number) and decides when it holds
/// its own entry and the peer's for that round. Both sides decide on the same two entries, so
/// they always agree; a side whose hold is longer simply answers later.
extension ActivationPolicy {
    mutating func settleIfDue(at now: MonotonicTime) -> [PolicyAction] {
        guard splitToSettle, link == .up(stable: true), persistent.state == .active else { return [] }
        if settle == nil {
            settle = Settle(round: lastSettleRound + 1, own: nil, peer: nil)
        }
        guard var current = settle else { return [] }
        var actions: [PolicyAction] = []
        if current.own == nil {
            var entry = status
            entry.settleRound = current.round
            current.own = entry
            settle = current
            actions.append(.announce(entry))
        }
        return actions + decideSettle(at: now)
    }

    /// The peer's entry for a round: kept, answered once this side's link is stable, decided
    /// when both are in.
    mutating func settleEntryReceived(_ entry: PeerStatus, at now: MonotonicTime) -> [PolicyAction] {
        if var current = settle, current.round == entry.settleRound {
            current.peer = entry
            settle = current
        } else if entry.settleRound > lastSettleRound, settle?.own == nil {
            settle = Settle(round: entry.settleRound, own: nil, peer: entry)
        } else {
            return [.warning("ignored settle entry of round \(entry.settleRound): this side is at round \(settle?.round ?? lastSettleRound)")]
        }
        guard persistent.state == .active, splitToSettle else {
            // Not active (any more): answer anyway, so the peer's round completes and it sees
            // that there is nothing to settle.
            return answerSettleRound()
        }
        return settleIfDue(at: now)
    }

    /// Sends this side's entry for the pending round (as it is now, active or not).
    private mutating func answerSettleRound() -> [PolicyAction] {
        guard var current = settle, current.own == nil, link != .down else { return [] }
        var entry = status
        entry.settleRound = current.round
        current.own = entry
        settle = current
        lastSettleRound = current.round
        settle = nil
        return [.announce(entry)]
    }

    private mutating func decideSettle(at now: MonotonicTime) -> [PolicyAction] {
        guard let current = settle, let own = current.own, let peer = current.peer else { return [] }
        lastSettleRound = current.round
        settle = nil
        guard own.state == .active, peer.state == .active else {
            // One of the two had already stopped serving: nothing to settle.
            splitToSettle = persistent.state == .active && self.peer?.state == .active ? splitToSettle : false
            return []
        }
        splitToSettle = false
        if Self.ownYields(own: own, peer: peer) {
            // The incident shows the two entries compared, so the decision can be checked.
            let incident = makeIncident(.splitResolved(yielded: true), at: now) {
                $0.peer = peer
                $0.loggedInClients = own.loggedInClients
            }
            return [.recordIncident(incident)] + deactivate(to: yieldedState, redirect: .yieldedAfterSplit) + adoptEpoch(peer.epoch)
        }
        let incident = makeIncident(.splitResolved(yielded: false), at: now) {
            $0.peer = peer
            $0.loggedInClients = own.loggedInClients
        }
        return [.recordIncident(incident)]
    }

    /// Fewer clients yields; on equal counts the lower epoch yields.
    static func ownYields(own: PeerStatus, peer: PeerStatus) -> Bool {
        own.loggedInClients != peer.loggedInClients ? own.loggedInClients < peer.loggedInClients : own.epoch < peer.epoch
    }
}
