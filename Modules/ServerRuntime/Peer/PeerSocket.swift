#if canImport(Glibc)
import Glibc
private let systemConnect = Glibc.connect
private let systemPoll = Glibc.poll
#elseif canImport(Darwin)
import Darwin
private let systemConnect = Darwin.connect
private let systemPoll = Darwin.poll
#endif

/// The primary's end of the peer link, connected on a file descriptor above its clients'.
///
/// Why: when a process dies (`kill -9`, a crash), Linux releases its sockets highest
/// descriptor first (measured on 6.18: a socket on the lowest descriptor of 10,001 was closed
/// last, 143 ms after the kill; on the highest, first, after 2 ms). Descriptors are handed
/// out lowest first, so a link dialled at start-up sat below every client's socket and its
/// close reached the secondary after all of them: 240 ms after the kill with 10,000 clients,
/// later than the 300 ms silence rule's own verdict, while the clients already knocked at the
/// secondary's door. On a high descriptor its close is the first thing the secondary hears.
///
/// Blocking (name resolution, then a connect bounded by `timeout`): run it on a thread pool.
enum PeerSocket {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Above any client's descriptor, short of the limit; capped so the kernel's descriptor
    /// table (8 bytes a slot) stays about a megabyte however high the limit is set.
    static func highDescriptorFloor() -> CInt {
        var limit = rlimit()
        guard getrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        // An unlimited limit reads as the largest value: the cap applies.
        return CInt(max(0, Int64(min(UInt64(limit.rlim_cur), 131_072 + 16)) - 16))
    }

    /// A connected, non-blocking TCP socket to `host:port`, on a descriptor at or above
    /// `highDescriptorFloor()` when the limit allows (otherwise wherever the kernel put it).
    static func connect(host: String, port: Int, timeout: Duration) throws -> CInt {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw Failure(description: "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var failure = Failure(description: "no address for \(host)")
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let address = entry {
            entry = address.pointee.ai_next
            do {
                return try connect(address.pointee, timeout: timeout)
            } catch let error as Failure {
                failure = error
            }
        }
        throw failure
    }

    private static func connect(_ address: addrinfo, timeout: Duration) throws -> CInt {
        #if canImport(Glibc)
        let kind = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        #else
        let kind = SOCK_STREAM
        #endif
        let low = socket(address.ai_family, kind, address.ai_protocol)
        guard low >= 0 else { throw Failure(description: "socket(): \(String(cString: strerror(errno)))") }
        var fd = low
        let floor = highDescriptorFloor()
        if floor > low {
            let high = fcntl(low, F_DUPFD_CLOEXEC, floor)
            if high >= 0 {
                close(low)
                fd = high
            }
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        if systemConnect(fd, address.ai_addr, address.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw Failure(description: "connect(): \(reason)")
            }
            var poll = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ms = CInt(clamping: max(1, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
            var ready = systemPoll(&poll, 1, ms)
            while ready < 0 && errno == EINTR { ready = systemPoll(&poll, 1, ms) }  // a SIGHUP (reload) is no failure
            var error: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            if ready <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0 {
                let reason = ready == 0 ? "timed out after \(timeout)" : String(cString: strerror(ready < 0 ? errno : error))
                close(fd)
                throw Failure(description: "connect(): \(reason)")
            }
        }
        return fd
    }
}
