import ConfigModel
import NIOCore
import PairModel
import Wire

/// What an administrator asks of a server: one typed request per command, carried in an
/// `AdminRequest` frame (the command's code and its body). Each names the least role that
/// may run it.
public enum AdminCall: Equatable, Sendable {
    case status
    case incidents(includeAcknowledged: Bool)
    case incident(id: String)
    case acknowledge(incident: String)
    /// On the active server: hand service to the other one. `dryRun` only checks.
    case switchover(incident: String?, dryRun: Bool)
    case forceActivate(reason: String)
    case audit(limit: UInt32)
    /// The whole configuration, with its revision (the tool renders, filters and diffs it).
    case configuration
    /// Changes written on the active server, validated by the configuration store.
    case writeConfiguration([ConfigChange])
    case clients
    case kick(sessionId: UInt64)
    case divergence
    case resolveDivergence(entry: Int64, resolution: DivergenceResolution)
    /// A licence file's text, for the primary.
    case installLicence(String)
    /// Maintenance mode on (with why, and for how long: nil until turned off) or off, on the
    /// active server; it replicates.
    case maintenance(MaintenanceChange)

    public enum MaintenanceChange: Equatable, Sendable {
        case on(reason: String, seconds: UInt32?)
        case off
    }

    public enum Code: UInt16, Sendable, CaseIterable {
        case status = 1
        case incidents = 2
        case incident = 3
        case acknowledge = 4
        case switchover = 5
        case forceActivate = 6
        case audit = 7
        case configuration = 8
        case writeConfiguration = 9
        case clients = 10
        case kick = 11
        case divergence = 12
        case resolveDivergence = 13
        case installLicence = 14
        case maintenance = 15
    }

    public var code: Code {
        switch self {
        case .status: .status
        case .incidents: .incidents
        case .incident: .incident
        case .acknowledge: .acknowledge
        case .switchover: .switchover
        case .forceActivate: .forceActivate
        case .audit: .audit
        case .configuration: .configuration
        case .writeConfiguration: .writeConfiguration
        case .clients: .clients
        case .kick: .kick
        case .divergence: .divergence
        case .resolveDivergence: .resolveDivergence
        case .installLicence: .installLicence
        case .maintenance: .maintenance
        }
    }

    /// Viewers read; operators acknowledge and switch over; only admins force an activation.
    public var requiredRole: AdminRole {
        switch self {
        case .status, .incidents, .incident, .audit, .configuration, .clients, .divergence: .viewer
        case .acknowledge, .switchover, .kick, .resolveDivergence, .maintenance: .operator
        case .writeConfiguration(let changes):
            // Administrator accounts are the admin role's business.
            changes.contains { if case .putAdmin = $0 { true } else if case .removeAdmin = $0 { true } else { false } } ? .admin : .operator
        case .forceActivate, .installLicence: .admin
        }
    }

    /// How the audit log names it.
    public var summary: String {
        switch self {
        case .status: "status"
        case .incidents(let all): all ? "incidents list --all" : "incidents list"
        case .incident(let id): "incidents show \(id)"
        case .acknowledge(let id): "incidents ack \(id)"
        case .switchover(let incident, let dryRun): "switchover" + (incident.map { " --incident \($0)" } ?? "") + (dryRun ? " (check only)" : "")
        case .forceActivate(let reason): "activate --force --reason \"\(reason)\""
        case .audit(let limit): "audit --limit \(limit)"
        case .configuration: "config read"
        case .writeConfiguration(let changes): "config write: " + changes.prefix(5).map(\.auditSummary).joined(separator: "; ") + (changes.count > 5 ? "; and \(changes.count - 5) more" : "")
        case .clients: "clients list"
        case .kick(let id): "clients kick \(id)"
        case .divergence: "divergence list"
        case .resolveDivergence(let entry, let resolution): "divergence \(resolution) \(entry)"
        case .installLicence: "licence install"
        case .maintenance(.on(let reason, let seconds)): "maintenance on --reason \"\(reason)\"" + (seconds.map { " --for \($0)s" } ?? "")
        case .maintenance(.off): "maintenance off"
        }
    }

    public func encode() throws(WireError) -> ByteBuffer {
        var body = ByteBuffer()
        switch self {
        case .status: break
        case .incidents(let all): body.writeWireBool(all)
        case .incident(let id), .acknowledge(let id): try body.writeWireString(id, field: "call.incident")
        case .switchover(let incident, let dryRun):
            try body.writeOptionalString(incident, field: "call.incident")
            body.writeWireBool(dryRun)
        case .forceActivate(let reason): try body.writeWireString(reason, field: "call.reason")
        case .audit(let limit): body.writeInteger(limit)
        case .configuration, .clients, .divergence: break
        case .writeConfiguration(let changes):
            try body.writeWireCount(changes.count, field: "call.changes")
            for change in changes { try change.write(to: &body) }
        case .kick(let id): body.writeInteger(id)
        case .resolveDivergence(let entry, let resolution):
            body.writeInteger(entry)
            switch resolution {
            case .discard: body.writeInteger(1 as UInt8)
            case .reapplyHere: body.writeInteger(2 as UInt8)
            case .reappliedElsewhere(let revision):
                body.writeInteger(3 as UInt8)
                body.writeInteger(revision)
            }
        case .installLicence(let text): try body.writeWireString(text, field: "call.licence")
        case .maintenance(.on(let reason, let seconds)):
            body.writeWireBool(true)
            try body.writeWireString(reason, field: "call.reason")
            body.writeOptionalInteger(seconds)
        case .maintenance(.off): body.writeWireBool(false)
        }
        return body
    }

    public init(code raw: UInt16, body: ByteBuffer) throws(WireError) {
        guard let code = Code(rawValue: raw) else { throw .invalidValue(field: "adminRequest.command", value: UInt64(raw)) }
        var body = body
        switch code {
        case .status: self = .status
        case .incidents: self = .incidents(includeAcknowledged: try body.readWireBool("call.all"))
        case .incident: self = .incident(id: try body.readWireString("call.incident"))
        case .acknowledge: self = .acknowledge(incident: try body.readWireString("call.incident"))
        case .switchover:
            self = .switchover(incident: try body.readOptionalString("call.incident"), dryRun: try body.readWireBool("call.dryRun"))
        case .forceActivate: self = .forceActivate(reason: try body.readWireString("call.reason"))
        case .audit: self = .audit(limit: try body.readWireInteger("call.limit"))
        case .configuration: self = .configuration
        case .writeConfiguration:
            let count = try body.readWireCount("call.changes", minimumElementSize: 2)
            var changes: [ConfigChange] = []
            for _ in 0..<count { changes.append(try ConfigChange(wire: &body)) }
            self = .writeConfiguration(changes)
        case .clients: self = .clients
        case .kick: self = .kick(sessionId: try body.readWireInteger("call.sessionId"))
        case .divergence: self = .divergence
        case .resolveDivergence:
            let entry: Int64 = try body.readWireInteger("call.entry")
            switch try body.readWireInteger("call.resolution", as: UInt8.self) {
            case 1: self = .resolveDivergence(entry: entry, resolution: .discard)
            case 2: self = .resolveDivergence(entry: entry, resolution: .reapplyHere)
            case 3: self = .resolveDivergence(entry: entry, resolution: .reappliedElsewhere(revision: try body.readWireInteger("call.revision")))
            case let other: throw .invalidValue(field: "call.resolution", value: UInt64(other))
            }
        case .installLicence: self = .installLicence(try body.readWireString("call.licence"))
        case .maintenance:
            if try body.readWireBool("call.maintenance") {
                self = .maintenance(.on(reason: try body.readWireString("call.reason"), seconds: try body.readOptionalInteger("call.seconds")))
            } else {
                self = .maintenance(.off)
            }
        }
    }
}

/// What to do with a divergence journal entry (a change the server lost in a split).
public enum DivergenceResolution: Equatable, Sendable, CustomStringConvertible {
    case discard
    /// Write the change again on this server (which must be the active one).
    case reapplyHere
    /// The change was written again on the active server, as `revision`: mark the entry.
    case reappliedElsewhere(revision: UInt64)

    public var description: String {
        switch self {
        case .discard: "discard"
        case .reapplyHere: "apply"
        case .reappliedElsewhere(let revision): "apply (as revision \(revision) on the active server)"
        }
    }
}

extension ConfigChange {
    /// A short line for the audit log (never a password hash).
    public var auditSummary: String {
        switch self {
        case .putOperator(let value): "put operator \(value.username)" + (value.enabled ? "" : " (disabled)")
        case .removeOperator(let username): "remove operator \(username)"
        case .putPartyLine(let value): "put party line \(value.name)"
        case .removePartyLine(let name): "remove party line \(name)"
        case .setKeys(let username, let keys): "set \(keys.count) keys of \(username)"
        case .putAdmin(let value): "put admin \(value.username) (\(value.role))"
        case .removeAdmin(let username): "remove admin \(username)"
        case .setSetting(let key, let value): "set \(key) = \(value.prefix(80))"
        case .removeSetting(let key): "remove setting \(key)"
        case .revokeSession(let value): "revoke the session token of \(value.username) (login at \(value.issuedAtMs) ms)"
        }
    }
}

/// How a request ended (the reply's status).
public enum AdminStatus: UInt16, Sendable, Equatable {
    case ok = 0
    /// The server understood and said no (the reason is the reply's message).
    case refused = 1
    case notFound = 2
    case invalid = 3
    /// The account's role does not allow the command.
    case forbidden = 4
    case failed = 5
}

/// A reply's body: for `.ok`, the command's answer; otherwise the reason, for a person.
public enum AdminAnswer: Equatable, Sendable {
    case status(ServerReport)
    case incidents([IncidentReport])
    case incident(IncidentReport)
    case done(String)
    /// A configuration write went through (`writeConfiguration`).
    case written(WriteReceipt)
    case audit([AuditRecord])
    case configuration(revision: UInt64, SystemConfiguration)
    case clients([SessionReport])
    case divergence([DivergenceReport])
    case error(AdminStatus, String)

    public var status: AdminStatus {
        if case .error(let status, _) = self { return status }
        return .ok
    }

    public func encode() throws(WireError) -> ByteBuffer {
        var body = ByteBuffer()
        switch self {
        case .status(let report): try report.write(to: &body)
        case .incidents(let list):
            try body.writeWireCount(list.count, field: "answer.incidents")
            for item in list { try item.write(to: &body) }
        case .incident(let report): try report.write(to: &body)
        case .done(let text), .error(_, let text): try body.writeWireString(text, field: "answer.message")
        case .written(let receipt): try receipt.write(to: &body)
        case .audit(let list):
            try body.writeWireCount(list.count, field: "answer.audit")
            for item in list { try item.write(to: &body) }
        case .configuration(let revision, let configuration):
            body.writeInteger(revision)
            try configuration.write(to: &body)
        case .clients(let list):
            try body.writeWireCount(list.count, field: "answer.clients")
            for item in list { try item.write(to: &body) }
        case .divergence(let list):
            try body.writeWireCount(list.count, field: "answer.divergence")
            for item in list { try item.write(to: &body) }
        }
        return body
    }

    /// Decodes the reply to `call` with `status`.
    public init(for call: AdminCall.Code, status raw: UInt16, body: ByteBuffer) throws(WireError) {
        var body = body
        guard let status = AdminStatus(rawValue: raw) else { throw .invalidValue(field: "adminReply.status", value: UInt64(raw)) }
        guard status == .ok else {
            self = .error(status, try body.readWireString("answer.message"))
            return
        }
        switch call {
        case .status: self = .status(try ServerReport(wire: &body))
        case .incidents:
            let count = try body.readWireCount("answer.incidents", minimumElementSize: 8)
            var list: [IncidentReport] = []
            for _ in 0..<count { list.append(try IncidentReport(wire: &body)) }
            self = .incidents(list)
        case .incident: self = .incident(try IncidentReport(wire: &body))
        case .acknowledge, .switchover, .forceActivate, .kick, .resolveDivergence, .installLicence, .maintenance:
            self = .done(try body.readWireString("answer.message"))
        case .writeConfiguration: self = .written(try WriteReceipt(wire: &body))
        case .configuration:
            let revision: UInt64 = try body.readWireInteger("answer.revision")
            self = .configuration(revision: revision, try SystemConfiguration(wire: &body))
        case .clients:
            let count = try body.readWireCount("answer.clients", minimumElementSize: 8)
            var list: [SessionReport] = []
            for _ in 0..<count { list.append(try SessionReport(wire: &body)) }
            self = .clients(list)
        case .divergence:
            let count = try body.readWireCount("answer.divergence", minimumElementSize: 8)
            var list: [DivergenceReport] = []
            for _ in 0..<count { list.append(try DivergenceReport(wire: &body)) }
            self = .divergence(list)
        case .audit:
            let count = try body.readWireCount("answer.audit", minimumElementSize: 8)
            var list: [AuditRecord] = []
            for _ in 0..<count { list.append(try AuditRecord(wire: &body)) }
            self = .audit(list)
        }
    }
}

extension ByteBuffer {
    mutating func writeOptionalString(_ value: String?, field: StaticString) throws(WireError) {
        writeWireBool(value != nil)
        if let value { try writeWireString(value, field: field) }
    }

    mutating func readOptionalString(_ field: StaticString) throws(WireError) -> String? {
        try readWireBool(field) ? try readWireString(field) : nil
    }

    mutating func writeOptionalInteger<T: FixedWidthInteger>(_ value: T?) {
        writeWireBool(value != nil)
        if let value { writeInteger(value) }
    }

    mutating func readOptionalInteger<T: FixedWidthInteger>(_ field: StaticString, as: T.Type = T.self) throws(WireError) -> T? {
        try readWireBool(field) ? try readWireInteger(field, as: T.self) : nil
    }
}
