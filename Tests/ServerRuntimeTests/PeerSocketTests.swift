#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Testing

@testable import ServerRuntime

/// The primary's end of the peer link sits above the clients' descriptors, so that the kernel
/// closes it first when the primary dies (see `PeerSocket`).
@Suite struct PeerSocketTests {
    @Test func theLinkIsConnectedOnAHighDescriptor() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        // Some ordinary descriptors first, as the clients' sockets would be.
        let ordinary = (0..<8).map { _ in socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0) }
        defer { ordinary.forEach { close($0) } }

        let descriptor = try PeerSocket.connect(host: "127.0.0.1", port: port, timeout: .seconds(2))
        defer { close(descriptor) }
        let floor = PeerSocket.highDescriptorFloor()
        var limit = rlimit()
        #expect(getrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit) == 0)
        #expect(floor > 0 && UInt64(floor) < UInt64(limit.rlim_cur), "the floor lies under the descriptor limit \(limit.rlim_cur): \(floor)")
        #expect(descriptor >= floor && descriptor > ordinary.max()!, "descriptor \(descriptor), floor \(floor)")
        var error: CInt = -1
        var length = socklen_t(MemoryLayout<CInt>.size)
        #expect(getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0)
        #expect(fcntl(descriptor, F_GETFD) & FD_CLOEXEC != 0, "not inherited by a child process")
        #expect(fcntl(descriptor, F_GETFL) & O_NONBLOCK != 0)

        try await server.close()
        try await group.shutdownGracefully()
    }

    @Test func aRefusedAddressIsAClearError() async throws {
        // A port nobody listens on: bind one, note it, close it.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let probe = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(probe.localAddress?.port)
        try await probe.close()
        try await group.shutdownGracefully()

        #expect {
            try PeerSocket.connect(host: "127.0.0.1", port: port, timeout: .seconds(2))
        } throws: { error in
            "\(error)".contains("connect(): Connection refused")
        }
    }
}
