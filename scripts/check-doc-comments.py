#!/usr/bin/env python3
"""Lists public Swift declarations without a doc comment (CONVENTIONS.md, "Docs"; common rule 5).

Usage: scripts/check-doc-comments.py [paths...]   (default: Sources)
A declaration counts as documented when the lines above it (skipping attributes such as @inlinable and
blank-free attribute lines) end in a `///` line or a `*/` block. `public extension` lines, enum cases and
declarations inside a `// MARK:`-free extension of a documented type are not checked (DocC documents the
members, not the extension). Exit status 1 when anything is missing, so it can run in CI.
"""
import os
import re
import sys

DECL = re.compile(r'^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:public|open)\s+(?:(?:static|class|final|override|mutating|nonmutating|'
                  r'convenience|required|indirect|private\(set\)|fileprivate\(set\)|internal\(set\)|nonisolated|'
                  r'consuming|borrowing|lazy|dynamic)\s+)*'
                  r'(func|var|let|init|struct|class|enum|protocol|typealias|actor|subscript|case|associatedtype)\b')


def undocumented(path):
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    for i, line in enumerate(lines):
        m = DECL.match(line)
        if not m:
            continue
        j = i - 1
        while j >= 0 and lines[j].strip().startswith('@'):
            j -= 1
        above = lines[j].strip() if j >= 0 else ''
        if above.startswith('///') or above.endswith('*/'):
            continue
        # A declaration on the same line as its doc (`/// x` is never on the same line) or a trailing `///`.
        yield i + 1, line.strip()


def main():
    roots = sys.argv[1:] or ['Sources']
    missing = 0
    for root in roots:
        files = [root] if root.endswith('.swift') else [
            os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith('.swift')]
        for path in sorted(files):
            for number, text in undocumented(path):
                print(f'{path}:{number}: {text[:110]}')
                missing += 1
    print(f'{missing} public declarations without a doc comment', file=sys.stderr)
    return 1 if missing else 0


if __name__ == '__main__':
    sys.exit(main())
