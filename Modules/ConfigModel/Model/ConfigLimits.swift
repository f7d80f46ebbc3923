/// The largest configuration a pair accepts (docs/config-store.md, "Limits"). A write that
/// would go above one is refused with a sentence naming the limit; nothing is truncated.
///
/// They bound what one server must hold in memory, what a snapshot weighs (about 70 MB at
/// every limit at once, sent in 1 MiB chunks) and what one login or one write may cost.
public enum ConfigLimits {
    public static let operators = 50_000
    public static let partyLines = 5_000
    /// Panel keys over all panels (a panel has at most 64).
    public static let panelKeys = 400_000
    public static let admins = 1_000
    public static let settings = 10_000
    /// Revoked session tokens not yet expired (a kick or a logout each; kept for at most a
    /// token's lifetime, 12 h by default).
    public static let revokedSessions = 100_000
    /// Changes in one write (one transaction, one import).
    public static let changesPerWrite = 100_000

    /// Texts are limited in characters (what a person sees) and in UTF-8 bytes (what the wire
    /// and the disk carry: one character can be dozens of combining scalars).
    public static let displayName = (characters: 100, bytes: 400)
    public static let partyLineName = (characters: 64, bytes: 256)
    public static let settingValue = (characters: 1024, bytes: 4096)
    /// Usernames, admin names and setting names: 1 to 64 ASCII characters.
    public static let identifierLength = 64

    /// The largest snapshot body a follower accepts.
    public static let snapshotBytes = 256 << 20
    /// Size of the chunks a snapshot is sent in.
    public static let snapshotChunkBytes = 1 << 20
}
