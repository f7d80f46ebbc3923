import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The data directory holds every password hash and verifier (config.sqlite), the audit log
/// and the shared licence: mode 0700, every file in it 0600. A directory or file found
/// readable by others at start is tightened, with a warning naming it.
enum DataDirectory {
    /// Creates or tightens the directory and the files already in it; the warnings to log.
    static func secure(_ url: URL) throws -> [String] {
        // Files this process creates from now on (SQLite's, the licence's) are its user's only;
        // SQLite gives a database's -wal and -shm files the database file's mode.
        umask(0o077)
        var warnings: [String] = []
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CocoaError(.fileWriteFileExists, userInfo: [NSFilePathErrorKey: url.path]) }
        } else {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        if let mode = Self.mode(url.path), mode & 0o077 != 0 {
            chmod(url.path, 0o700)
            warnings.append("the data directory \(url.path) was open to other users (mode \(String(mode, radix: 8))): set to 700")
        }
        warnings += tightenFiles(in: url, warn: true)
        return warnings
    }

    /// Sets every regular file directly in `url` that others may read to 0600.
    @discardableResult
    static func tightenFiles(in url: URL, warn: Bool) -> [String] {
        var warnings: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [] {
            let path = url.appendingPathComponent(name).path
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o077 != 0 else { continue }
            chmod(path, 0o600)
            if warn { warnings.append("\(path) was readable by other users (mode \(String(info.st_mode & 0o777, radix: 8))): set to 600") }
        }
        return warnings
    }

    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o777
    }
}
