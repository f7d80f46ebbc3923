import NIOCore
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

    public enum Code: UInt16, Sendable, CaseIterable {
        case status = 1
        case incidents = 2
        case incident = 3
        case acknowledge = 4
        case switchover = 5
        case forceActivate = 6
        case audit = 7
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
        }
    }

    /// Viewers read; operators acknowledge and switch over; only admins force an activation.
    public var requiredRole: AdminRole {
        switch self {
        case .status, .incidents, .incident, .audit: .viewer
        case .acknowledge, .switchover: .operator
        case .forceActivate: .admin
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
    case audit([AuditRecord])
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
        case .audit(let list):
            try body.writeWireCount(list.count, field: "answer.audit")
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
        case .acknowledge, .switchover, .forceActivate: self = .done(try body.readWireString("answer.message"))
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
