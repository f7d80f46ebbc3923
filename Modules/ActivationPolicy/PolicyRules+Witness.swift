import PairModel

extension ActivationPolicy {
    /// The witness's word (issue 29, docs/failover-policy.md "With a witness"). A standby
    /// that lost its link takes over on a held key, a peer found gone, or a witness that is
    /// down; a server serving with the link down stops when its lease is over.
    mutating func witnessSaid(_ verdict: WitnessVerdict, at now: MonotonicTime) -> [PolicyAction] {
        guard configuration.witness != nil else { return [] }
        switch verdict {
        case .keyHeld, .peerGone, .witnessDown:
            // In maintenance nobody takes over, except the secondary that served when its lease
            // ran out taking the key back: it is free (the peer does not take over in
            // maintenance either), and without it nobody would serve until maintenance ends
            // (`failover-sim --witness` seed 9933: a serving secondary frozen 2 s).
            let retaking = paused && verdict == .keyHeld && leaseLostInMaintenance
            guard awaitingWitness, link == .down, persistent.state == .standby, !paused || retaking else { return [] }
            guard activationRefusal == nil else { return [.warning("the witness allows a takeover but this server cannot serve: \(activationRefusal!)")] }
            awaitingWitness = false
            leaseLostInMaintenance = false
            let cause: IncidentCause = retaking ? .witnessKeyRetaken : verdict == .witnessDown ? .peerLinkLostWitnessDown : .peerLinkLost
            return activate(at: now, incident: cause)
        case .leaseLost:
            // Even in maintenance: the peer may hold the key now, and two servers serving
            // through a cut link is what the witness is there to prevent.
            guard link == .down, persistent.state == .active else { return [] }
            let incident = makeIncident(.witnessLeaseLost, at: now)
            let actions = [.recordIncident(incident)] + deactivate(to: role == .primary ? .awaitingAuthorization : .standby, redirect: .deactivated)
            // A secondary stands by as after any lost link: the key again (or the witness's
            // word) makes it serve. A primary waits for authorization, as after row 3.
            if role == .secondary, hasHeardFromPeer {
                awaitingWitness = true
                leaseLostInMaintenance = paused
            }
            return actions
        case .epochSeen(let epoch):
            // A serving server below it has lost its lease, which `leaseLost` handles.
            guard persistent.state != .active else { return [] }
            // Epochs grow by a few per failover: one near the top is a damaged or foreign value
            // in etcd, and minting above it would overflow.
            guard epoch < UInt64.max / 2 else { return [.warning("ignored an implausible epoch in the witness's key: \(epoch)")] }
            let adopted = adoptEpoch(epoch)
            return adopted.isEmpty ? [] : adopted + announceIfLinked()
        }
    }
}
