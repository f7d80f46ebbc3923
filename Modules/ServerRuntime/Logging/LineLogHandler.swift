import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The server's log lines on standard error, one per event, with a millisecond UTC timestamp:
/// readable text, or one JSON object per line (`log.format = "json"`) with the metadata as
/// fields, for log shippers (journald, Vector, Fluent Bit). swift-log's StreamLogHandler
/// stamps whole seconds in local time, too coarse to order a failover's events.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let json: Bool

    public init(label: String, level: Logger.Level, json: Bool) {
        self.label = label
        logLevel = level
        self.json = json
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        let line = json
            ? Self.jsonLine(time: Date(), level: event.level, label: label, message: "\(event.message)", metadata: merged)
            : Self.textLine(time: Date(), level: event.level, label: label, message: "\(event.message)", metadata: merged)
        // One write(2) per line: a pipe or journald's stream takes up to PIPE_BUF bytes whole, so
        // lines from several threads do not interleave (longer ones may).
        var bytes = Array(line.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }

    static func textLine(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        let fields = metadata.isEmpty ? "" : " " + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "\(timestamp(time)) \(level) \(label) :\(fields) \(message)\n"
    }

    /// `{"ts":"2026-12-06T08:30:00.123Z","level":"notice","logger":"vcom.server","message":"...",...}`:
    /// the metadata's keys after the fixed ones (a key named like a fixed one gets a `meta.` prefix).
    static func jsonLine(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var text = "{\"ts\":\"\(timestamp(time))\",\"level\":\"\(level)\",\"logger\":\(quoted(label)),\"message\":\(quoted(message))"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            let name = ["ts", "level", "logger", "message"].contains(key) ? "meta.\(key)" : key
            text += ",\(quoted(name)):\(jsonValue(value))"
        }
        return text + "}\n"
    }

    static func jsonValue(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): quoted(string)
        case .stringConvertible(let convertible): quoted(convertible.description)
        case .array(let items): "[" + items.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let fields): "{" + fields.sorted { $0.key < $1.key }.map { "\(quoted($0.key)):\(jsonValue($0.value))" }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string: quotes, backslashes and control characters escaped (RFC 8259, section 7).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// ISO 8601 in UTC with milliseconds: 2026-12-06T08:30:00.123Z.
    static func timestamp(_ time: Date) -> String {
        let since = time.timeIntervalSince1970
        var seconds = time_t(since.rounded(.down))
        let millis = Int((since - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour),
            Int(parts.tm_min), Int(parts.tm_sec), min(999, max(0, millis)))
    }
}
