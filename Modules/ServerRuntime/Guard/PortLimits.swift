/// What a stranger (a connection that has not authenticated yet) may hold of one port, as
/// OpenSSH's MaxStartups and LoginGraceTime do: how many such connections per source address
/// and in all, how soon it must start talking, and how soon it must have authenticated.
/// Past a cap a connection is closed at once; past a deadline it is closed. Logged-in
/// sessions do not count.
public struct PortLimits: Sendable, Equatable {
    public var perSource: Int
    public var total: Int
    /// The first bytes (a TLS ClientHello, a Wire hello, an HTTP request) must arrive within
    /// this; nil: only the authentication deadline applies.
    public var firstBytes: Duration?
    /// Not authenticated within this: closed. For the metrics port, which has no login, the
    /// longest a connection lives.
    public var authentication: Duration

    public init(perSource: Int, total: Int, firstBytes: Duration?, authentication: Duration) {
        self.perSource = max(1, perSource)
        self.total = max(1, total)
        self.firstBytes = firstBytes
        self.authentication = authentication
    }
}

/// Every port's limits, and the throttles on password checks (docs/security.md, "Limits and
/// throttles", lists each with its setting and what a client sees).
public struct ConnectionLimits: Sendable, Equatable {
    /// Clients of a site often sit behind one NAT, and the benchmarks run 10,000 clients from
    /// one address whose first logins come 256 at a time: 512 per source. A handshake must
    /// start within a second (a ClientHello follows the connect at once); the whole login
    /// within 10 s (a client itself gives up after 3 s of silence).
    public var client = PortLimits(perSource: 512, total: 8_192, firstBytes: .seconds(1), authentication: .seconds(10))
    /// Administrators are few; a login is a SCRAM round trip: 30 s is generous.
    public var admin = PortLimits(perSource: 8, total: 64, firstBytes: .seconds(10), authentication: .seconds(30))
    /// One primary; the rest are strangers or scanners.
    public var peer = PortLimits(perSource: 4, total: 16, firstBytes: .seconds(5), authentication: .seconds(10))
    /// Scrapers and load balancers: a request is answered at once and the connection closed.
    public var metrics = PortLimits(perSource: 8, total: 32, firstBytes: .seconds(5), authentication: .seconds(30))
    /// Password checks (scrypt, ~56 ms each on the hashing threads) waiting or running: in all,
    /// about 3 s of work for two threads (a client gives up after 3 s), and per source.
    public var passwordChecks = 128
    public var passwordChecksPerSource = 8
    /// Descriptors kept for what must never starve: the peer link, the stores, the listeners.
    public var descriptorReserve = 64

    public init() {}

    /// The caps scaled down, when the descriptor limit cannot hold them all: strangers may use
    /// at most half of what is left after the reserve, the rest is for logged-in sessions.
    public func fitted(toDescriptors limit: Int) -> ConnectionLimits {
        let available = max(64, (limit - descriptorReserve) / 2)
        let wanted = client.total + admin.total + peer.total + metrics.total
        guard wanted > available else { return self }
        let scale = Double(available) / Double(wanted)
        var fitted = self
        // A source keeps at most a quarter of a scaled-down port: one stranger cannot fill it.
        func scaled(_ limits: PortLimits, floor: Int) -> PortLimits {
            var limits = limits
            limits.total = max(floor, Int(Double(limits.total) * scale))
            limits.perSource = min(limits.perSource, max(1, limits.total / 4))
            return limits
        }
        fitted.client = scaled(client, floor: 16)
        fitted.admin = scaled(admin, floor: 16)
        fitted.peer = scaled(peer, floor: 8)
        fitted.metrics = scaled(metrics, floor: 8)
        return fitted
    }
}
