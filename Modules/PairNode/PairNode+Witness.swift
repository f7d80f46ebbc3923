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
            witness!.refusedSinceLoss = nil
            // A closed link may be a crash: if the peer's port refuses, no lease wait.
            witness!.portChecksUntil = cause == .closed ? now + WitnessBooks.portCheckWindow : nil
            witness!.nextPortCheckAt = cause == .closed ? now : nil
        case .up, .restored:
            witness!.linkLostAt = nil
            witness!.refusedSinceLoss = nil
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
        books.lastReplyAt = now
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
        if sinceLoss {
            books.refusedSinceLoss = reply == .refused && books.refusedSinceLoss != false
        }
        witness = books
        switch reply {
        case .holding:
            decide(.witness(.keyHeld), at: now, into: &effects)
        case .heldByPeer:
            // Its own lease gone and the peer holding the key: the peer may serve. A server
            // that took over from a peer found gone never held it (the key names the dead
            // peer until its lease runs out), and keeps serving.
            if wasHolding, policy.state == .active, !policy.isLinkUp { decide(.witness(.leaseLost), at: now, into: &effects) }
        default:
            break
        }
    }

    /// The lease's end by this server's clock, and the refusals that let the seed's rules apply.
    mutating func witnessDeadlines(at now: MonotonicTime, into effects: inout PairEffects) {
        guard let books = witness else { return }
        if books.holding, let until = books.leaseValidUntil, now >= until {
            witness!.holding = false
            witness!.leaseValidUntil = nil
            if policy.state == .active, !policy.isLinkUp { decide(.witness(.leaseLost), at: now, into: &effects) }
        }
        if let down = books.witnessDownAt, now >= down {
            witness!.refusedSinceLoss = false  // said once
            effects.directives.append(.warning("the witness refused every request for \(books.timing.leaseTTL + books.timing.driftMargin) after the peer link was lost: it is down"))
            decide(.witness(.witnessDown), at: now, into: &effects)
        }
    }

    /// What to ask the witness now: hold the key while serving (acquire, then keep alive),
    /// acquire it while waiting to take over, release it otherwise; and check the peer's port.
    mutating func witnessRequests(at now: MonotonicTime, into effects: inout PairEffects) {
        guard var books = witness else { return }
        let wants = policy.state == .active || policy.awaitingWitness
        if !books.inFlight {
            if wants {
                if now >= books.nextRequestAt ?? now {
                    let request: WitnessRequest = books.holding ? .keepAlive : .acquire(epoch: policy.epoch)
                    let interval = books.holding || !policy.awaitingWitness ? books.keepAliveInterval : WitnessBooks.acquireInterval
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
