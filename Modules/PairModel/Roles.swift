/// The pair's shared vocabulary, at the bottom of the dependency graph: the wire format, the
/// decision machines, the licence, the client library and the apps all speak it, and it
/// depends on nothing.

public enum ServerRole: UInt8, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case primary = 1
    case secondary = 2

    public var description: String { self == .primary ? "primary" : "secondary" }
}

public enum ServerState: UInt8, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case standby = 1
    case active = 2
    /// A primary that handed over and serves again only after an authorized switchover.
    case awaitingAuthorization = 3

    public var description: String {
        switch self {
        case .standby: "standby"
        case .active: "active"
        case .awaitingAuthorization: "deactivated, awaiting authorization"
        }
    }
}

/// Where a server can be reached.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// "host:port" or "[v6]:port".
    public init?(parsing text: String) {
        var trimmed = Substring(text).drop(while: \.isWhitespace)
        while trimmed.last?.isWhitespace == true { trimmed = trimmed.dropLast() }
        guard let colon = trimmed.lastIndex(of: ":"), let port = UInt16(trimmed[trimmed.index(after: colon)...]) else { return nil }
        var host = String(trimmed[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }
}
