/// Why a configuration read, write or import did not happen. Every message names what is
/// wrong in words an administrator can act on.
public enum ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Writes go to the active server only.
    case notActiveServer
    /// The change breaks one or more rules; each problem is a full sentence.
    case invalid([String])
    case notFound(String)
    /// A deletion refused because something still uses the entry.
    case inUse(String)
    /// An import with problems, each with its location in the file.
    case importProblems([ImportProblem])
    case storage(String)
    /// The journal entry does not exist or was already handled.
    case journal(String)
    /// A record or a write epoch older than the epoch this store already holds: epochs never
    /// go backwards, so it can only come from a deposed server.
    case staleEpoch(UInt64, current: UInt64)
    /// A record that does not continue this store's history (another record at a position
    /// it holds, or a chain that does not follow): the two histories differ.
    case diverged(revision: UInt64, detail: String)

    public var description: String {
        switch self {
        case .notActiveServer: "not the active server: configuration changes go to the active server"
        case .invalid(let problems): problems.joined(separator: "; ")
        case .notFound(let what): "\(what) does not exist"
        case .inUse(let detail): detail
        case .importProblems(let problems): problems.map(\.description).joined(separator: "\n")
        case .storage(let detail): "configuration store: \(detail)"
        case .journal(let detail): detail
        case .staleEpoch(let epoch, let current):
            "epoch \(epoch) is older than this store's epoch \(current): refused (epochs never go backwards)"
        case .diverged(let revision, let detail): "histories differ at revision \(revision): \(detail)"
        }
    }
}

/// One problem found in an imported file.
public struct ImportProblem: Equatable, Sendable, CustomStringConvertible {
    /// Where: a path into the document such as `operators[2].username`, or `line 4, column 7`.
    public var location: String
    public var message: String

    public init(location: String, message: String) {
        self.location = location
        self.message = message
    }

    public var description: String { "\(location): \(message)" }
}
