// Programmer-error checks whose message survives optimized builds.

/// Stops the process with `message` when `condition` is false — a `precondition` whose message is printed in
/// every build configuration. (`precondition` drops its message in `-O` builds and only reports an illegal
/// instruction, which would hide the op and shapes a user needs to find a shape mismatch.)
///
/// Used for programmer errors inside the library, e.g. `linear: x [8, 768] does not match weight [3072, 512]`.
/// User-input errors (files, configs, token ids) are thrown instead.
/// - Parameters:
///   - condition: the invariant; evaluated once.
///   - message: evaluated only on failure; should name the op and the shapes or values involved.
///   - file: the caller's file, printed with the message (default: the call site).
///   - line: the caller's line (default: the call site).
@inlinable
@inline(__always)
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                    file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError(message(), file: file, line: line) }
}
