import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The key a connection's limits and throttles are counted under: its IPv4 address, or the
/// /64 prefix of its IPv6 address (one host or site gets a whole /64 and can pick any address
/// in it, so per-address counts would cost an attacker nothing). IPv4-mapped IPv6 addresses
/// count as their IPv4 address.
public func sourceKey(_ address: SocketAddress?) -> String {
    guard let address else { return "unknown" }
    switch address {
    case .v4:
        return address.ipAddress ?? "unknown"
    case .v6:
        guard let text = address.ipAddress else { return "unknown" }
        return ipv6SourceKey(text)
    case .unixDomainSocket:
        return "local"
    }
}

/// "2001:db8:1:2::/64" for any address in that /64; an IPv4-mapped address as its IPv4.
func ipv6SourceKey(_ text: String) -> String {
    var bytes = [UInt8](repeating: 0, count: 16)
    guard inet_pton(AF_INET6, text, &bytes) == 1 else { return text }
    if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
        return bytes[12..<16].map(String.init).joined(separator: ".")
    }
    let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
    return groups.joined(separator: ":") + "::/64"
}
