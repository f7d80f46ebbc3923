import ActivationPolicy
import PairNode
import HealthMonitor
import PairModel

/// The simulated TCP: the primary dials, frames arrive in order after a random latency,
/// a cut network holds frames until it heals, a close reaches the other end as a FIN.
extension SimulatedPair {
    func dial() {
        servers[0].nextDialAt = now + settings.redialInterval
        guard servers[0].connectionId == nil, servers[0].dialing == nil else { return }
        nextConnectionId += 1
        let connection = nextConnectionId
        servers[0].dialing = connection
        dialStartedAt = now
        if peerNetworkUp && servers[1].running {
            queue.push(.dialArrives(connection: connection), at: now + latency())
            // A SYN that is never answered (paused peer, network cut meanwhile) times out.
            queue.push(.dialFailed(connection: connection), at: now + settings.connectTimeout)
        } else {
            let failsAfter = peerNetworkUp ? latency() : settings.connectTimeout
            queue.push(.dialFailed(connection: connection), at: now + failsAfter)
        }
    }

    func dialArrives(_ connection: Int) {
        guard peerNetworkUp else { return }  // Lost with the network; the dialler times out.
        // A connection the primary gave up on (the peer was paused) is dead on arrival: its
        // hello never comes.
        guard servers[0].dialing == connection else { return }
        if let old = servers[1].connectionId { dropConnection(old, at: 1) }
        servers[1].connectionId = connection
        // The handshake completes before any frame the secondary sends on the connection. Its
        // opening took at least a round trip (TCP's, then the hellos and proofs), which the
        // shell passes on as the first frame's allowance.
        queue.push(.dialAnswered(connection: connection), at: deliveryTime(to: 0))
        apply(1, servers[1].node.handle(.peerConnected(handshake: (now - dialStartedAt) * 2), at: now))
    }

    func dialAnswered(_ connection: Int) {
        guard servers[0].dialing == connection else { return }
        servers[0].dialing = nil
        servers[0].connectionId = connection
        servers[0].nextDialAt = nil
        apply(0, servers[0].node.handle(.peerConnected(handshake: now - dialStartedAt), at: now))
    }

    func deliveryTime(to receiver: Int) -> MonotonicTime {
        let at = max(now + latency(), lastDelivery[receiver] + .nanoseconds(1))
        lastDelivery[receiver] = at
        return at
    }

    func send(_ frame: PeerFrame, on connection: Int, from sender: Int) {
        send(frame, on: connection, to: 1 - sender)
    }

    func send(_ frame: PeerFrame, on connection: Int, to receiver: Int) {
        if peerNetworkUp {
            queue.push(.peerFrame(to: receiver, connection: connection, frame: frame), at: deliveryTime(to: receiver))
            // A shell that sends a frame twice (in order, as TCP keeps it): the policy must
            // not act twice on it.
            if frame.isDecision, settings.duplicateFrames > 0, Double.random(in: 0..<1, using: &rng) < settings.duplicateFrames {
                queue.push(.peerFrame(to: receiver, connection: connection, frame: frame), at: deliveryTime(to: receiver))
            }
            if frame.isDecision, sentFrames[1 - receiver].count < 64 { sentFrames[1 - receiver].append(frame) }
        } else {
            stalled[1 - receiver].append((connection, frame))
        }
    }

    /// Delivers, on the live connection, a frame `sender` sent long ago (a stale frame: its
    /// epoch is below what the receiver knows). The receiver must ignore it.
    public func replayStaleFrame(from role: ServerRole) {
        let sender = index(role)
        guard peerNetworkUp, let connection = servers[1 - sender].connectionId, servers[sender].connectionId == connection,
            let frame = sentFrames[sender].first(where: { $0.epoch < servers[sender].policy.epoch })
        else { return }
        log("stale frame from \(role) replayed: \(frame)")
        queue.push(.peerFrame(to: 1 - sender, connection: connection, frame: frame), at: deliveryTime(to: 1 - sender))
    }

    func receive(_ frame: PeerFrame, on connection: Int, at i: Int) {
        guard servers[i].connectionId == connection else {
            // A frame for a connection this side no longer has: the kernel resets it.
            log("\(servers[i].role) resets stale connection \(connection) (has \(String(describing: servers[i].connectionId)))")
            if peerNetworkUp { queue.push(.peerClosed(to: 1 - i, connection: connection), at: deliveryTime(to: 1 - i)) }
            return
        }
        invariants.frameInProgress = (frame, servers[i].role)
        apply(i, servers[i].node.handle(.peerSignal(frame), at: now))
        invariants.frameInProgress = nil
    }

    /// A dead process's kernel resets the connection: only the other end hears of it.
    func resetConnection(_ connection: Int, by i: Int) {
        log("\(servers[i].role)'s connection \(connection) is reset")
        if peerNetworkUp {
            queue.push(.peerClosed(to: 1 - i, connection: connection), at: deliveryTime(to: 1 - i))
        } else {
            stalled[i].append((connection, nil))
        }
    }

    /// This side closes (its monitor gave up).
    func closeConnection(_ connection: Int, by i: Int) {
        log("\(servers[i].role) closes connection \(connection)")
        dropConnection(connection, at: i)
        if servers[i].dialing == connection { servers[i].dialing = nil }
        if peerNetworkUp {
            queue.push(.peerClosed(to: 1 - i, connection: connection), at: deliveryTime(to: 1 - i))
        } else {
            stalled[i].append((connection, nil))
        }
    }

    func peerClosed(_ connection: Int, at i: Int) {
        if servers[i].dialing == connection { servers[i].dialing = nil }
        guard servers[i].connectionId == connection else { return }
        dropConnection(connection, at: i)
    }

    /// Forgets a connection on one side and tells that side's monitor.
    func dropConnection(_ connection: Int, at i: Int) {
        guard servers[i].connectionId == connection else { return }
        servers[i].connectionId = nil
        if servers[i].role == .primary { servers[i].nextDialAt = now + settings.redialInterval }
        if servers[i].running { apply(i, servers[i].node.handle(.peerDisconnected, at: now)) }
    }
}

/// The simulated clients: log in to the active server, notice a lost server after their
/// timeout, follow redirects, and retry the other server when refused.
extension SimulatedPair {
    func clientAttempt(_ c: Int) {
        guard clients[c].session == nil else { return }
        clients[c].attempt += 1
        let attempt = clients[c].attempt
        let i = clients[c].target
        if clients[c].reach[i] && servers[i].running {
            queue.push(.clientArrives(client: c, server: i, attempt: attempt), at: now + latency())
            // A paused or vanished server never answers: the client gives up in time.
            queue.push(.clientAttemptFailed(client: c, attempt: attempt), at: now + settings.connectTimeout)
        } else {
            let failsAfter = clients[c].reach[i] ? latency() : settings.connectTimeout
            queue.push(.clientAttemptFailed(client: c, attempt: attempt), at: now + failsAfter)
        }
    }

    func clientArrives(_ c: Int, at i: Int, attempt: Int) {
        guard clients[c].attempt == attempt, clients[c].session == nil, clients[c].reach[i] else { return }
        guard servers[i].policy.state == .active, servers[i].node.servingUntil.map({ now < $0 }) ?? true else {
            retry(c)  // "not the active server": try the other one.
            return
        }
        invariants.noteLogin(on: servers[i], pair: self)
        nextSessionId += 1
        clients[c].session = (i, nextSessionId)
        servers[i].sessions[c] = nextSessionId
        updateClientCount(i, joined: 1)
    }

    func retry(_ c: Int) {
        clients[c].target = 1 - clients[c].target
        queue.push(.clientAttempt(client: c), at: now + settings.clientRetry)
    }

    func clientNoticesLoss(_ c: Int, session: Int) {
        guard let current = clients[c].session, current.id == session else { return }
        let i = current.server
        // A server that still answers (paused, or reachable again) would be kept; only a
        // silent or dead one is abandoned.
        if servers[i].running && !servers[i].isPaused && clients[c].reach[i] && servers[i].sessions[c] == session { return }
        clients[c].session = nil
        if servers[i].running && clients[c].reach[i] && servers[i].sessions[c] == session {
            // The client closes its side; the (paused) server reads the close when it resumes.
            queue.push(.serverNoticesClientLoss(server: i, client: c, session: session), at: now + latency())
        }
        clients[c].target = 1 - i
        queue.push(.clientAttempt(client: c), at: now)
    }

    func serverNoticesClientLoss(_ i: Int, client c: Int, session: Int) {
        guard servers[i].sessions[c] == session else { return }
        let clientGone = clients[c].session?.id != session || !clients[c].reach[i]
        guard clientGone else { return }  // Healed before the timeout: heartbeats resumed.
        servers[i].sessions[c] = nil
        updateClientCount(i, lost: 1)
        if clients[c].session?.id == session {
            // The server gave up first; the client notices on its own timeout.
            queue.push(.clientNoticesLoss(client: c, session: session), at: now + .milliseconds(random(0...1000)))
        }
    }

    /// The server tells every logged-in client to move to the other server.
    func redirectAll(from i: Int) {
        for (c, session) in servers[i].sessionsInOrder where clients[c].session?.id == session {
            clients[c].session = nil
            clients[c].target = 1 - i
            queue.push(.clientAttempt(client: c), at: now + latency())
        }
        servers[i].sessions = [:]
        // The node counted them gone from its census when it decided the redirect.
        updateClientCount(i)
    }
}
