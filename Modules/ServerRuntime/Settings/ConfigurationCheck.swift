import Foundation
import Licensing
import PairModel

#if canImport(Glibc)
import Glibc
#endif

/// `vcom-server check-config`: what a start would refuse (every setting, as `ServerSettings`
/// reads them), and what only shows later: a licence that is not this server's or has expired,
/// a peer address that does not resolve, a listen address this host does not have, two ports on
/// one address. Nothing is bound, nothing written.
public struct ConfigurationCheck: Sendable {
    public var problems: [ConfigurationProblem] = []
    /// What works today but needs attention (an expiry within 30 days).
    public var warnings: [ConfigurationProblem] = []
    /// The settings, when they could be read at all.
    public var settings: ServerSettings?

    public var passed: Bool { problems.isEmpty }

    public init(file: String?, flags: [String], now: Date = Date()) {
        var read = ProblemList()
        var values = SettingValues()
        do {
            values = try file.map { path throws(ConfigurationProblems) in try SettingValues.load(file: path, problems: &read) } ?? SettingValues()
            try values.apply(flags: flags)
        } catch let error as ConfigurationProblems {
            problems = error.all
            return
        } catch {
            problems = read.problems + [(error as? ConfigurationProblem) ?? ConfigurationProblem(setting: "--config", problem: "\(error)")]
            return
        }
        problems = read.problems
        do {
            let settings = try ServerSettings(values)
            self.settings = settings
            checkLicence(settings, now: now)
            checkExpiries(settings, now: now)
        } catch {
            let reported = Set(problems.map(\.setting))
            problems += error.all.filter { !reported.contains($0.setting) }
        }
        // The addresses from the values, so they are checked even when another setting is wrong.
        checkAddresses(values)
    }

    mutating func checkLicence(_ settings: ServerSettings, now: Date) {
        guard settings.role == .primary, let file = settings.licenceFile else { return }
        do {
            let text = try String(contentsOf: file, encoding: .utf8)
            let verified = try LicenceVerifier(trustedKeys: settings.vendorKeys).verify(text, boundTo: settings.serverId)
            switch verified.validity(at: now) {
            case .valid:
                let days = Int((verified.licence.expires.timeIntervalSince(now) / 86_400).rounded(.up))
                if days < 30 { warnings.append(.init(setting: "server.licence-file", problem: "the licence expires in \(days) days (\(LicenceDate.format(verified.licence.expires)))")) }
            case .notYetValid:
                problems.append(.init(setting: "server.licence-file", problem: "the licence is valid only from \(LicenceDate.format(verified.licence.issued))"))
            case .expired:
                problems.append(.init(setting: "server.licence-file", problem: "the licence expired on \(LicenceDate.format(verified.licence.expires))"))
            }
        } catch {
            problems.append(.init(setting: "server.licence-file", problem: "\(file.path): \(error)"))
        }
    }

    mutating func checkAddresses(_ values: SettingValues) {
        let listening = ["listen.client", "listen.peer", "listen.admin", "listen.metrics"].map { ($0, values.endpoint($0)) }
        let local = Self.localAddresses()
        var taken: [String: String] = [:]
        for (key, endpoint) in listening {
            guard let endpoint else { continue }
            guard let addresses = Self.resolve(endpoint.host) else {
                problems.append(.init(setting: key, problem: "'\(endpoint.host)' does not resolve"))
                continue
            }
            let wildcard = ["0.0.0.0", "::", ""].contains(endpoint.host)
            if !wildcard, !addresses.contains(where: { local.contains($0) }) {
                problems.append(.init(setting: key, problem: "\(endpoint.host) (\(addresses.joined(separator: ", "))) is not an address of this host"))
            }
            if endpoint.port != 0 {
                let slot = "\(wildcard ? "*" : endpoint.host):\(endpoint.port)"
                if let other = taken[slot] { problems.append(.init(setting: key, problem: "\(endpoint) is also \(other)")) }
                taken[slot] = key
            }
        }
        if let peer = values.endpoint("peer.address"), values.string("server.role") == "primary" {
            if Self.resolve(peer.host) == nil {
                problems.append(.init(setting: "peer.address", problem: "'\(peer.host)' does not resolve"))
            } else if peer == values.endpoint("listen.client") || peer == values.endpoint("advertise.client") {
                problems.append(.init(setting: "peer.address", problem: "\(peer) is this server's own client address: give the secondary's peer port"))
            }
        }
    }

    mutating func checkExpiries(_ settings: ServerSettings, now: Date) {
        guard let certificate = settings.tls?.contexts.current.certificate else { return }
        let days = Int((certificate.notValidAfter.timeIntervalSince(now) / 86_400).rounded(.up))
        if days < 30 {
            warnings.append(.init(setting: "tls.certificate", problem: "the certificate expires in \(days) days (\(certificate.notValidAfter.formatted(.iso8601))): `vcom-admin pki issue` makes a new one"))
        }
    }

    /// The numeric addresses a host name resolves to (nil: it does not).
    static func resolve(_ host: String) -> [String]? {
        if ["0.0.0.0", "::", ""].contains(host) { return [host] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        guard getaddrinfo(bare, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(first) }
        var addresses: [String] = []
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let entry = next {
            if let text = numeric(entry.pointee.ai_addr, length: entry.pointee.ai_addrlen) { addresses.append(text) }
            next = entry.pointee.ai_next
        }
        return addresses
    }

    /// Every address this host's interfaces carry.
    static func localAddresses() -> Set<String> {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(first) }
        var addresses: Set<String> = []
        var next: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = next {
            if let address = entry.pointee.ifa_addr {
                let length = socklen_t(address.pointee.sa_family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
                if let text = numeric(address, length: length) { addresses.insert(text) }
            }
            next = entry.pointee.ifa_next
        }
        return addresses
    }

    static func numeric(_ address: UnsafeMutablePointer<sockaddr>, length: socklen_t) -> String? {
        guard [AF_INET, AF_INET6].contains(Int32(address.pointee.sa_family)) else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(address, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else { return nil }
        // A scoped IPv6 address (fe80::1%eth0) compares without its scope.
        return String(cString: buffer).split(separator: "%").first.map(String.init)
    }
}
