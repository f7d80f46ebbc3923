import ConfigModel
import ConfigStore
import Foundation
import Histogram
import NIOCore
import NIOPosix
import Synchronization
import Wire

/// make bench-replication: a primary store and a secondary store joined by the replication
/// machines over real TCP on loopback (the secondary listens, the primary dials, frames go
/// through Wire's codec). Both stores are SQLite files with synchronous=FULL.
///
/// 1. Lag: the primary commits `rate` changes per second for `seconds`; each change's lag is
///    the time from its commit returning on the primary to its apply returning on the
///    secondary (one process, one monotonic clock).
/// 2. Catch-up: the link drops, the primary commits `catchup` changes, the link comes back;
///    the time from reconnecting to the secondary holding the last one.
@main
struct ReplicationBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        func option(_ name: String, _ fallback: Int) -> Int {
            guard let index = arguments.firstIndex(of: "--\(name)"), index + 1 < arguments.count else { return fallback }
            return Int(arguments[index + 1]) ?? fallback
        }
        if arguments.contains("--apply-only") {
            try applyOnly(option("catchup", 100_000))
            return
        }
        let rate = option("rate", 1000)
        let seconds = option("seconds", 10)
        let catchup = option("catchup", 100_000)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-bench-replication-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let primary = try ConfigStore(path: directory.appendingPathComponent("primary.sqlite").path)
        let secondary = try ConfigStore(path: directory.appendingPathComponent("secondary.sqlite").path)
        try primary.setWriteEpoch(2)
        try seedRealisticConfiguration(primary)

        let progress = Progress()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addWireHandlers(for: PeerMessage.self, configuration: .peer)
                    try channel.pipeline.syncOperations.addHandler(FollowerPeer(store: secondary) { progress.applied($0) })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress!.port!

        func connect() async throws -> (Channel, LeaderPeer) {
            let leader = LeaderPeer(store: primary)
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addWireHandlers(for: PeerMessage.self, configuration: .peer)
                        try channel.pipeline.syncOperations.addHandler(leader)
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            return (channel, leader)
        }

        // Initial sync.
        var (channel, leader) = try await connect()
        try await progress.wait(for: primary.position.revision, timeout: 60)
        print("bench-replication: secondary in sync at revision \(primary.position.revision); writing \(rate)/s for \(seconds) s...")

        // 1. Lag at a steady rate.
        let total = rate * seconds
        let start = nowNanos()
        let interval = 1_000_000_000 / UInt64(rate)
        for n in 0..<total {
            let due = start + UInt64(n) * interval
            let now = nowNanos()
            if due > now { try await Task.sleep(nanoseconds: due - now) }
            let record = try primary.write([change(n)]).last!
            progress.committed(record.revision, at: nowNanos())
            let peer = leader
            channel.eventLoop.execute { peer.committed(upTo: record.revision) }
        }
        try await progress.wait(for: primary.position.revision, timeout: 60)
        let lag = progress.takeHistogram()

        // 1b. What an administrator waits for one write: acknowledged once durable here
        // (write.concern = local) or once the follower has it on its disk too (both), one
        // write at a time, alternating.
        let writes = option("sync-writes", 500)
        print("bench-replication: \(writes) writes acknowledged locally and \(writes) acknowledged by both, alternating...")
        var localTimes = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var bothTimes = localTimes
        for n in 0..<(2 * writes) {
            let started = nowNanos()
            let record = try primary.write([change(total + n)]).last!
            let peer = leader
            if n % 2 == 0 {
                localTimes.record((nowNanos() - started) / 1000)
                channel.eventLoop.execute { peer.committed(upTo: record.revision) }
            } else {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                    channel.eventLoop.execute {
                        peer.committed(upTo: record.revision)
                        peer.whenConfirmed(record.revision) { continuation.resume() }
                    }
                }
                bothTimes.record((nowNanos() - started) / 1000)
            }
        }
        try await progress.wait(for: primary.position.revision, timeout: 60)
        let syncOffset = 2 * writes

        // 2. Catch-up after the link was down.
        try await channel.close()
        try await Task.sleep(nanoseconds: 200_000_000)
        print("bench-replication: link down; committing \(catchup) changes on the primary...")
        var written = 0
        while written < catchup {
            let count = min(1000, catchup - written)
            try primary.write((0..<count).map { change(total + syncOffset + written + $0) })
            written += count
        }
        let target = primary.position.revision
        print("bench-replication: link up; secondary at \(secondary.position.revision), primary at \(target)")
        let catchupStart = nowNanos()
        (channel, leader) = try await connect()
        try await progress.wait(for: target, timeout: 120)
        let catchupMs = Double(nowNanos() - catchupStart) / 1e6
        let consistent = primary.configuration == secondary.configuration

        try await channel.close()
        try await server.close()
        try await group.shutdownGracefully()

        // 3. What one write costs as the configuration grows (no peer attached): a write
        // must not copy the configuration it changes.
        print("bench-replication: write cost on this configuration, then near the limits...")
        let small = try writeCostMs(primary)
        let bulkStart = nowNanos()
        try primary.write((0..<40_000).map { .putOperator(Operator(username: "bulk\($0)", displayName: "Bulk \($0)", passwordHash: hash)) })
        let bulkMs = Double(nowNanos() - bulkStart) / 1e6
        let value = String(repeating: "v", count: 1_000)
        try primary.write((0..<9_000).map { .setSetting(key: "large.\($0)", value: value) })
        let large = try writeCostMs(primary)

        func ms(_ percentile: Double) -> String { ms(lag, percentile) }
        func ms(_ histogram: Histogram<UInt64>, _ percentile: Double) -> String {
            String(format: "%.3f", Double(histogram.valueAtPercentile(percentile)) / 1000)
        }
        let p99 = Double(lag.valueAtPercentile(99)) / 1000
        let ok = p99 <= 5 && catchupMs <= 2000 && consistent
        print(
            "bench-replication lag_p50_ms=\(ms(50)) lag_p99_ms=\(ms(99)) catchup_100k_ms=\(String(format: "%.0f", catchupMs))"
                + " lag_max_ms=\(String(format: "%.3f", Double(lag.max) / 1000)) changes=\(lag.totalCount) rate=\(rate)"
                + " catchup_changes=\(catchup) write_p50_ms=\(String(format: "%.3f", small))"
                + " write_p50_ms_near_limits=\(String(format: "%.3f", large)) create_40k_operators_ms=\(String(format: "%.0f", bulkMs))"
                + " write_local_p50_ms=\(ms(localTimes, 50)) write_local_p99_ms=\(ms(localTimes, 99))"
                + " write_both_p50_ms=\(ms(bothTimes, 50)) write_both_p99_ms=\(ms(bothTimes, 99))"
                + " consistent=\(consistent ? "yes" : "no") within_budget=\(ok ? "yes" : "no")")
        if !ok { exit(1) }
    }

    /// The follower's share of a catch-up alone: records read from one store and applied to
    /// another in batches, no network (for profiling).
    static func applyOnly(_ count: Int) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-bench-apply-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let primary = try ConfigStore(path: directory.appendingPathComponent("primary.sqlite").path)
        let secondary = try ConfigStore(path: directory.appendingPathComponent("secondary.sqlite").path)
        try primary.setWriteEpoch(2)
        try seedRealisticConfiguration(primary)
        try secondary.apply(try primary.records(after: 0, limit: 1_000))
        var written = 0
        while written < count {
            let n = min(1000, count - written)
            try primary.write((0..<n).map { change(written + $0) })
            written += n
        }
        var messages: [ReplicatedChange] = []
        var cursor = secondary.position.revision
        while true {
            let batch = try primary.replicatedChanges(after: cursor, limit: 5_000)
            guard let last = batch.last else { break }
            messages += batch
            cursor = last.revision
        }
        let start = nowNanos()
        var decodeNanos: UInt64 = 0
        for slice in stride(from: 0, to: messages.count, by: 2_000) {
            let d = nowNanos()
            let records = try messages[slice..<min(slice + 2_000, messages.count)].map { try ChangeRecord($0) }
            decodeNanos += nowNanos() - d
            try secondary.apply(records)
        }
        let total = Double(nowNanos() - start) / 1e6
        print("bench-replication-apply records=\(messages.count) apply_ms=\(String(format: "%.0f", total)) decode_ms=\(String(format: "%.0f", Double(decodeNanos) / 1e6))")
    }

    /// The median time of 200 one-setting writes.
    static func writeCostMs(_ store: ConfigStore) throws -> Double {
        var times: [Double] = []
        for n in 0..<200 {
            let start = nowNanos()
            try store.write([.setSetting(key: "cost.probe", value: "\(n)")])
            times.append(Double(nowNanos() - start) / 1e6)
        }
        return times.sorted()[times.count / 2]
    }

    static let hash = "$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0$" + Data(repeating: 7, count: 32).base64EncodedString()

    /// A mid-sized site: 20 party lines, 200 operators with 8 keys each.
    static func seedRealisticConfiguration(_ store: ConfigStore) throws {
        var changes: [ConfigChange] = (0..<20).map { .putPartyLine(PartyLine(name: "Line-\($0)")) }
        changes += (0..<200).map { .putOperator(Operator(username: "op\($0)", displayName: "Operator \($0)", passwordHash: hash)) }
        changes += (0..<200).map { n in
            .setKeys(username: "op\(n)", keys: (1...8).map { slot in
                PanelKey(slot: slot, talk: slot % 2 == 1, listen: true, target: .partyLine("Line-\((n + slot) % 20)"), latching: slot == 1)
            })
        }
        try store.write(changes)
    }

    /// The kind of change an administrator makes all day: a display name, a key, a setting.
    static func change(_ n: Int) -> ConfigChange {
        switch n % 3 {
        case 0: .putOperator(Operator(username: "op\(n % 200)", displayName: "Operator \(n % 200) rev \(n)", passwordHash: hash))
        case 1:
            .setKeys(username: "op\(n % 200)", keys: (1...8).map { slot in
                PanelKey(slot: slot, talk: true, listen: true, target: .partyLine("Line-\((n + slot) % 20)"), latching: false)
            })
        default: .setSetting(key: "bench.counter", value: "\(n)")
        }
    }
}

/// Commit times of the primary, apply times of the secondary, and the lag histogram.
final class Progress: Sendable {
    struct State {
        var commitTimes: [UInt64: UInt64] = [:]
        var applied: UInt64 = 0
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    }

    let state = Mutex(State())

    func committed(_ revision: UInt64, at nanos: UInt64) {
        state.withLock { $0.commitTimes[revision] = nanos }
    }

    func applied(_ revision: UInt64) {
        let now = nowNanos()
        state.withLock { state in
            if revision > state.applied {
                for r in (state.applied + 1)...revision {
                    if let committed = state.commitTimes.removeValue(forKey: r) {
                        _ = state.histogram.record((now &- committed) / 1000)  // microseconds
                    }
                }
                state.applied = revision
            }
        }
    }

    func takeHistogram() -> Histogram<UInt64> { state.withLock { $0.histogram } }

    func wait(for revision: UInt64, timeout seconds: Double) async throws {
        let deadline = nowNanos() + UInt64(seconds * 1e9)
        while state.withLock({ $0.applied }) < revision {
            if nowNanos() > deadline {
                throw BenchError("the secondary did not reach revision \(revision) within \(seconds) s (at \(state.withLock { $0.applied }))")
            }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
