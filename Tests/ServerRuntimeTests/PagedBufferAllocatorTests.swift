#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Testing

@testable import ServerRuntime

/// The client port's buffers: small ones on the heap, large ones (NIOSSL's per-connection
/// buffers) mapped on their own so that only the pages written are resident.
@Suite struct PagedBufferAllocatorTests {
    private let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Pages of the mapping that holds `pointer` (a large block) that are resident.
    private func residentPages(of pointer: UnsafeMutableRawPointer, bytes: Int) -> Int {
        let start = UnsafeMutableRawPointer(bitPattern: Int(bitPattern: pointer) / pageSize * pageSize)!
        let pages = (bytes + 16 + pageSize - 1) / pageSize
        var vector = [UInt8](repeating: 0, count: pages)
        #expect(mincore(start, pages * pageSize, &vector) == 0, "mincore: errno \(errno)")
        return vector.filter { $0 & 1 == 1 }.count
    }

    @Test func aLargeBufferCostsOnlyThePagesWritten() throws {
        let size = 32 * 1024  // NIOSSL's plaintext buffer
        let pointer = try #require(PagedBufferAllocator.allocate(size))
        defer { PagedBufferAllocator.deallocate(pointer) }
        // A heartbeat's worth of bytes at the start, as an idle connection writes.
        pointer.initializeMemory(as: UInt8.self, repeating: 0xA5, count: 100)
        #expect(residentPages(of: pointer, bytes: size) == 1)
        // The rest is there when written.
        pointer.initializeMemory(as: UInt8.self, repeating: 0x5A, count: size)
        #expect(residentPages(of: pointer, bytes: size) == (size + 16 + pageSize - 1) / pageSize)
    }

    @Test func aByteBufferGrowsAndKeepsItsBytesAcrossTheThreshold() {
        var buffer = PagedBufferAllocator.allocator.buffer(capacity: 1024)
        let pattern = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // Written in steps: heap, heap grown, then mapped, then a larger mapping.
        for chunk in stride(from: 0, to: pattern.count, by: 7_000) {
            buffer.writeBytes(pattern[chunk..<min(chunk + 7_000, pattern.count)])
        }
        #expect(buffer.capacity >= pattern.count)
        #expect(buffer.readBytes(length: pattern.count) == pattern)
    }

    @Test func reallocationKeepsTheBytesEitherWay() throws {
        let large = 20 * 1024
        let small = 512
        // Mapped to heap.
        var pointer = try #require(PagedBufferAllocator.allocate(large))
        for index in 0..<small { pointer.storeBytes(of: UInt8(index % 251), toByteOffset: index, as: UInt8.self) }
        pointer = try #require(PagedBufferAllocator.reallocate(pointer, large, small))
        #expect((0..<small).allSatisfy { pointer.load(fromByteOffset: $0, as: UInt8.self) == UInt8($0 % 251) })
        // Heap to heap, larger.
        pointer = try #require(PagedBufferAllocator.reallocate(pointer, small, 4 * small))
        #expect((0..<small).allSatisfy { pointer.load(fromByteOffset: $0, as: UInt8.self) == UInt8($0 % 251) })
        // Heap to mapped.
        pointer = try #require(PagedBufferAllocator.reallocate(pointer, 4 * small, large))
        #expect((0..<small).allSatisfy { pointer.load(fromByteOffset: $0, as: UInt8.self) == UInt8($0 % 251) })
        #expect(Int(bitPattern: pointer) % pageSize == 16, "a mapped block's bytes start after its header, on a fresh page")
        PagedBufferAllocator.deallocate(pointer)
    }
}
