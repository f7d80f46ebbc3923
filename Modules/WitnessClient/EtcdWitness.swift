import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PairModel
import PairNode

/// The witness on etcd (issue 29): one key, `/vcom/<pair>/active`, held under a lease by the
/// server that serves; `PairNode` decides what to ask, this carries it out and says what the
/// answer means (`WitnessReply`). Beside it, without a lease, `/vcom/<pair>/epoch`: the highest
/// epoch that ever held the key, written in the same transaction. An acquisition under a lower
/// epoch fails, so the key's history follows the pair's epochs and a stale server (its lease
/// gone, its epoch passed) cannot take the key back even when it is free.
///
/// Spoken through etcd's JSON gateway (`/v3/lease/grant`, `/v3/kv/txn`, ...) with
/// AsyncHTTPClient rather than gRPC: four unary calls a second at most need no streaming, the
/// gateway is on by default in etcd 3.4 and later, and grpc-swift with generated protobuf code
/// would add more to the build than the rest of the server. Keys and values are base64 in that
/// JSON; 64-bit numbers are strings.
public final class EtcdWitness: Sendable {
    public struct Configuration: Sendable {
        /// etcd's client URLs (`http://host:2379` or `https://...`), tried in order.
        public var endpoints: [String]
        public var key: String
        /// This server's id, written in the key's value.
        public var serverId: String
        public var leaseTTL: Duration
        /// Each call's deadline (a call without an answer by then is `.unreachable`).
        public var requestTimeout: Duration
        /// For `https://` endpoints: the CA, and a client certificate when etcd asks for one.
        public var tls: TLSConfiguration?

        public init(
            endpoints: [String], key: String, serverId: String, leaseTTL: Duration, requestTimeout: Duration = .milliseconds(500),
            tls: TLSConfiguration? = nil
        ) {
            self.endpoints = endpoints
            self.key = key
            self.serverId = serverId
            self.leaseTTL = leaseTTL
            self.requestTimeout = requestTimeout
            self.tls = tls
        }
    }

    public let configuration: Configuration
    private let client: HTTPClient
    private let logger: Logger
    /// The lease this server holds the key with (nil: none).
    private let lease = NIOLockedValueBox<Int64?>(nil)

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        var http = HTTPClient.Configuration(
            tlsConfiguration: configuration.tls,
            timeout: .init(connect: .milliseconds(Int64(configuration.requestTimeout.milliseconds)), read: .milliseconds(Int64(configuration.requestTimeout.milliseconds))))
        http.connectionPool = .init(idleTimeout: .seconds(60))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// Carries out one request; never throws: what went wrong is part of the answer.
    public func perform(_ request: WitnessRequest) async -> WitnessReply {
        do {
            switch request {
            case .acquire(let epoch): return try await acquire(epoch: epoch)
            case .keepAlive: return try await keepAlive()
            case .release: return try await release()
            }
        } catch let failure as Failure {
            return failure.reply
        } catch {
            return .unreachable
        }
    }

    // MARK: The three requests

    private func acquire(epoch: UInt64) async throws -> WitnessReply {
        // A standby asks four times a second while the peer holds the key: one read then, not a
        // lease granted and revoked each time.
        let current = try await call("/v3/kv/range", ["key": Data(configuration.key.utf8).base64EncodedString()])
        if let kv = (current["kvs"] as? [[String: Any]])?.first, let holder = Self.holder(kv), holder.server != configuration.serverId {
            return .heldByPeer(epoch: holder.epoch)
        }
        // The epoch key exists (zero at first): etcd's compare of a missing key's value fails.
        let floorKey = Data(epochKey.utf8).base64EncodedString()
        _ = try await call(
            "/v3/kv/txn",
            [
                "compare": [["key": floorKey, "target": "CREATE", "create_revision": "0"]],
                "success": [["request_put": ["key": floorKey, "value": Data(Self.padded(0).utf8).base64EncodedString()]]],
            ])
        let granted = try await call("/v3/lease/grant", ["TTL": String(max(1, configuration.leaseTTL.components.seconds))])
        guard let id = int64(granted["ID"]) else { throw Failure(reply: .unreachable, why: "lease grant answered no ID") }
        let key = Data(configuration.key.utf8).base64EncodedString()
        let value = Data(#"{"server":"\#(configuration.serverId)","epoch":\#(epoch)}"#.utf8).base64EncodedString()
        let txn = try await call(
            "/v3/kv/txn",
            [
                "compare": [
                    ["key": key, "target": "CREATE", "create_revision": "0"],
                    // epoch key <= epoch, as bytes: below the next epoch's padded form
                    ["key": floorKey, "target": "VALUE", "result": "LESS", "value": Data(Self.padded(epoch &+ 1).utf8).base64EncodedString()],
                ],
                "success": [
                    ["request_put": ["key": key, "value": value, "lease": String(id)]],
                    ["request_put": ["key": floorKey, "value": Data(Self.padded(epoch).utf8).base64EncodedString()]],
                ],
                "failure": [["request_range": ["key": key]], ["request_range": ["key": floorKey]]],
            ])
        if txn["succeeded"] as? Bool == true {
            lease.withLockedValue { $0 = id }
            return .holding
        }
        _ = try? await call("/v3/lease/revoke", ["ID": String(id)])  // not needed: let it go now
        let holder = holderOf(txn)
        if holder?.server == configuration.serverId, let held = holder?.lease {
            // This server's own key from before a restart, its lease still alive: adopt it.
            lease.withLockedValue { $0 = held }
            return try await keepAlive()
        }
        if let holder { return .heldByPeer(epoch: holder.epoch) }
        // Free, but a later epoch held it: this server's epoch has passed.
        if let floor = floorOf(txn, encodedKey: floorKey), floor > epoch { return .heldByPeer(epoch: floor) }
        return .free
    }

    /// `/vcom/<pair>/epoch` beside `/vcom/<pair>/active`.
    var epochKey: String {
        configuration.key.hasSuffix("/active") ? String(configuration.key.dropLast("/active".count)) + "/epoch" : configuration.key + ".epoch"
    }

    /// An epoch as etcd compares values (bytes): zero-padded to UInt64's 20 digits.
    static func padded(_ epoch: UInt64) -> String {
        let digits = String(epoch)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    private func floorOf(_ txn: [String: Any], encodedKey floorKey: String) -> UInt64? {
        for response in txn["responses"] as? [[String: Any]] ?? [] {
            guard let range = response["response_range"] as? [String: Any], let kv = (range["kvs"] as? [[String: Any]])?.first,
                kv["key"] as? String == floorKey, let encoded = kv["value"] as? String, let data = Data(base64Encoded: encoded)
            else { continue }
            return UInt64(String(decoding: data, as: UTF8.self))
        }
        return nil
    }

    private func keepAlive() async throws -> WitnessReply {
        guard let id = lease.withLockedValue({ $0 }) else { return .free }
        let answer = try await call("/v3/lease/keepalive", ["ID": String(id)])
        let result = answer["result"] as? [String: Any] ?? answer
        let ttl = int64(result["TTL"]) ?? 0
        // The lease may live while the key was deleted: the key must still name this lease.
        let range = try await call("/v3/kv/range", ["key": Data(configuration.key.utf8).base64EncodedString()])
        let kv = (range["kvs"] as? [[String: Any]])?.first
        if ttl > 0, let kv, int64(kv["lease"]) == id { return .holding }
        lease.withLockedValue { $0 = nil }
        guard let kv, let holder = Self.holder(kv) else { return .free }
        return holder.server == configuration.serverId ? .free : .heldByPeer(epoch: holder.epoch)
    }

    private func release() async throws -> WitnessReply {
        guard let id = lease.withLockedValue({ $0 }) else { return .free }
        _ = try await call("/v3/lease/revoke", ["ID": String(id)])
        lease.withLockedValue { $0 = nil }
        return .free
    }

    // MARK: The gateway

    struct Failure: Error {
        var reply: WitnessReply
        var why: String
    }

    /// POSTs `body` to each endpoint in turn until one answers. Refused everywhere: `.refused`
    /// (etcd's process is down, its host answers); anything else that fails: `.unreachable`.
    private func call(_ path: String, _ body: [String: Any]) async throws -> [String: Any] {
        let bytes = try JSONSerialization.data(withJSONObject: body)
        var refusedEverywhere = true
        var lastWhy = "no endpoint"
        for endpoint in configuration.endpoints {
            var request = HTTPClientRequest(url: endpoint.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: bytes))
            do {
                let response = try await client.execute(request, timeout: .nanoseconds(configuration.requestTimeout.nanoseconds))
                let data = try await response.body.collect(upTo: 1 << 20)
                guard response.status == .ok else {
                    refusedEverywhere = false
                    lastWhy = "\(endpoint)\(path): HTTP \(response.status.code)"
                    continue
                }
                guard let object = try JSONSerialization.jsonObject(with: Data(data.readableBytesView)) as? [String: Any] else {
                    throw Failure(reply: .unreachable, why: "\(endpoint)\(path): not a JSON object")
                }
                return object
            } catch let failure as Failure {
                throw failure
            } catch {
                if !Self.isRefused(error) { refusedEverywhere = false }
                lastWhy = "\(endpoint)\(path): \(error)"
            }
        }
        logger.debug("witness: \(lastWhy)")
        throw Failure(reply: refusedEverywhere ? .refused : .unreachable, why: lastWhy)
    }

    /// A connection refused (ECONNREFUSED), as NIO reports it directly or per address tried.
    public static func isRefused(_ error: Error) -> Bool {
        if let io = error as? IOError { return io.errnoCode == ECONNREFUSED }
        if let connection = error as? NIOConnectionError {
            return !connection.connectionErrors.isEmpty && connection.connectionErrors.allSatisfy { isRefused($0.error) }
        }
        return "\(error)".contains("Connection refused")
    }

    private func holderOf(_ txn: [String: Any]) -> (server: String, epoch: UInt64, lease: Int64?)? {
        let responses = txn["responses"] as? [[String: Any]] ?? []
        for response in responses {
            if let range = response["response_range"] as? [String: Any], let kv = (range["kvs"] as? [[String: Any]])?.first {
                return Self.holder(kv)
            }
        }
        return nil
    }

    /// The key's value: who holds it, under which epoch and lease.
    static func holder(_ kv: [String: Any]) -> (server: String, epoch: UInt64, lease: Int64?)? {
        guard let encoded = kv["value"] as? String, let data = Data(base64Encoded: encoded),
            let value = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let server = value["server"] as? String
        else { return nil }
        let epoch = (value["epoch"] as? NSNumber)?.uint64Value ?? 0
        return (server, epoch, int64(kv["lease"]))
    }
}

/// etcd's gateway writes 64-bit numbers as strings.
func int64(_ value: Any?) -> Int64? {
    if let text = value as? String { return Int64(text) }
    if let number = value as? NSNumber { return number.int64Value }
    return nil
}
