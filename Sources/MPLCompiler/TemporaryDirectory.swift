// Scratch folders in the system's temporary directory, which other users of the machine can write to.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

public enum TemporaryDirectory {
    /// A new, empty folder `<parent>/<prefix>XXXXXX`, made by mkdtemp: created only if the name is free (so a name
    /// another user placed there first is never adopted) and readable by this user alone (mode 0700), since what
    /// goes in it (a model's weights, a worker's error output) is the user's. `parent` defaults to $TMPDIR or /tmp.
    /// The caller removes it.
    public static func make(prefix: String, in parent: String = NSTemporaryDirectory()) throws -> String {
        let parent = parent.hasSuffix("/") ? String(parent.dropLast()) : parent
        var template = Array((parent + "/" + prefix + "XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else {
            throw CompileFailure(
                "error: cannot create a temporary folder in \(parent): \(String(cString: strerror(errno)))"
                    + " (set TMPDIR to a writable folder)")
        }
        return String(cString: template)
    }
}
