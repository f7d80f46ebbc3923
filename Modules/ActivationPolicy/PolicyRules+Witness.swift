import PairModel

extension ActivationPolicy {
    /// The witness's word (issue 29, docs/failover-policy.md "With a witness"). A standby
    /// that lost its link takes over on a held key, a peer found gone, or a witness that is
    /// down; a server serving with the link down stops when its lease is over.
    mutating func witnessSaid(_ verdict: WitnessVerdict, at now: MonotonicTime) -> [PolicyAction] {
        guard configuration.witness != nil else { return [] }
        switch verdict {
        case .keyHeld, .peerGone, .witnessDown:
            guard awaitingWitness, link == .down, persistent.state == .standby, !paused else { return [] }
            guard activationRefusal == nil else { return [.warning("the witness allows a takeover but this server cannot serve: \(activationRefusal!)")] }
            awaitingWitness = false
            return activate(at: now, incident: verdict == .witnessDown ? .peerLinkLostWitnessDown : .peerLinkLost)
        case .leaseLost:
            // Even in maintenance: the peer may hold the key now, and two servers serving
            // through a cut link is what the witness is there to prevent.
            guard link == .down, persistent.state == .active else { return [] }
            let incident = makeIncident(.witnessLeaseLost, at: now)
            let actions = [.recordIncident(incident)] + deactivate(to: role == .primary ? .awaitingAuthorization : .standby, redirect: .deactivated)
            // A secondary stands by as after any lost link: the key again (or the witness's
            // word) makes it serve. A primary waits for authorization, as after row 3.
            if role == .secondary, hasHeardFromPeer { awaitingWitness = true }
            return actions
        }
    }
}
