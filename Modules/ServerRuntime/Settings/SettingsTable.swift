import PairModel

/// Every setting of the server, declared once: its key in the configuration file, its flag
/// (if it has one), what values it takes, its default and what it means. The command line, the
/// file, `vcom-server --help`, `vcom-server settings` and the table in docs/configuration.md
/// all come from here (a test compares the doc with it).
public struct Setting: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case text
        /// A file the server reads.
        case path
        /// host:port, or [v6]:port.
        case endpoint
        /// 1 to 64 letters, digits, '.', '_', '-'.
        case identifier
        case choice([String])
        case integer(ClosedRange<Int>)
        case boolean
    }

    public var key: String
    /// `--name`; nil: in the file only.
    public var flag: String?
    /// A flag without a value, which sets this value (`--plaintext` sets `tls.plaintext` to true).
    public var flagSets: String?
    public var kind: Kind
    /// What the server uses when the setting is absent, as the docs print it; nil when it has
    /// none (required, or off when absent: `help` says which).
    public var defaultValue: String?
    public var help: String

    init(_ key: String, flag: String? = nil, sets: String? = nil, _ kind: Kind, default value: String? = nil, _ help: String) {
        self.key = key
        self.flag = flag
        flagSets = sets
        self.kind = kind
        defaultValue = value
        self.help = help
    }

    /// The problem with `value` for this setting (nil: fine).
    public func problem(with value: String) -> String? {
        switch kind {
        case .text, .path: return value.isEmpty ? "must not be empty" : nil
        case .endpoint: return Endpoint(parsing: value) == nil ? "'\(value)' is not host:port" : nil
        case .identifier:
            let ok = (1...64).contains(value.count) && value.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }
            return ok ? nil : "'\(value)' must be 1 to 64 letters, digits, '.', '_' or '-'"
        case .choice(let choices): return choices.contains(value) ? nil : "'\(value)' must be \(choices.joined(separator: " or "))"
        case .integer(let range):
            guard let number = Int(value), range.contains(number) else {
                return "'\(value)' must be a whole number from \(range.lowerBound) to \(range.upperBound)"
            }
            return nil
        case .boolean: return ["true", "false"].contains(value) ? nil : "'\(value)' must be true or false"
        }
    }

    /// How the docs and `--help` describe the values it takes.
    public var valuesText: String {
        switch kind {
        case .text: "text"
        case .path: "a file"
        case .endpoint: "host:port"
        case .identifier: "an id"
        case .choice(let choices): choices.joined(separator: " or ")
        case .integer(let range): "\(range.lowerBound.formatted) to \(range.upperBound.formatted)"
        case .boolean: "true or false"
        }
    }
}

extension Int {
    /// 10,000 rather than 10000, as the docs write numbers.
    var formatted: String {
        let digits = String(Swift.abs(self))
        var groups: [Substring] = []
        var end = digits.endIndex
        while end > digits.startIndex {
            let start = digits.index(end, offsetBy: -3, limitedBy: digits.startIndex) ?? digits.startIndex
            groups.insert(digits[start..<end], at: 0)
            end = start
        }
        return (self < 0 ? "-" : "") + groups.joined(separator: ",")
    }
}

public enum SettingsTable {
    public static let all: [Setting] = [
        Setting("server.role", flag: "--role", .choice(["primary", "secondary"]), "Which of the pair this server is. Required."),
        Setting("server.id", flag: "--id", .identifier, "This server's id. On the primary, the id its licence is bound to. Required."),
        Setting(
            "server.primary-id", flag: "--primary-id", .identifier,
            "On the secondary: the primary's id, whose shared licence it accepts. Required on the secondary."),
        Setting(
            "server.data-dir", flag: "--data-dir", .path,
            "Where everything durable lives. Created if missing, mode 0700, its files 0600 (tightened at start, with a warning, if found open to others). Required."),
        Setting(
            "server.cluster-secret-file", flag: "--cluster-secret-file", .path,
            "The pair's shared secret: the file's raw bytes (one trailing newline aside), at least 32 of them. Never a command-line value (it would show in `ps`). Refused if open to other users (mode 0600, or 0640 when owned by root). Required."),
        Setting("server.vendor-key-file", flag: "--vendor-key-file", .path, "The vendor's public key, to verify licences. Required."),
        Setting("server.licence-file", flag: "--licence-file", .path, "The primary's licence. Required on the primary."),
        Setting("server.threads", flag: "--threads", .integer(1...256), default: "one per core", "Event-loop threads for the client and admin ports."),
        Setting(
            "listen.client", flag: "--client-listen", .endpoint,
            "Where clients connect. Port 0 takes a free port (read it from the ready line). Required."),
        Setting("listen.peer", flag: "--peer-listen", .endpoint, "On the secondary: where the primary's peer link arrives. Required on the secondary."),
        Setting("listen.metrics", flag: "--metrics-listen", .endpoint, "Where `/metrics` is served (Prometheus text format). Off when absent."),
        Setting("listen.admin", flag: "--admin-listen", .endpoint, "Where `vcom-admin` connects (docs/admin.md). Off when absent."),
        Setting(
            "advertise.client", flag: "--advertise-client", .endpoint,
            "The address clients are told to use for this server (given to the peer's clients at login). Default: `listen.client` with its bound port; required when `listen.client` is a wildcard address."),
        Setting("peer.address", flag: "--peer-address", .endpoint, "On the primary: where it dials its secondary. Required on the primary."),
        Setting(
            "peer.client-address", flag: "--peer-client-address", .endpoint,
            "The other server's client address as this server's clients should use it, overriding what the peer advertises (NAT, DNS names)."),
        Setting("timings.peer-heartbeat-ms", flag: "--peer-heartbeat-ms", .integer(10...10_000), default: "100", "Peer heartbeat interval."),
        Setting(
            "timings.peer-misses", flag: "--peer-misses", .integer(2...100), default: "3",
            "Silent intervals before the peer link counts as lost (the loss timeout is heartbeat × misses)."),
        Setting("timings.client-heartbeat-ms", flag: "--client-heartbeat-ms", .integer(50...60_000), default: "1000", "Heartbeat interval told to clients."),
        Setting(
            "timings.client-misses", flag: "--client-misses", .integer(2...100), default: "3",
            "Missed heartbeats before a side gives up on the other. The client census window is `client-heartbeat-ms × (client-misses + 1)`."),
        Setting(
            "timings.token-lifetime-s", flag: "--token-lifetime-s", .integer(60...2_592_000), default: "43200",
            "Session token lifetime from the password login that began its chain (renewals keep it)."),
        Setting(
            "timings.startup-peer-wait-ms", flag: "--startup-peer-wait-ms", .integer(0...600_000), default: "1000",
            "How long a starting server waits to hear its peer before deciding alone."),
        Setting(
            "timings.handover-timeout-ms", flag: "--handover-timeout-ms", .integer(100...600_000), default: "5000",
            "How long a handover (row 4 of docs/failover-policy.md) waits for clients on the peer."),
        Setting(
            "timings.switchover-timeout-ms", flag: "--switchover-timeout-ms", .integer(100...600_000), default: "5000",
            "How long an authorized switchover waits for the peer."),
        Setting(
            "timings.announcement-delay-ms", flag: "--announcement-delay-ms", .integer(0...60_000), default: "1000",
            "After the peer link *closed* (not went silent), how long the clients watching this server wait to hear that it serves: their own connections to the dead peer closed too, so they come by themselves (docs/failover-policy.md, \"Clients of a silent server\")."),
        Setting(
            "tls.certificate", flag: "--tls-certificate", .path,
            "This server's certificate (PEM). Required unless `tls.plaintext`: every port speaks TLS by default. Reloaded when it changes (docs/security.md)."),
        Setting("tls.key", flag: "--tls-key", .path, "Its private key (PEM). Refused if open to other users, as the cluster secret."),
        Setting("tls.ca", flag: "--tls-ca", .path, "The pair's CA certificate (PEM)."),
        Setting(
            "tls.peer-name", flag: "--peer-name", .text,
            "The name the peer's certificate must carry. Required on the primary; on the secondary, default `server.primary-id`."),
        Setting(
            "tls.clients", flag: "--no-client-tls", sets: "false", .boolean, default: "true",
            "`false` serves the client port in clear (closed networks); the peer and admin ports keep TLS."),
        Setting("tls.plaintext", flag: "--plaintext", sets: "true", .boolean, default: "false", "`true`: no TLS on any port (test benches only; logged as a warning)."),
        Setting(
            "tls.handshake-limit", .integer(1...100_000), default: "128",
            "TLS handshakes in progress at once on the client port; later ones wait their turn, sources taking turns (docs/security.md)."),
        Setting("tls.reload-check-s", .integer(1...86_400), default: "10", "How often the certificate files are checked for a renewal. SIGHUP checks at once."),
        Setting(
            "log.level", flag: "--log-level", .choice(["trace", "debug", "info", "notice", "warning", "error", "critical"]), default: "info",
            "The least level logged. Changes of serving state are logged at notice with their reason."),
        Setting(
            "log.format", flag: "--log-format", .choice(["text", "json"]), default: "text",
            "`text`: one readable line per event; `json`: one JSON object per line (millisecond UTC timestamp, level, message, metadata as fields), for log shippers."),
        Setting(
            "hooks.on-state-change", flag: "--on-state-change", .path,
            "A program run on every change of serving state, never through a shell, with VCOM_STATE, VCOM_ROLE, VCOM_EPOCH, VCOM_INCIDENT, VCOM_REASON and VCOM_SERVER_ID in its environment; one at a time, in order, off the control loop (docs/configuration.md, \"State-change hooks\"). An absolute path to an executable file. Off when absent."),
        Setting(
            "hooks.timeout-s", .integer(1...3_600), default: "30",
            "A hook still running after this is killed (SIGTERM, then SIGKILL 2 s later) and the failure logged."),
        Setting(
            "metrics.read-token-file", flag: "--metrics-read-token-file", .path,
            "A private file (0600) holding a token that `/`, `/status.json` and `/metrics` then require (`Authorization: Bearer TOKEN`, or `?token=TOKEN` in a browser); the health paths stay open. Off when absent: the port answers anyone who reaches it, so bind it to loopback or a management network."),
        Setting(
            "write.concern", flag: "--write-concern", .choice(["both", "local"]), default: "both",
            "`both`: a configuration write is acknowledged once the peer has it on disk too (or, after write.timeout-ms, as `local only` with the reason; vcom-admin exits 1); `local`: once on this server's disk, replicated right after (docs/config-store.md, \"Write concern\")."),
        Setting(
            "write.timeout-ms", .integer(100...60_000), default: "1000",
            "How long a write waits for the peer's confirmation before it is acknowledged as local only. A server that stops serving meanwhile acknowledges nothing."),
        Setting(
            "witness.etcd", flag: "--witness-etcd", .text,
            "The witness (docs/failover-policy.md, \"With a witness\"): etcd's client URLs, a TOML array or comma-separated (`http://host:2379`, `https://host:2379`). The serving server holds the key `/vcom/<primary id>/active` under a lease; a silent link is taken over only with it. Off when absent: the seed's rules exactly."),
        Setting(
            "witness.lease-ttl-s", flag: "--witness-lease-ttl-s", .integer(2...60), default: "3",
            "The witness lease's time to live: what a silent failure costs on top of the link's detection (etcd's own floor is about 2 s)."),
        Setting(
            "witness.margin-ms", flag: "--witness-margin-ms", .integer(100...10_000), default: "500",
            "Taken off the lease by its holder, which stops serving that much before etcd could free the key (clock drift, late timers). Less than half the time to live."),
        Setting("witness.ca-file", flag: "--witness-ca-file", .path, "For `https://` witness URLs: the CA that signed etcd's certificate (PEM)."),
        Setting("witness.cert-file", flag: "--witness-cert-file", .path, "A client certificate for etcd (PEM), when etcd asks for one; with `witness.key-file`."),
        Setting("witness.key-file", flag: "--witness-key-file", .path, "The client certificate's private key (PEM, mode 0600)."),
        Setting("limits.client-per-source", .integer(1...1_000_000), default: "512", "Client connections not yet logged in from one address (IPv6: one /64)."),
        Setting("limits.client-connections", .integer(1...1_000_000), default: "8192", "Client connections not yet logged in, overall."),
        Setting("limits.client-first-bytes-ms", .integer(100...60_000), default: "1000", "A client connection must send its first bytes within this."),
        Setting("limits.client-login-timeout-ms", .integer(500...600_000), default: "10000", "... and complete its login or watch within this."),
        Setting("limits.admin-per-source", .integer(1...10_000), default: "8", "Admin connections not yet logged in from one address."),
        Setting("limits.admin-connections", .integer(1...10_000), default: "64", "Admin connections not yet logged in, overall."),
        Setting("limits.admin-login-timeout-ms", .integer(500...600_000), default: "30000", "An admin connection must complete its SCRAM login within this."),
        Setting("limits.peer-per-source", .integer(1...1_000), default: "4", "Peer-port connections not yet proved from one address."),
        Setting("limits.peer-connections", .integer(1...1_000), default: "16", "Peer-port connections not yet proved, overall."),
        Setting("limits.metrics-per-source", .integer(1...10_000), default: "8", "`/metrics` connections from one address."),
        Setting("limits.metrics-connections", .integer(1...10_000), default: "32", "`/metrics` connections, overall."),
        Setting(
            "limits.password-checks", .integer(1...100_000), default: "128",
            "Password checks (scrypt) waiting or running, overall; beyond, logins are refused as busy."),
        Setting("limits.password-checks-per-source", .integer(1...100_000), default: "8", "... from one address (sources take turns)."),
        Setting(
            "limits.client-login-failures", .integer(1...1_000), default: "5",
            "Failed client password logins per operator and address within a minute before a lock (1 min, doubling to 1 h)."),
        Setting("limits.client-login-failures-per-source", .integer(1...100_000), default: "30", "... per address, any operator."),
        Setting("limits.admin-login-failures", .integer(1...1_000), default: "5", "Failed admin logins per account and address within a minute before a lock."),
        Setting("limits.admin-login-failures-per-source", .integer(1...100_000), default: "20", "... per address, any account."),
    ]

    public static let byKey: [String: Setting] = Dictionary(uniqueKeysWithValues: all.map { ($0.key, $0) })
    public static let byFlag: [String: Setting] = Dictionary(uniqueKeysWithValues: all.compactMap { setting in setting.flag.map { ($0, setting) } })

    /// The table of docs/configuration.md (Markdown), as the docs must show it.
    public static var markdown: String {
        var lines = ["| Key | Flag | Values | Default | Meaning |", "|---|---|---|---|---|"]
        for setting in all {
            let flag = setting.flag.map { "`\($0)`" } ?? ""
            let values = setting.flagSets != nil ? "" : setting.valuesText
            lines.append("| `\(setting.key)` | \(flag) | \(values) | \(setting.defaultValue ?? "") | \(setting.help) |")
        }
        return lines.joined(separator: "\n")
    }

    /// The flags' part of `vcom-server --help`.
    public static var helpText: String {
        all.filter { $0.flag != nil }.map { setting in
            let value = setting.flagSets == nil ? " <\(setting.valuesText)>" : ""
            let fallback = setting.defaultValue.map { " Default: \($0)." } ?? ""
            return "  \(setting.flag!)\(value)\n      \(setting.help)\(fallback) (\(setting.key))"
        }.joined(separator: "\n")
    }
}
