import Foundation
import Licensing
import NIOConcurrencyHelpers
import PairModel
import Wire

/// What a login needs to know of the server's state, published by the control loop and read
/// by every client event loop: whether this server serves, under which epoch, where the other
/// server is, and the licence's seats for the pair. Seats are taken and given back here, under
/// the gate's one lock, so two logins racing for the last seat cannot both get it.
final class AdmissionGate: Sendable {
    struct Serving: Sendable {
        var active = false
        var epoch: UInt64 = 0
        var role: ServerRole
        /// Where clients go when they lose this server (the other server's client endpoint).
        var alternate: Endpoint?
        /// Clients logged in on the peer, while it serves (the licence's seats are the pair's).
        var peerLoggedIn = 0
        var licence: LicenceEnforcement
        /// Licences are judged at no earlier time than this (the clock's high-water mark).
        var clockFloor = Date.distantPast
        /// A standby that may activate: if its peer just failed, it serves within the peer
        /// timeout, so a login is held that long rather than sent back to a dead server and a
        /// backoff (see `ClientService.hold`).
        var takingOver = false
        /// With a witness and the link down, the lease's end by this server's clock: no login
        /// is admitted from then on, even before the control loop hears of it (a process
        /// resumed after a freeze reads its client sockets before its timer fires).
        var servingUntil: MonotonicTime?
        /// How long a login is held while taking over, when the node says (a witness's wait).
        var takeoverHold: Duration?

        func serves(at now: MonotonicTime) -> Bool {
            guard active else { return false }
            return servingUntil.map { now < $0 } ?? true
        }
    }

    enum Admission: Equatable, Sendable {
        case admitted(epoch: UInt64, warning: String?)
        case refused(RefusalReason, String, alternate: Endpoint?, epoch: UInt64)
    }

    private let state: NIOLockedValueBox<(serving: Serving, loggedIn: Int)>

    init(role: ServerRole, licence: LicenceEnforcement) {
        state = NIOLockedValueBox((Serving(role: role, licence: licence), 0))
    }

    var serving: Serving { state.withLockedValue { $0.serving } }
    var loggedIn: Int { state.withLockedValue { $0.loggedIn } }

    func update(_ body: (inout Serving) -> Void) {
        state.withLockedValue { body(&$0.serving) }
    }

    /// Checks that this server serves and a seat is free, and takes the seat.
    func admit(at wall: Date, now: MonotonicTime) -> Admission {
        state.withLockedValue { value in
            let serving = value.serving
            guard serving.serves(at: now) else {
                return .refused(
                    .notActiveServer, "this server is not the active server; try the other server", alternate: serving.alternate,
                    epoch: serving.epoch)
            }
            let now = max(wall, serving.clockFloor)
            switch serving.licence.admitLogin(loggedInOnPair: value.loggedIn + serving.peerLoggedIn, at: now) {
            case .refuse(let reason, let detail):
                return .refused(reason, detail, alternate: nil, epoch: serving.epoch)
            case .admit(let warning):
                value.loggedIn += 1
                return .admitted(epoch: serving.epoch, warning: warning)
            }
        }
    }

    /// A logged-in session ended: its seat is free again.
    func release() {
        state.withLockedValue { $0.loggedIn = max(0, $0.loggedIn - 1) }
    }
}
