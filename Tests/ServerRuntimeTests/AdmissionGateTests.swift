import Foundation
import Licensing
import PairModel
import Testing

@testable import ServerRuntime

/// The login gate with a witness lease (issue 29): a server whose lease ended by its own clock
/// admits nobody, even while the control loop still says "active" (a process resumed after a
/// freeze reads its client sockets before its timer fires).
@Suite struct AdmissionGateTests {
    let wall = Date(timeIntervalSince1970: 1_800_000_000)

    func refusedAsNotServing(_ admission: AdmissionGate.Admission) -> Bool {
        if case .refused(.notActiveServer, _, _, _) = admission { return true }
        return false
    }

    @Test func aServerPastItsLeaseIsRefusedAsNotServing() {
        let gate = AdmissionGate(role: .primary, licence: LicenceEnforcement(licence: nil))
        gate.update {
            $0.active = true
            $0.servingUntil = .milliseconds(10_000)
        }
        // Before the lease's end the gate lets the login on to the licence (none here: refused
        // for that, not for serving).
        #expect(!refusedAsNotServing(gate.admit(at: wall, now: .milliseconds(9_999))))
        #expect(gate.serving.serves(at: .milliseconds(9_999)))
        #expect(refusedAsNotServing(gate.admit(at: wall, now: .milliseconds(10_000))))
        #expect(!gate.serving.serves(at: .milliseconds(10_000)))
        // Without a lease (no witness, or the link up) the state alone decides.
        gate.update { $0.servingUntil = nil }
        #expect(!refusedAsNotServing(gate.admit(at: wall, now: .milliseconds(1_000_000))))
        gate.update { $0.active = false }
        #expect(refusedAsNotServing(gate.admit(at: wall, now: .zero)))
    }
}
