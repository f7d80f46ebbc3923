/// Limits and compression settings of one kind of connection.
public struct WireConfiguration: Sendable, Equatable {
    /// Largest payload accepted on the wire (after compression). Checked on the header,
    /// before the payload is buffered, so a forged length costs nothing.
    public var maxFrameLength: Int
    /// Largest payload after inflation; a decompression bomb stops here.
    public var maxDecompressedLength: Int
    /// Payloads of at least this many bytes are deflated when that makes them smaller.
    ///
    /// 1 KiB: below it deflate saves tens of bytes (its block header and Huffman tables eat
    /// most of the gain) while costing a reset and a pass over the data on every frame;
    /// heartbeats, key changes, logins and single configuration changes all stay below it.
    /// Configuration snapshots, catch-up batches and licence texts are well above it and
    /// shrink several times over.
    public var compressionThreshold: Int
    /// zlib level 1 (fastest): on a LAN the CPU spent on a snapshot matters more than its
    /// bytes, and level 1 already gets most of the ratio on structured text.
    public var compressionLevel: Int32

    public init(maxFrameLength: Int, maxDecompressedLength: Int, compressionThreshold: Int = 1024, compressionLevel: Int32 = 1) {
        self.maxFrameLength = maxFrameLength
        self.maxDecompressedLength = maxDecompressedLength
        self.compressionThreshold = compressionThreshold
        self.compressionLevel = compressionLevel
    }

    /// Client connections carry logins, keys and media: nothing large.
    public static let client = WireConfiguration(maxFrameLength: 64 << 10, maxDecompressedLength: 256 << 10)
    /// The peer link carries whole configuration snapshots.
    public static let peer = WireConfiguration(maxFrameLength: 16 << 20, maxDecompressedLength: 64 << 20)
    /// Admin sessions import and export whole configurations.
    public static let admin = WireConfiguration(maxFrameLength: 16 << 20, maxDecompressedLength: 64 << 20)
    /// Every port before its peer has authenticated (a login, a watch token, the peer proof,
    /// SCRAM): hellos, logins and proofs fit in 8 KiB, compressed or not. A stranger cannot
    /// make a server buffer 16 MiB of a partial frame or inflate 64 MiB before it logs in.
    public static let beforeAuthentication = WireConfiguration(maxFrameLength: 8 << 10, maxDecompressedLength: 8 << 10)
}

/// The limits one connection's decoder applies, switched from `beforeAuthentication` to the
/// port's own once its peer authenticated. Shared by the decoder and the session handler of
/// one channel, and touched only on that channel's event loop.
public final class FrameLimits: @unchecked Sendable {
    public private(set) var current: WireConfiguration
    public let afterAuthentication: WireConfiguration

    public init(before: WireConfiguration = .beforeAuthentication, after: WireConfiguration) {
        current = before
        afterAuthentication = after
    }

    /// The peer proved who it is: the port's full limits from the next frame on.
    public func authenticated() { current = afterAuthentication }
    public var isAuthenticated: Bool { current == afterAuthentication }
}
