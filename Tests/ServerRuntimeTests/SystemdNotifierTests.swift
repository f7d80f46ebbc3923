import Foundation
import Testing

@testable import ServerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// sd_notify's protocol (issue 26, 1): datagrams to $NOTIFY_SOCKET, a path or an abstract name;
/// the watchdog interval is half of $WATCHDOG_USEC, for this process only.
@Suite struct SystemdNotifierTests {
    func receiver(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, byte) in bytes.enumerated() { raw[i] = byte } }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        try #require(bound == 0, "bind: \(String(cString: strerror(errno)))")
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    func read(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
    }

    @Test(arguments: ["path", "abstract"])
    func notificationsArrive(kind: String) throws {
        let path = kind == "path" ? FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8))").path
            : "@vcom-test-\(UUID().uuidString.prefix(8))"
        let fd = try receiver(path)
        defer {
            close(fd)
            if kind == "path" { unlink(path) }
        }
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"])
        #expect(notifier.isActive && notifier.watchdogInterval == .seconds(2))
        #expect(notifier.notify("READY=1\nSTATUS=primary vcom-primary: active, epoch 2"))
        #expect(read(fd) == "READY=1\nSTATUS=primary vcom-primary: active, epoch 2")
        #expect(notifier.notify("WATCHDOG=1"))
        #expect(read(fd) == "WATCHDOG=1")
    }

    @Test func outsideSystemdNothingHappens() {
        let notifier = SystemdNotifier(environment: [:])
        #expect(!notifier.isActive && notifier.watchdogInterval == nil && !notifier.notify("READY=1"))
        // A watchdog meant for another process (its parent, say) is not this one's to feed.
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"], pid: 2).watchdogInterval == nil)
    }
}
