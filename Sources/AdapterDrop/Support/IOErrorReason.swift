// One-line reasons for Foundation file errors, so that messages never contain an NSError dump
// ("Error Domain=NSCocoaErrorDomain Code=… UserInfo={…}").
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A one-line reason for a file-system error: the POSIX reason (`strerror`, e.g. "Permission denied") when a
/// Foundation (`NSCocoaErrorDomain`) error wraps a POSIX error or is one, else `localizedDescription`; for our own
/// error types, `String(describing:)` (their description). Never contains a newline.
/// - Parameter error: any error, typically thrown by `FileManager` or `Data.write(to:)`.
/// - Returns: e.g. `"Permission denied"`, `"No such file or directory"`.
public func ioErrorReason(_ error: Error) -> String {
    let ns = error as NSError
    let text: String
    if ns.domain == NSPOSIXErrorDomain {
        text = String(cString: strerror(Int32(ns.code)))
    } else if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        text = String(cString: strerror(Int32(underlying.code)))
    } else if ns.domain == NSCocoaErrorDomain {
        text = ns.localizedDescription
    } else {
        text = String(describing: error)
    }
    return text.split(whereSeparator: \.isNewline).joined(separator: " ")
}

/// Whether `error` is a Foundation error (Cocoa or POSIX domain) rather than one of this package's typed errors:
/// such errors print as multi-line `NSError` dumps unless wrapped (`ioErrorReason`).
public func isFoundationError(_ error: Error) -> Bool {
    let domain = (error as NSError).domain
    return domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain
}
