import Crypto
import NIOCore
import PairModel
import Wire

/// One change to the configuration: the unit that is validated, stored, and replicated.
public enum ConfigChange: Equatable, Sendable {
    /// Creates or replaces an operator (matched by username). An id of 0 asks the store
    /// for a new one; the recorded change carries the id it got, so replicas agree.
    case putOperator(Operator)
    case removeOperator(username: String)
    case putPartyLine(PartyLine)
    case removePartyLine(name: String)
    /// Replaces all keys of one operator's panel.
    case setKeys(username: String, keys: [PanelKey])
    case putAdmin(AdminAccount)
    case removeAdmin(username: String)
    case setSetting(key: String, value: String)
    case removeSetting(key: String)
    /// A session token chain no longer logs in (a kick, a logout).
    case revokeSession(RevokedSession)
}

/// A change as committed: stamped with its revision, the epoch of the server that made it,
/// and the chain of the history up to it (`ConfigChain`).
public struct ChangeRecord: Equatable, Sendable {
    public var revision: UInt64
    public var epoch: UInt64
    /// Wall-clock milliseconds since 1970 at commit (for lag figures and the journal).
    public var committedAtMs: UInt64
    public var change: ConfigChange {
        didSet { encodedChange = nil }
    }
    public var chain: ChainHash
    /// The change's bytes as received or first encoded, so a catch-up encodes nothing twice.
    var encodedChange: [UInt8]?

    public init(revision: UInt64, epoch: UInt64, committedAtMs: UInt64, change: ConfigChange, chain: ChainHash) {
        self.revision = revision
        self.epoch = epoch
        self.committedAtMs = committedAtMs
        self.change = change
        self.chain = chain
    }

    /// A record following `previous` in a history: its chain computed from it.
    public init(revision: UInt64, epoch: UInt64, committedAtMs: UInt64, change: ConfigChange, after previous: ChainHash) throws(WireError) {
        let body = try change.encoded()
        self.init(
            revision: revision, epoch: epoch, committedAtMs: committedAtMs, change: change,
            chain: ConfigChain.next(after: previous, revision: revision, epoch: epoch, body: body))
        encodedChange = body
    }

    /// The change's binary form (the bytes stored and hashed).
    public func body() throws(WireError) -> [UInt8] {
        if let encodedChange { return encodedChange }
        return try change.encoded()
    }

    public static func == (lhs: ChangeRecord, rhs: ChangeRecord) -> Bool {
        lhs.revision == rhs.revision && lhs.epoch == rhs.epoch && lhs.committedAtMs == rhs.committedAtMs && lhs.change == rhs.change
            && lhs.chain == rhs.chain
    }

    /// The peer-link message that carries it.
    public var message: ReplicatedChange {
        get throws(WireError) {
            var body = ByteBuffer()
            try change.write(to: &body)
            return ReplicatedChange(revision: revision, epoch: epoch, committedAtMs: committedAtMs, chain: chain, body: body)
        }
    }

    public init(_ message: ReplicatedChange) throws(WireError) {
        var body = message.body
        self.init(
            revision: message.revision, epoch: message.epoch, committedAtMs: message.committedAtMs,
            change: try ConfigChange(wire: &body), chain: message.chain)
        guard body.readableBytes == 0 else { throw .invalidValue(field: "configChange.body", value: UInt64(body.readableBytes)) }
        encodedChange = Array(message.body.readableBytesView)
    }
}

/// The chain that identifies a history by its content, not only by its positions:
/// chain(r) = SHA-256(chain(r-1) ‖ r ‖ epoch ‖ body), integers as 8 bytes big-endian,
/// chain(0) = 32 zero bytes. Two stores with the same chain at r hold the same records up to
/// r; a history rewritten under a reused epoch (a server restored from a backup) differs.
public enum ConfigChain {
    public static func next(after previous: ChainHash, revision: UInt64, epoch: UInt64, body: some Sequence<UInt8>) -> ChainHash {
        var hasher = SHA256()
        hasher.update(data: previous.bytes)
        withUnsafeBytes(of: revision.bigEndian) { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: epoch.bigEndian) { hasher.update(bufferPointer: $0) }
        hasher.update(data: Array(body))
        return ChainHash(Array(hasher.finalize()))!
    }
}

extension ConfigChange {
    /// The change's binary form, as stored and hashed.
    public func encoded() throws(WireError) -> [UInt8] {
        var buffer = ByteBuffer()
        try write(to: &buffer)
        return Array(buffer.readableBytesView)
    }
}

// MARK: Binary form (docs/config-store.md): Wire's field primitives, one type code per case.

extension ConfigChange: WireCodable {
    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        let kind = try buffer.readWireInteger("change.kind", as: UInt8.self)
        switch kind {
        case 1: self = .putOperator(try Operator(wire: &buffer))
        case 2: self = .removeOperator(username: try buffer.readWireString("change.username"))
        case 3: self = .putPartyLine(try PartyLine(wire: &buffer))
        case 4: self = .removePartyLine(name: try buffer.readWireString("change.name"))
        case 5:
            let username = try buffer.readWireString("change.username")
            let count = try buffer.readWireCount("change.keys", minimumElementSize: 5)
            var keys: [PanelKey] = []
            keys.reserveCapacity(count)
            for _ in 0..<count { keys.append(try PanelKey(wire: &buffer)) }
            self = .setKeys(username: username, keys: keys)
        case 6: self = .putAdmin(try AdminAccount(wire: &buffer))
        case 7: self = .removeAdmin(username: try buffer.readWireString("change.username"))
        case 8: self = .setSetting(key: try buffer.readWireString("change.key"), value: try buffer.readWireString("change.value"))
        case 9: self = .removeSetting(key: try buffer.readWireString("change.key"))
        case 10: self = .revokeSession(try RevokedSession(wire: &buffer))
        default: throw .invalidValue(field: "change.kind", value: UInt64(kind))
        }
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        switch self {
        case .putOperator(let value):
            buffer.writeInteger(1 as UInt8)
            try value.write(to: &buffer)
        case .removeOperator(let username):
            buffer.writeInteger(2 as UInt8)
            try buffer.writeWireString(username, field: "change.username")
        case .putPartyLine(let value):
            buffer.writeInteger(3 as UInt8)
            try value.write(to: &buffer)
        case .removePartyLine(let name):
            buffer.writeInteger(4 as UInt8)
            try buffer.writeWireString(name, field: "change.name")
        case .setKeys(let username, let keys):
            buffer.writeInteger(5 as UInt8)
            try buffer.writeWireString(username, field: "change.username")
            try buffer.writeWireCount(keys.count, field: "change.keys")
            for key in keys { try key.write(to: &buffer) }
        case .putAdmin(let value):
            buffer.writeInteger(6 as UInt8)
            try value.write(to: &buffer)
        case .removeAdmin(let username):
            buffer.writeInteger(7 as UInt8)
            try buffer.writeWireString(username, field: "change.username")
        case .setSetting(let key, let value):
            buffer.writeInteger(8 as UInt8)
            try buffer.writeWireString(key, field: "change.key")
            try buffer.writeWireString(value, field: "change.value")
        case .removeSetting(let key):
            buffer.writeInteger(9 as UInt8)
            try buffer.writeWireString(key, field: "change.key")
        case .revokeSession(let value):
            buffer.writeInteger(10 as UInt8)
            try value.write(to: &buffer)
        }
    }
}

extension RevokedSession: WireCodable {
    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        username = try buffer.readWireString("revoked.username")
        issuedAtMs = try buffer.readWireInteger("revoked.issuedAtMs")
        expiresAtMs = try buffer.readWireInteger("revoked.expiresAtMs")
        revokedAtMs = try buffer.readWireInteger("revoked.revokedAtMs")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireString(username, field: "revoked.username")
        buffer.writeInteger(issuedAtMs)
        buffer.writeInteger(expiresAtMs)
        buffer.writeInteger(revokedAtMs)
    }
}

extension Operator: WireCodable {
    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        id = try buffer.readWireInteger("operator.id")
        username = try buffer.readWireString("operator.username")
        displayName = try buffer.readWireString("operator.displayName")
        passwordHash = try buffer.readWireString("operator.passwordHash")
        enabled = try buffer.readWireBool("operator.enabled")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(id)
        try buffer.writeWireString(username, field: "operator.username")
        try buffer.writeWireString(displayName, field: "operator.displayName")
        try buffer.writeWireString(passwordHash, field: "operator.passwordHash")
        buffer.writeWireBool(enabled)
    }
}

extension PartyLine: WireCodable {
    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        id = try buffer.readWireInteger("partyLine.id")
        name = try buffer.readWireString("partyLine.name")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(id)
        try buffer.writeWireString(name, field: "partyLine.name")
    }
}

extension PanelKey: WireCodable {
    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        slot = Int(try buffer.readWireInteger("key.slot", as: UInt8.self))
        let flags = try buffer.readWireInteger("key.flags", as: UInt8.self)
        guard flags & ~0b111 == 0 else { throw .invalidValue(field: "key.flags", value: UInt64(flags)) }
        talk = flags & 1 != 0
        listen = flags & 2 != 0
        latching = flags & 4 != 0
        let kind = try buffer.readWireInteger("key.targetKind", as: UInt8.self)
        let name = try buffer.readWireString("key.target")
        switch kind {
        case 1: target = .partyLine(name)
        case 2: target = .operator(name)
        default: throw .invalidValue(field: "key.targetKind", value: UInt64(kind))
        }
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        buffer.writeInteger(UInt8(clamping: slot))
        buffer.writeInteger(UInt8((talk ? 1 : 0) | (listen ? 2 : 0) | (latching ? 4 : 0)))
        switch target {
        case .partyLine(let name):
            buffer.writeInteger(1 as UInt8)
            try buffer.writeWireString(name, field: "key.target")
        case .operator(let name):
            buffer.writeInteger(2 as UInt8)
            try buffer.writeWireString(name, field: "key.target")
        }
    }
}

extension AdminAccount: WireCodable {
    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        username = try buffer.readWireString("admin.username")
        passwordHash = try buffer.readWireString("admin.passwordHash")
        role = try buffer.readWireEnum("admin.role")
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireString(username, field: "admin.username")
        try buffer.writeWireString(passwordHash, field: "admin.passwordHash")
        buffer.writeWireEnum(role)
    }
}

// MARK: Snapshot: the whole configuration as one body.

extension SystemConfiguration: WireCodable {
    public init(wire buffer: inout ByteBuffer) throws(WireError) {
        self.init()
        for _ in 0..<(try buffer.readWireCount("snapshot.operators", minimumElementSize: 11)) {
            let value = try Operator(wire: &buffer)
            operators[nameKey(value.username)] = value
        }
        for _ in 0..<(try buffer.readWireCount("snapshot.partyLines", minimumElementSize: 6)) {
            let value = try PartyLine(wire: &buffer)
            partyLines[nameKey(value.name)] = value
        }
        for _ in 0..<(try buffer.readWireCount("snapshot.panels", minimumElementSize: 6)) {
            let username = try buffer.readWireString("snapshot.panel.username")
            var panel: [PanelKey] = []
            for _ in 0..<(try buffer.readWireCount("snapshot.panel.keys", minimumElementSize: 5)) { panel.append(try PanelKey(wire: &buffer)) }
            keys[nameKey(username)] = panel
        }
        for _ in 0..<(try buffer.readWireCount("snapshot.admins", minimumElementSize: 5)) {
            let value = try AdminAccount(wire: &buffer)
            admins[nameKey(value.username)] = value
        }
        for _ in 0..<(try buffer.readWireCount("snapshot.settings", minimumElementSize: 4)) {
            settings[try buffer.readWireString("snapshot.setting.key")] = try buffer.readWireString("snapshot.setting.value")
        }
        // Added after the first release: absent from an older server's snapshot.
        if buffer.readableBytes > 0 {
            for _ in 0..<(try buffer.readWireCount("snapshot.revokedSessions", minimumElementSize: 26)) {
                let value = try RevokedSession(wire: &buffer)
                revokedSessions[value.key] = value
            }
        }
        rebuildIndexes()
    }

    public func write(to buffer: inout ByteBuffer) throws(WireError) {
        try buffer.writeWireCount(operators.count, field: "snapshot.operators")
        for value in sortedOperators { try value.write(to: &buffer) }
        try buffer.writeWireCount(partyLines.count, field: "snapshot.partyLines")
        for value in sortedPartyLines { try value.write(to: &buffer) }
        let panels = keys.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
        try buffer.writeWireCount(panels.count, field: "snapshot.panels")
        for (username, panel) in panels {
            try buffer.writeWireString(operators[username]?.username ?? username, field: "snapshot.panel.username")
            try buffer.writeWireCount(panel.count, field: "snapshot.panel.keys")
            for key in panel { try key.write(to: &buffer) }
        }
        try buffer.writeWireCount(admins.count, field: "snapshot.admins")
        for value in sortedAdmins { try value.write(to: &buffer) }
        try buffer.writeWireCount(settings.count, field: "snapshot.settings")
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) {
            try buffer.writeWireString(key, field: "snapshot.setting.key")
            try buffer.writeWireString(value, field: "snapshot.setting.value")
        }
        try buffer.writeWireCount(revokedSessions.count, field: "snapshot.revokedSessions")
        for (_, value) in revokedSessions.sorted(by: { $0.key < $1.key }) { try value.write(to: &buffer) }
    }
}
