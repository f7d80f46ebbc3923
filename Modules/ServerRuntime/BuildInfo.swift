/// What this binary is: `vcom_build_info`, `--version`. `make install` and `make package` stamp
/// the commit (Tools/package/stamp.sh) for the build and put this file back afterwards; a
/// plain `swift build` says "unknown".
public enum BuildInfo {
    public static let version = "1.0.0"
    public static let commit = "unknown"
}
