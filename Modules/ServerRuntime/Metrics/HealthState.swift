import Foundation
import NIOConcurrencyHelpers
import PairModel

/// What `/health/active` and `/health/ready` answer, as the control loop last published it:
/// a load balancer or a monitoring check polls these (Patroni's `/primary`, `/health`), and
/// each answer is one read of a lock, never a trip to the control loop.
final class HealthState: Sendable {
    struct Snapshot: Equatable, Sendable {
        var role: ServerRole
        var state: ServerState = .standby
        var epoch: UInt64 = 0
        var incident: String?
        /// Started, and on a secondary: synced once and caught up with its leader.
        var ready = false
        var maintenance = false
    }

    private let box: NIOLockedValueBox<Snapshot>

    init(role: ServerRole) { box = NIOLockedValueBox(Snapshot(role: role)) }

    var snapshot: Snapshot { box.withLockedValue { $0 } }

    func publish(_ update: (inout Snapshot) -> Void) { box.withLockedValue(update) }

    /// The answer to one health path (nil: not a health path).
    func answer(path: String) -> (ok: Bool, body: String)? {
        let now = snapshot
        let ok: Bool
        switch path {
        case "/health/active": ok = now.state == .active
        case "/health/ready": ok = now.ready
        default: return nil
        }
        var fields: [String: Any] = [
            "role": now.role.description, "state": now.state.hookName, "epoch": now.epoch, "ready": now.ready, "maintenance": now.maintenance,
        ]
        fields["incident"] = now.incident ?? NSNull()
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data("{}".utf8)
        return (ok, String(decoding: data, as: UTF8.self) + "\n")
    }
}
