import AdminProtocol
import Foundation
import PairModel

/// `/status.json`: what the status page shows, for the page and for scripts alike
/// (docs/server.md, "The status page"): who serves and since when, why (the incident and its
/// timeline), both servers (this one as it knows itself, the peer as it announced itself over
/// the peer link), expiries, maintenance, the last incidents. Nothing secret: no account, no
/// hash, no token, no key.
enum StatusDocument {
    /// Expiries within this many days are amber on the page (red once past).
    static let warnDays = 30

    static func make(status: RuntimeStatus, report: ServerReport, incidents: [StoredIncident], now: Date) -> [String: Any] {
        let peerServes = status.peerLinkUp && status.peer?.state == .active
        let selfServes = status.state == .active
        let peerId = status.peerId ?? (status.role == .primary ? "the secondary" : "the primary")
        var document: [String: Any] = [
            "generated_at": iso(now),
            "server": status.serverId,
            "serving": selfServes ? [status.serverId] + (peerServes ? [peerId] : []) : (peerServes ? [peerId] : []),
            "warnings": status.warnings,
        ]
        document["since"] = selfServes ? status.stateSince.map(iso) ?? NSNull() : NSNull()
        let sorted = incidents.sorted { $0.decidedAt > $1.decidedAt }
        if let id = status.activationIncident, let incident = sorted.first(where: { $0.id == id }) {
            document["incident"] = describe(incident)
        } else if selfServes || !peerServes {
            document["incident"] = NSNull()
        } else {
            // The peer serves: the incident that made it serve is in its own records; the
            // latest one this server decided (its deactivation, a split) explains its side.
            document["incident"] = sorted.first.map(describe) ?? NSNull()
        }
        document["incidents"] = sorted.prefix(10).map(describe)
        // The witness as this server sees it (vcom-admin status's line), null without one.
        document["witness"] = report.witness ?? NSNull()
        if let window = status.maintenance {
            document["maintenance"] = [
                "reason": window.reason, "by": window.by, "since": iso(Date(timeIntervalSince1970: Double(window.sinceMs) / 1000)),
                "until": window.endsAt.map { iso(Date(timeIntervalSince1970: Double($0) / 1000)) as Any } ?? NSNull(),
            ]
        } else {
            document["maintenance"] = NSNull()
        }
        var this: [String: Any] = [
            "id": status.serverId, "role": status.role.description, "state": status.state.hookName, "epoch": status.epoch,
            "link_up": status.peerLinkUp, "clients_logged_in": status.clientsLoggedIn, "clients_watching": Int(report.clientsWatching),
            "config_revision": status.configRevision, "synced": status.synced, "can_activate": status.canActivate,
            "licence": status.licenceId ?? NSNull(), "source": "this server",
        ]
        this["replication_lag"] = status.replicationLag.map { Int($0) } ?? NSNull()
        this["licence_expires"] = status.licenceExpires.map(iso) ?? NSNull()
        this["licence_days_left"] = status.licenceExpires.map { days(until: $0, from: now) } ?? NSNull()
        let certificate = report.certificateExpiresMs.map { Date(timeIntervalSince1970: Double($0) / 1000) }
        this["certificate_expires"] = certificate.map(iso) ?? NSNull()
        this["certificate_days_left"] = certificate.map { days(until: $0, from: now) } ?? NSNull()
        this["since"] = status.stateSince.map(iso) ?? NSNull()
        var peer: [String: Any] = ["id": peerId, "role": (status.role == .primary ? ServerRole.secondary : .primary).description, "link_up": status.peerLinkUp]
        if let announced = status.peer, status.peerLinkUp {
            peer["state"] = announced.state.hookName
            peer["epoch"] = announced.epoch
            peer["clients_logged_in"] = announced.loggedInClients
            peer["can_activate"] = announced.canActivate
            peer["source"] = "announced over the peer link"
        } else {
            peer["state"] = "unknown"
            peer["source"] = "the peer link is down: its state is not known here"
        }
        document["servers"] = status.role == .primary ? [this, peer] : [peer, this]
        return document
    }

    static func describe(_ incident: StoredIncident) -> [String: Any] {
        var fields: [String: Any] = [
            "id": incident.id, "cause": incident.cause, "role": incident.role, "epoch": incident.epoch, "decided_at": iso(incident.decidedAt),
            "clients_logged_in": incident.loggedInClients,
        ]
        fields["link_lost_ms_before"] = incident.linkLostMsBefore ?? NSNull()
        fields["client_loss_ms_before"] = incident.clientLossMsBefore ?? NSNull()
        fields["clients_lost"] = incident.clientsLost ?? NSNull()
        fields["acknowledged_at"] = incident.acknowledgedAt.map(iso) ?? NSNull()
        return fields
    }

    static func json(_ document: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    static func days(until date: Date, from now: Date) -> Int { Int((date.timeIntervalSince(now) / 86_400).rounded(.down)) }
}
