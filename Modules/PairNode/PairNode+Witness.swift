import ActivationPolicy
import HealthMonitor
import PairModel

/// The witness's part of the node (issue 29): the requests to etcd, their answers kept in
/// `WitnessBooks`, and the verdicts the policy decides on. Nothing here runs without a
/// witness configured.
extension PairNode {
    mutating func witnessNoteLink(_ report: PeerLinkMonitor.Report, at now: MonotonicTime) {
        guard witness != nil else { return }
        switch report {
        case .lost(let cause):
            witness!.linkLostAt = now
            witness!.witnessDownSaid = false
            witness!.peerHeldSinceLoss = false
            witness!.takeOverAt = nil
            // A closed link may be a crash: if the peer's port refuses, no lease wait.
            witness!.portChecksUntil = cause == .closed ? now + WitnessBooks.portCheckWindow : nil
            witness!.nextPortCheckAt = cause == .closed ? now : nil
        case .up, .restored:
            // The peer answers again: whatever let this server serve without the key (the
            // peer found gone, the witness down, a lone start) no longer holds. If the link is
            // lost again before it holds the key, it stops at once, as any keyless server:
            // the peer may take a key that is free by then (`failover-sim --witness` seed 2357).
            witness!.keylessServingAllowed = false
            witness!.linkLostAt = nil
            witness!.takeOverAt = nil
            witness!.portChecksUntil = nil
            witness!.nextPortCheckAt = nil
        default:
            break
        }
    }

    mutating func witnessAnswered(_ reply: WitnessReply, sentAt: MonotonicTime, at now: MonotonicTime, into effects: inout PairEffects) {
        guard var books = witness else { return }
        let wasHolding = books.holding
        books.inFlight = false
        books.lastReply = reply
        let sinceLoss = books.linkLostAt.map { sentAt >= $0 } ?? false
        switch reply {
        case .holding:
            books.holding = true
            books.leaseValidUntil = sentAt + books.timing.leaseTTL - books.timing.driftMargin
        case .heldByPeer, .free:
            books.holding = false
            books.leaseValidUntil = nil
        case .refused, .unreachable:
            break  // a lease held runs out by the clock
        }
        if reply == .refused {
            books.refusingSince = books.refusingSince ?? now
        } else {
            books.refusingSince = nil  // up, or unknown (a timeout): it may have renewed a lease
            books.witnessDownSaid = false
        }
        if sinceLoss, case .heldByPeer = reply { books.peerHeldSinceLoss = true }
        witness = books
        switch reply {
        case .holding:
            guard policy.awaitingWitness, books.takeOverAt == nil else { break }  // a wait already runs
            if books.peerHeldSinceLoss {
                decide(.witness(.keyHeld), at: now, into: &effects)
            } else {
                let skew = configuration.link.lossTimeout + configuration.link.heartbeatInterval
                witness!.takeOverAt = now + skew
                effects.directives.append(.warning("the witness's key was free at once after the link was lost: taking over in \(skew), when the peer has seen the loss too"))
            }
        case .heldByPeer(let epoch):
            if epoch > policy.epoch, policy.state != .active { decide(.witness(.epochSeen(epoch)), at: now, into: &effects) }
            // Its own lease gone and the peer holding the key: the peer may serve. A server
            // that took over from a peer found gone never held it (the key names the dead
            // peer until its lease runs out), and keeps serving.
            if wasHolding, policy.state == .active, !policy.isLinkUp {
                witness!.keylessServingAllowed = false
                decide(.witness(.leaseLost), at: now, into: &effects)
            }
        default:
            break
        }
    }

    /// The lease's end by this server's clock, and the refusals that let the seed's rules apply.
    /// A server serving with the link down and no lease, which no rule let serve keyless,
    /// stops at once: the key may be free for the peer to take.
    mutating func witnessDeadlines(at now: MonotonicTime, into effects: inout PairEffects) {
        guard let books = witness else { return }
        if books.holding, let until = books.leaseValidUntil, now >= until {
            witness!.holding = false
            witness!.leaseValidUntil = nil
        }
        if policy.state == .active, !policy.isLinkUp, !witness!.holding, !books.keylessServingAllowed {
            decide(.witness(.leaseLost), at: now, into: &effects)
        }
        if let at = books.takeOverAt, now >= at {
            witness!.takeOverAt = nil
            if witness!.holding { decide(.witness(.keyHeld), at: now, into: &effects) }
        }
        if let down = books.witnessDownAt, now >= down {
            witness!.witnessDownSaid = true  // once per wait (no tick loop on a past deadline)
            guard policy.awaitingWitness else { return }
            effects.directives.append(.warning("the witness has refused every request for \(books.timing.leaseTTL + books.timing.driftMargin) and the peer link is lost: it is down, the seed's rules apply"))
            decide(.witness(.witnessDown), at: now, into: &effects)
        }
    }

    /// What to ask the witness now: hold the key while serving (acquire, then keep alive),
    /// acquire it while waiting to take over, release it otherwise; and check the peer's port.
    mutating func witnessRequests(at now: MonotonicTime, into effects: inout PairEffects) {
        guard var books = witness else { return }
        // A standby that cannot serve (no licence yet) does not hold the key it could not use:
        // its peer, which may serve, would wait for it for ever (`failover-sim --witness` seed
        // 61567: the secondary took the key free after the witness came back, and nobody served).
        let wants = policy.state == .active || (policy.awaitingWitness && policy.canActivate)
        if policy.awaitingWitness && !books.wasAwaiting { books.witnessDownSaid = false }  // a new wait
        books.wasAwaiting = policy.awaitingWitness
        if policy.state != .active {
            books.keylessServingAllowed = false
        } else if books.holding {
            books.keylessServingAllowed = false  // from now on its lease is what lets it serve
        }
        if !books.inFlight {
            if wants {
                if now >= books.nextRequestAt ?? now {
                    let request: WitnessRequest = books.holding ? .keepAlive : .acquire(epoch: policy.epoch)
                    let interval = books.holding ? books.keepAliveInterval : WitnessBooks.acquireInterval
                    books.inFlight = true
                    books.nextRequestAt = now + interval
                    effects.directives.append(.witness(request))
                }
            } else if books.holding {
                books.holding = false
                books.leaseValidUntil = nil
                books.inFlight = true
                books.nextRequestAt = nil
                effects.directives.append(.witness(.release))
            } else {
                books.nextRequestAt = nil
            }
        }
        if !policy.awaitingWitness {
            books.portChecksUntil = nil
            books.nextPortCheckAt = nil
        } else if !books.portCheckInFlight, let next = books.nextPortCheckAt, let until = books.portChecksUntil, now >= next {
            books.portCheckInFlight = true
            let following = now + WitnessBooks.portCheckInterval
            books.nextPortCheckAt = following < until ? following : nil
            effects.directives.append(.checkPeerPort)
        }
        witness = books
    }
}
