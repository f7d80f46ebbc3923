import NIOCore
import Wire

// The first input byte picks the conversation; the rest is what a peer sent. Every frame
// the decoder accepts must also survive encode → decode unchanged, so the fuzzer hunts
// asymmetries between encoder and decoder as well as crashes.
private let limits = WireConfiguration(maxFrameLength: 1 << 16, maxDecompressedLength: 1 << 18)
private let allocator = ByteBufferAllocator()

private func exercise<M: WireMessage>(_: M.Type, _ bytes: UnsafeRawBufferPointer) {
    let codec = FrameCodec<M>(configuration: limits)
    var input = allocator.buffer(bytes: bytes)
    for _ in 0..<64 {
        let decoded: M?
        do {
            decoded = try codec.decode(from: &input, allocator: allocator)
        } catch {
            _ = error.description  // Every error must describe itself without trapping.
            return
        }
        guard let message = decoded else { return }
        var encoded = allocator.buffer(capacity: 64)
        let roomy = FrameCodec<M>(configuration: .peer)
        do {
            try roomy.encode(message, into: &encoded)
            let again = try roomy.decode(from: &encoded, allocator: allocator)
            // A goodbye's detail is clipped to 1 KiB on encode by design.
            if again != message && message.messageType != CommonMessageType.goodbye {
                fatalError("round trip changed \(message) into \(String(describing: again))")
            }
        } catch {
            fatalError("re-encoding an accepted message failed: \(error)")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let stream = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    switch data[0] % 3 {
    case 0: exercise(ClientMessage.self, stream)
    case 1: exercise(PeerMessage.self, stream)
    default: exercise(AdminMessage.self, stream)
    }
    return 0
}
