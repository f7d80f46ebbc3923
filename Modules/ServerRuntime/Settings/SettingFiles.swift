import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What the server asks of the files its settings name, checked before anything starts.
enum SettingFiles {
    /// A private key or the cluster secret must not be open to other users, or a local user could
    /// impersonate a server: PostgreSQL's rule for its key file (and ssh's, in spirit) is taken
    /// as is: mode 0600 or less when the file belongs to this user, 0640 or less when it belongs
    /// to root (a root-owned key shared with the service's group). Nil: the file is fine.
    static func privateFileProblem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return "cannot read \(path): \(String(cString: strerror(errno)))" }
        let mode = Int(info.st_mode) & 0o777
        let allowed = info.st_uid == 0 && getuid() != 0 ? 0o640 : 0o600
        guard mode & ~allowed != 0 else { return nil }
        let octal = "0" + String(mode, radix: 8)
        let fix = allowed == 0o640 ? "chmod 640 \(path) (root-owned, readable by the service's group)" : "chmod 600 \(path)"
        return "\(path) is open to other users (mode \(octal)): a private file must be 0600 (0640 if owned by root): \(fix)"
    }

    /// A hook: an absolute path to an executable regular file (it is run directly, never by a
    /// shell, so a relative path or a command line with arguments cannot work).
    static func executableProblem(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "'\(path)' must be an absolute path (hooks are run directly, not through a shell)" }
        var info = stat()
        guard stat(path, &info) == 0 else { return "\(path): \(String(cString: strerror(errno)))" }
        guard info.st_mode & S_IFMT == S_IFREG else { return "\(path) is not a regular file" }
        guard access(path, X_OK) == 0 else { return "\(path) is not executable by this user (chmod +x, or check its owner)" }
        return nil
    }

    /// The data directory exists and is a directory, or can be made in an existing parent.
    static func checkDataDirectory(_ path: String) throws(ConfigurationProblem) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ConfigurationProblem(setting: "server.data-dir", problem: "\(path) is not a directory") }
            guard access(path, W_OK | X_OK) == 0 else {
                throw ConfigurationProblem(setting: "server.data-dir", problem: "\(path) is not writable by this user (the package makes it owned by vcom)")
            }
            return
        }
        // Made with its missing parents: the nearest one that exists must let this user write.
        var parent = URL(fileURLWithPath: path).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: parent.path), parent.path != "/" { parent.deleteLastPathComponent() }
        guard access(parent.path, W_OK | X_OK) == 0 else {
            throw ConfigurationProblem(setting: "server.data-dir", problem: "\(path) does not exist and \(parent.path) does not let this user create it")
        }
    }
}
