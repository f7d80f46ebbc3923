#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@_spi(CustomByteBufferAllocator) import NIOCore

/// The byte buffers of the client port's connections, with large ones mapped on their own.
///
/// NIOSSL gives every TLS connection a 32 KiB plaintext buffer and a 16 KiB ciphertext buffer
/// for its whole life, and an idle client's heartbeats use the first hundred bytes of each.
/// From glibc's heap those blocks land on pages that earlier handshakes had touched and freed,
/// and many of those pages stay resident (3 KiB per client, docs/performance.md). Mapped on their
/// own, a buffer costs only the pages ever written: one for a connection that carries
/// heartbeats. Small buffers stay on the heap.
///
/// Each block starts with a 16-byte header that says how it was obtained: `deallocate` is not
/// told the size. A mapping that fails (the kernel caps a process's mappings,
/// `vm.max_map_count`, about two per connection here) falls back to the heap.
enum PagedBufferAllocator {
    /// The smallest size mapped on its own. NIOSSL's buffers are 16 and 32 KiB.
    static let threshold = 16 * 1024

    static let allocator = ByteBufferAllocator(
        allocate: { size in PagedBufferAllocator.allocate(size) },
        reallocate: { pointer, oldSize, newSize in PagedBufferAllocator.reallocate(pointer, oldSize, newSize) },
        deallocate: { pointer in PagedBufferAllocator.deallocate(pointer) },
        copy: { destination, source, count in destination.copyMemory(from: source, byteCount: count) }
    )

    private static let headerSize = 16
    /// Header word for a heap block; a mapped block stores its mapping's length instead (a
    /// multiple of the page size, never 0).
    private static let heapBlock = 0

    static func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        if size >= threshold, let mapped = map(size) { return mapped }
        guard let block = malloc(size + headerSize) else { return nil }
        block.storeBytes(of: heapBlock, as: Int.self)
        return block + headerSize
    }

    static func deallocate(_ pointer: UnsafeMutableRawPointer) {
        let block = pointer - headerSize
        let length = block.load(as: Int.self)
        if length == heapBlock {
            free(block)
        } else {
            munmap(block, length)
        }
    }

    static func reallocate(_ pointer: UnsafeMutableRawPointer?, _ oldSize: Int, _ newSize: Int) -> UnsafeMutableRawPointer? {
        guard let pointer else { return allocate(newSize) }
        let block = pointer - headerSize
        if block.load(as: Int.self) == heapBlock, newSize < threshold {
            guard let grown = realloc(block, newSize + headerSize) else { return nil }
            return grown + headerSize
        }
        guard let moved = allocate(newSize) else { return nil }
        moved.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
        deallocate(pointer)
        return moved
    }

    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    private static func map(_ size: Int) -> UnsafeMutableRawPointer? {
        let length = (size + headerSize + pageSize - 1) / pageSize * pageSize
        let block = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let block, block != UnsafeMutableRawPointer(bitPattern: -1) else { return nil }
        block.storeBytes(of: length, as: Int.self)
        return block + headerSize
    }
}
