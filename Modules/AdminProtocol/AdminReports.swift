import ConfigModel
import NIOCore
import PairModel
import Wire

/// One server's answer to `status`: who serves, why, since when, and what is at risk.
public struct ServerReport: WireCodable {
    public var serverId: String
    public var role: ServerRole
    public var state: ServerState
    public var epoch: UInt64
    public var peerLinkUp: Bool
    /// The peer's state, as it last announced it.
    public var peerState: ServerState?
    public var peerCanActivate: Bool?
    public var clientsLoggedIn: UInt32
    public var clientsWatching: UInt32
    public var licenceId: String?
    /// Milliseconds since 1970.
    public var licenceExpiresMs: Int64?
    public var configRevision: UInt64
    /// Revisions the peer is behind (on the replication leader), when known.
    public var replicationLag: UInt64?
    public var synced: Bool
    public var canActivate: Bool
    /// The incident this server serves because of (a failover), if any.
    public var activationIncident: String?
    public var openIncidents: UInt32
    public var openDivergence: UInt32
    /// When the certificate this server presents expires (milliseconds since 1970); nil when
    /// it serves without TLS. Appended to the report: an older server's report ends before it.
    public var certificateExpiresMs: Int64?
    /// "tls", "tls, clients in clear" or "plaintext".
    public var transport: String?
    /// What the server warns its operators of (a peer link too slow for its loss timeout...).
    /// Appended after `transport`: absent from an older server's report.
    public var warnings: [String] = []
    /// Maintenance mode, while on (appended after `warnings`).
    public var maintenance: MaintenanceWindow?
    /// The witness in one line, when one is configured (appended after `maintenance`).
    public var witness: String?

    public init(
        serverId: String, role: ServerRole, state: ServerState, epoch: UInt64, peerLinkUp: Bool, peerState: ServerState?,
        peerCanActivate: Bool?, clientsLoggedIn: UInt32, clientsWatching: UInt32, licenceId: String?, licenceExpiresMs: Int64?,
        configRevision: UInt64, replicationLag: UInt64?, synced: Bool, canActivate: Bool, activationIncident: String?,
        openIncidents: UInt32, openDivergence: UInt32, certificateExpiresMs: Int64? = nil, transport: String? = nil
    ) {
        self.certificateExpiresMs = certificateExpiresMs
        self.transport = transport
        self.serverId = serverId
        self.role = role
        self.state = state
        self.epoch = epoch
        self.peerLinkUp = peerLinkUp
        self.peerState = peerState
        self.peerCanActivate = peerCanActivate
        self.clientsLoggedIn = clientsLoggedIn
        self.clientsWatching = clientsWatching
        self.licenceId = licenceId
        self.licenceExpiresMs = licenceExpiresMs
        self.configRevision = configRevision
        self.replicationLag = replicationLag
        self.synced = synced
        self.canActivate = canActivate
        self.activationIncident = activationIncident
        self.openIncidents = openIncidents
        self.openDivergence = openDivergence
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        serverId = try buffer.readWireString("status.serverId")
        role = try buffer.readWireEnum("status.role")
        state = try buffer.readWireEnum("status.state")
        epoch = try buffer.readWireInteger("status.epoch")
        peerLinkUp = try buffer.readWireBool("status.peerLinkUp")
        peerState = try buffer.readWireBool("status.peerState") ? try buffer.readWireEnum("status.peerState") : nil
        peerCanActivate = try buffer.readWireBool("status.peerCanActivate") ? try buffer.readWireBool("status.peerCanActivate") : nil
        clientsLoggedIn = try buffer.readWireInteger("status.clientsLoggedIn")
        clientsWatching = try buffer.readWireInteger("status.clientsWatching")
        licenceId = try buffer.readOptionalString("status.licenceId")
        licenceExpiresMs = try buffer.readOptionalInteger("status.licenceExpires")
        configRevision = try buffer.readWireInteger("status.configRevision")
        replicationLag = try buffer.readOptionalInteger("status.replicationLag")
        synced = try buffer.readWireBool("status.synced")
        canActivate = try buffer.readWireBool("status.canActivate")
        activationIncident = try buffer.readOptionalString("status.activationIncident")
        openIncidents = try buffer.readWireInteger("status.openIncidents")
        openDivergence = try buffer.readWireInteger("status.openDivergence")
        if buffer.readableBytes > 0 {
            certificateExpiresMs = try buffer.readOptionalInteger("status.certificateExpires")
            transport = try buffer.readOptionalString("status.transport")
        }
        if buffer.readableBytes > 0 {
            for _ in 0..<(try buffer.readWireCount("status.warnings", minimumElementSize: 2)) {
                warnings.append(try buffer.readWireString("status.warning"))
            }
        }
        if buffer.readableBytes > 0, let text = try buffer.readOptionalString("status.maintenance") {
            guard let window = MaintenanceWindow(settingValue: text) else { throw .invalidValue(field: "status.maintenance", value: 0) }
            maintenance = window
        }
        if buffer.readableBytes > 0 { witness = try buffer.readOptionalString("status.witness") }
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireString(serverId, field: "status.serverId")
        buffer.writeWireEnum(role)
        buffer.writeWireEnum(state)
        buffer.writeInteger(epoch)
        buffer.writeWireBool(peerLinkUp)
        buffer.writeWireBool(peerState != nil)
        if let peerState { buffer.writeWireEnum(peerState) }
        buffer.writeWireBool(peerCanActivate != nil)
        if let peerCanActivate { buffer.writeWireBool(peerCanActivate) }
        buffer.writeInteger(clientsLoggedIn)
        buffer.writeInteger(clientsWatching)
        try buffer.writeOptionalString(licenceId, field: "status.licenceId")
        buffer.writeOptionalInteger(licenceExpiresMs)
        buffer.writeInteger(configRevision)
        buffer.writeOptionalInteger(replicationLag)
        buffer.writeWireBool(synced)
        buffer.writeWireBool(canActivate)
        try buffer.writeOptionalString(activationIncident, field: "status.activationIncident")
        buffer.writeInteger(openIncidents)
        buffer.writeInteger(openDivergence)
        buffer.writeOptionalInteger(certificateExpiresMs)
        try buffer.writeOptionalString(transport, field: "status.transport")
        try buffer.writeWireCount(warnings.count, field: "status.warnings")
        for warning in warnings { try buffer.writeWireString(warning, field: "status.warning") }
        try buffer.writeOptionalString(maintenance?.settingValue, field: "status.maintenance")
        try buffer.writeOptionalString(witness, field: "status.witness")
    }
}

/// An incident: what the policy decided, why, with the figures it decided on.
public struct IncidentReport: WireCodable {
    public var id: String
    public var cause: String
    /// The role of the server that recorded it.
    public var role: String
    public var epoch: UInt64
    /// Milliseconds since 1970.
    public var decidedAtMs: Int64
    public var linkLostMsBefore: Int64?
    public var clientLossMsBefore: Int64?
    public var loggedInClients: UInt32
    public var clientsLost: UInt32?
    public var clientPopulation: UInt32?
    public var peer: String?
    public var acknowledgedAtMs: Int64?

    public init(
        id: String, cause: String, role: String, epoch: UInt64, decidedAtMs: Int64, linkLostMsBefore: Int64?, clientLossMsBefore: Int64?,
        loggedInClients: UInt32, clientsLost: UInt32?, clientPopulation: UInt32?, peer: String?, acknowledgedAtMs: Int64?
    ) {
        self.id = id
        self.cause = cause
        self.role = role
        self.epoch = epoch
        self.decidedAtMs = decidedAtMs
        self.linkLostMsBefore = linkLostMsBefore
        self.clientLossMsBefore = clientLossMsBefore
        self.loggedInClients = loggedInClients
        self.clientsLost = clientsLost
        self.clientPopulation = clientPopulation
        self.peer = peer
        self.acknowledgedAtMs = acknowledgedAtMs
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        id = try buffer.readWireString("incident.id")
        cause = try buffer.readWireString("incident.cause")
        role = try buffer.readWireString("incident.role")
        epoch = try buffer.readWireInteger("incident.epoch")
        decidedAtMs = try buffer.readWireInteger("incident.decidedAt")
        linkLostMsBefore = try buffer.readOptionalInteger("incident.linkLostMsBefore")
        clientLossMsBefore = try buffer.readOptionalInteger("incident.clientLossMsBefore")
        loggedInClients = try buffer.readWireInteger("incident.loggedInClients")
        clientsLost = try buffer.readOptionalInteger("incident.clientsLost")
        clientPopulation = try buffer.readOptionalInteger("incident.clientPopulation")
        peer = try buffer.readOptionalString("incident.peer")
        acknowledgedAtMs = try buffer.readOptionalInteger("incident.acknowledgedAt")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireString(id, field: "incident.id")
        try buffer.writeWireString(cause, field: "incident.cause")
        try buffer.writeWireString(role, field: "incident.role")
        buffer.writeInteger(epoch)
        buffer.writeInteger(decidedAtMs)
        buffer.writeOptionalInteger(linkLostMsBefore)
        buffer.writeOptionalInteger(clientLossMsBefore)
        buffer.writeInteger(loggedInClients)
        buffer.writeOptionalInteger(clientsLost)
        buffer.writeOptionalInteger(clientPopulation)
        try buffer.writeOptionalString(peer, field: "incident.peer")
        buffer.writeOptionalInteger(acknowledgedAtMs)
    }
}

/// One line of a server's audit log: who did what, from where, when, and how it ended.
public struct AuditRecord: WireCodable {
    public var atMs: Int64
    public var user: String
    public var source: String
    public var action: String
    public var result: String

    public init(atMs: Int64, user: String, source: String, action: String, result: String) {
        self.atMs = atMs
        self.user = user
        self.source = source
        self.action = action
        self.result = result
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        atMs = try buffer.readWireInteger("audit.at")
        user = try buffer.readWireString("audit.user")
        source = try buffer.readWireString("audit.source")
        action = try buffer.readWireString("audit.action")
        result = try buffer.readWireString("audit.result")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(atMs)
        try buffer.writeWireString(user, field: "audit.user")
        try buffer.writeWireString(source, field: "audit.source")
        try buffer.writeWireString(action, field: "audit.action")
        try buffer.writeWireString(result, field: "audit.result")
    }
}

/// A client session on a server.
public struct SessionReport: WireCodable {
    public var sessionId: UInt64
    public var username: String
    public var address: String
    public var loggedInAtMs: Int64

    public init(sessionId: UInt64, username: String, address: String, loggedInAtMs: Int64) {
        self.sessionId = sessionId
        self.username = username
        self.address = address
        self.loggedInAtMs = loggedInAtMs
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        sessionId = try buffer.readWireInteger("session.id")
        username = try buffer.readWireString("session.username")
        address = try buffer.readWireString("session.address")
        loggedInAtMs = try buffer.readWireInteger("session.loggedInAt")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(sessionId)
        try buffer.writeWireString(username, field: "session.username")
        try buffer.writeWireString(address, field: "session.address")
        buffer.writeInteger(loggedInAtMs)
    }
}

/// A divergence journal entry: a change this server had that the serving history lost.
public struct DivergenceReport: WireCodable {
    public var id: Int64
    public var revision: UInt64
    public var epoch: UInt64
    public var detectedAtMs: UInt64
    /// open, reapplied or discarded.
    public var status: String
    public var note: String
    public var change: ConfigChange

    public init(id: Int64, revision: UInt64, epoch: UInt64, detectedAtMs: UInt64, status: String, note: String, change: ConfigChange) {
        self.id = id
        self.revision = revision
        self.epoch = epoch
        self.detectedAtMs = detectedAtMs
        self.status = status
        self.note = note
        self.change = change
    }

    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        id = try buffer.readWireInteger("divergence.id")
        revision = try buffer.readWireInteger("divergence.revision")
        epoch = try buffer.readWireInteger("divergence.epoch")
        detectedAtMs = try buffer.readWireInteger("divergence.detectedAt")
        status = try buffer.readWireString("divergence.status")
        note = try buffer.readWireString("divergence.note")
        change = try ConfigChange(wire: &buffer)
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(id)
        buffer.writeInteger(revision)
        buffer.writeInteger(epoch)
        buffer.writeInteger(detectedAtMs)
        try buffer.writeWireString(status, field: "divergence.status")
        try buffer.writeWireString(note, field: "divergence.note")
        try change.write(to: &buffer)
    }
}
