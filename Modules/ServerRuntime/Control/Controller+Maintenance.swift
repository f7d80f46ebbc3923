import ConfigModel
import Foundation
import PairModel

/// Maintenance mode lives in the configuration (`pair.maintenance`), so it replicates and
/// survives restarts; the node hears of it whenever the configuration moves.
extension Controller {
    func configurationMoved() {
        let window = store.configuration.settings[MaintenanceWindow.settingKey].flatMap(MaintenanceWindow.init(settingValue:))
        guard window != maintenanceWindow else { return }
        let wasOn = node.inMaintenance
        maintenanceWindow = window
        let nowMs = wallMs()
        let on = window?.isOn(atMs: nowMs) ?? false
        // The end is wall-clock (the other host wrote it); the node times it on this host's monotonic clock.
        let until = window?.endsAt.map { clock.now + .milliseconds(Int64($0) - Int64(nowMs)) }
        if on, let window {
            let end = window.endsAt.map { "until \(LineLogHandler.timestamp(Date(timeIntervalSince1970: Double($0) / 1000)))" } ?? "until turned off"
            logger.notice(
                "maintenance mode on (\(window.by): \(window.reason)), \(end): no automatic failover, self-deactivation or handover",
                metadata: ["maintenance": "on"])
        } else if wasOn {
            logger.notice("maintenance mode off: automatic failover decisions resume", metadata: ["maintenance": "off"])
        }
        metrics.maintenance(on ? window : nil)
        feed(.maintenance(on: on, until: until))
    }
}
