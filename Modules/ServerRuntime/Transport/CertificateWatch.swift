import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TransportSecurity

/// Takes a renewed certificate without a restart, and warns while expiry is near: at start,
/// at every reload, and once a day.
enum CertificateWatch {
    static func start(_ tls: TransportSettings, loop: EventLoop, logger: Logger) {
        let facts = tls.contexts.current.certificate
        logger.info(
            "TLS: serving certificate \(facts.subject) (\(facts.fingerprint)), expires \(facts.notValidAfter.formatted(.iso8601)); peer must be '\(tls.peerName)'\(tls.clientsUseTLS ? "" : "; the client port is in clear")"
        )
        let lastWarning = NIOLockedValueBox<Date?>(nil)
        warnIfNear(facts, logger: logger, last: lastWarning)
        let interval = TimeAmount.nanoseconds(tls.reloadInterval.nanoseconds)
        loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            reload(tls, logger: logger)
            warnIfNear(tls.contexts.current.certificate, logger: logger, last: lastWarning)
        }
    }

    @discardableResult
    static func reload(_ tls: TransportSettings, logger: Logger) -> ServerTLSContexts.Reload {
        let outcome = tls.contexts.reloadIfChanged()
        switch outcome {
        case .unchanged: break
        case .reloaded(let facts):
            logger.notice(
                "TLS: certificate reloaded: \(facts.subject) (\(facts.fingerprint)), expires \(facts.notValidAfter.formatted(.iso8601)); new connections use it"
            )
            warnIfNear(facts, logger: logger, last: NIOLockedValueBox(nil))
        case .failed(let why):
            logger.error("TLS: the changed certificate files cannot be used, the current certificate stays in service: \(why)")
        }
        return outcome
    }

    static func warnIfNear(_ facts: CertificateFacts, logger: Logger, last: NIOLockedValueBox<Date?>, now: Date = Date()) {
        let days = facts.daysLeft(now: now)
        guard days <= CertificateFacts.warningDays else { return }
        let due = last.withLockedValue { previous in
            guard previous.map({ now.timeIntervalSince($0) >= 86_400 }) ?? true else { return false }
            previous = now
            return true
        }
        if due {
            logger.warning(
                "TLS: the certificate \(facts.subject) expires in \(days) days (\(facts.notValidAfter.formatted(.iso8601))): issue a new one (vcom-admin pki issue); it is reloaded without a restart"
            )
        }
    }
}
