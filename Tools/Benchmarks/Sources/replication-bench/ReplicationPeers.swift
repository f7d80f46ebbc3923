import ConfigModel
import ConfigStore
import Foundation
import NIOCore
import Synchronization
import Wire

/// Monotonic nanoseconds.
func nowNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Wall-clock milliseconds, the leader's time base for commit times and timeouts.
func wallMs() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

/// The primary's end of the peer link: the ReplicationLeader machine and the store.
/// All state is touched on the channel's event loop only.
final class LeaderPeer: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    let store: ConfigStore
    var machine = ReplicationLeader()
    var context: ChannelHandlerContext?
    /// Synchronous writes waiting for the follower's acknowledgement (write.concern = both).
    var confirmations: [(revision: UInt64, done: @Sendable () -> Void)] = []

    init(store: ConfigStore) { self.store = store }

    /// Calls `done` once the follower acknowledged `revision` (on the event loop).
    func whenConfirmed(_ revision: UInt64, _ done: @escaping @Sendable () -> Void) {
        confirmations.append((revision, done))
        settleConfirmations()
    }

    func settleConfirmations() {
        guard let acknowledged = machine.acknowledged, confirmations.contains(where: { $0.revision <= acknowledged }) else { return }
        let ready = confirmations.filter { $0.revision <= acknowledged }
        confirmations.removeAll { $0.revision <= acknowledged }
        for confirmation in ready { confirmation.done() }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        perform(machine.linkUp())
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.linkDown())
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .catchUpRequest(let request): perform((try? machine.catchUpRequested(request, log: store, at: wallMs())) ?? [])
        case .configDivergence(let probe): perform((try? machine.probeReceived(probe, log: store)) ?? [])
        case .configAck(let ack):
            do {
                perform(try machine.acknowledgementReceived(ack.revision, leaderRevision: store.position.revision, at: wallMs()))
            } catch {
                context.close(promise: nil)
            }
        default: break
        }
    }

    /// Called on the event loop after a local commit.
    func committed(upTo revision: UInt64) {
        perform(machine.committed(upTo: revision, committedAtMs: wallMs()))
    }

    func perform(_ actions: [ReplicationLeader.Action]) {
        guard let context else { return }
        for action in actions {
            switch action {
            case .sendRecords(let after, let upTo):
                var cursor = after
                while cursor < upTo {
                    let messages = (try? store.replicatedChanges(after: cursor, limit: Int(min(upTo - cursor, 5_000)))) ?? []
                    guard let last = messages.last else { break }
                    for message in messages { context.write(wrapOutboundOut(.configChange(message)), promise: nil) }
                    cursor = last.revision
                }
                context.flush()
            case .sendSnapshot:
                let snapshot = store.snapshot()
                for chunk in (try? snapshot.chunks()) ?? [] { context.write(wrapOutboundOut(.configSnapshot(chunk)), promise: nil) }
                context.flush()
                perform(machine.snapshotSent(revision: snapshot.revision, leaderRevision: store.position.revision, at: wallMs()))
            case .sendDivergence(let probe): context.writeAndFlush(wrapOutboundOut(.configDivergence(probe)), promise: nil)
            case .releaseWrites, .releaseAllWrites, .followerLagging: break
            }
        }
        settleConfirmations()
    }
}

/// The secondary's end: the ReplicationFollower machine and its store. Records that arrive
/// in one read burst are applied in one transaction.
final class FollowerPeer: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    let store: ConfigStore
    var machine = ReplicationFollower()
    var batch: [ChangeRecord] = []
    let onApplied: @Sendable (UInt64) -> Void

    init(store: ConfigStore, onApplied: @escaping @Sendable (UInt64) -> Void) {
        self.store = store
        self.onApplied = onApplied
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(machine.linkUp(log: store), context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.linkDown()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .configChange(let change):
            if let record = try? ChangeRecord(change) { batch.append(record) }
        case .configSnapshot(let chunk):
            flush(context)
            perform((try? machine.snapshotChunkReceived(chunk)) ?? [], context)
        case .configDivergence(let probe):
            flush(context)
            perform((try? machine.divergenceReported(probe, log: store)) ?? [], context)
        default: break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush(context)
        context.flush()
    }

    func flush(_ context: ChannelHandlerContext) {
        guard !batch.isEmpty else { return }
        let records = batch
        batch = []
        perform(machine.recordsReceived(records, log: store), context)
    }

    func perform(_ actions: [ReplicationFollower.Action], _ context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .sendCatchUp(let request): context.writeAndFlush(wrapOutboundOut(.catchUpRequest(request)), promise: nil)
            case .sendProbe(let probe): context.writeAndFlush(wrapOutboundOut(.configDivergence(probe)), promise: nil)
            case .apply(let records):
                do {
                    let reached = try store.apply(records)
                    onApplied(reached)
                    perform(machine.applied(upTo: reached, log: store), context)
                } catch let error as ConfigError {
                    perform((try? machine.applyFailed(error, log: store)) ?? [], context)
                } catch {}
            case .installSnapshot(let snapshot, let journalAfter):
                guard let decoded = try? snapshot.decoded() else { continue }
                try? store.installSnapshot(decoded, journalAfter: journalAfter)
                onApplied(snapshot.revision)
                perform(machine.applied(upTo: snapshot.revision, log: store), context)
            case .sendAck(let ack): context.write(wrapOutboundOut(.configAck(ack)), promise: nil)
            }
        }
    }
}
