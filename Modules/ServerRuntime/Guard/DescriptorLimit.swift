#if canImport(Glibc)
import Glibc
#endif

/// The process's open-file limit. A server starts under whatever soft limit its supervisor
/// gave it, often 1,024; at that limit 1,100 idle connections to the admin port left no
/// descriptor for an operator's login. The soft limit is raised to the hard one at start.
enum DescriptorLimit {
    /// Raises the soft limit to the hard limit; the limits before and after.
    static func raise() -> (before: Int, after: Int) {
        var limits = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limits) == 0 else { return (1024, 1024) }
        let before = Int(clamping: limits.rlim_cur)
        guard limits.rlim_cur < limits.rlim_max else { return (before, before) }
        var raised = limits
        raised.rlim_cur = limits.rlim_max
        guard setrlimit(RLIMIT_NOFILE_VALUE, &raised) == 0 else { return (before, before) }
        return (before, Int(clamping: raised.rlim_cur))
    }

    static var current: Int {
        var limits = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limits) == 0 else { return 1024 }
        return Int(clamping: limits.rlim_cur)
    }

    private static var RLIMIT_NOFILE_VALUE: CInt { CInt(RLIMIT_NOFILE.rawValue) }
}
