"""Go regular expressions in CRD schemas, made portable.

Kubernetes validates a CRD's `pattern` with Go's RE2, and some CRDs use RE2's inline flag `(?i)` in the
middle of a pattern (prometheus-operator: `^(?i)(abort|warn)?$`). Neither ECMA-262 (jsonschema-rs refuses
the whole schema) nor Python's `re` (an error once an object has the field) accepts that. Case-insensitive
letters are the only thing such a flag changes, so each letter it covers becomes a class of both cases:
`(?i)ab` -> `[aA][bB]`. Any other flag or construct this does not know leaves the pattern unchanged.
"""

from __future__ import annotations

import re

_UNTOUCHED = re.compile(r"\(\?[a-zA-Z-]+[:)]")  # inline flags or flag groups ((?: is a plain group)


def portable(pattern: str) -> str:
    """``pattern`` with every `(?i)` spelled out; unchanged when it has none or anything else is unknown."""
    if "(?i)" not in pattern or any(m.group(0) != "(?i)" for m in _UNTOUCHED.finditer(pattern)):
        return pattern
    out: list[str] = []
    folding = [False]  # per open group: whether (?i) is in force
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("(?i)", i):
            folding[-1] = True
            i += 4
            continue
        if c == "\\":
            if i + 1 >= len(pattern) or pattern[i + 1].isalpha() and pattern[i + 1] in "pPx":
                return pattern  # \p{…}, \x{…}: not worth knowing here
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[":
            end = _class_end(pattern, i)
            if end is None:
                return pattern
            body = pattern[i + 1:end]
            out.append("[" + (_fold_class(body) if folding[-1] else body) + "]")
            i = end + 1
            continue
        if c == "(":
            folding.append(folding[-1])
        elif c == ")":
            if len(folding) == 1:
                return pattern
            folding.pop()
        out.append(f"[{c.lower()}{c.upper()}]" if folding[-1] and c.isascii() and c.isalpha() else c)
        i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int | None:
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "[":
            return None  # [[:alpha:]] and the like
        if pattern[i] == "]":
            return i
        i += 1
    return None


def _fold_class(body: str) -> str:
    """A character class body plus the other case of every ASCII letter and letter range in it."""
    extra: list[str] = []
    i = 1 if body.startswith("^") else 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if i + 2 < len(body) and body[i + 1] == "-" and body[i].isascii() and body[i + 2].isascii():
            low, high = body[i], body[i + 2]
            if low.isalpha() and high.isalpha() and low.islower() == high.islower():
                extra.append(f"{low.swapcase()}-{high.swapcase()}")
            i += 3
            continue
        if body[i].isascii() and body[i].isalpha():
            extra.append(body[i].swapcase())
        i += 1
    return body + "".join(extra)
