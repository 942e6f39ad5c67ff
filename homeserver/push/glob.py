"""The spec's glob-style matching (appendices: glob-style matching), compiled to regular expressions.

``*`` matches zero or more characters, ``?`` exactly one, ``[abc]``/``[a-z]`` one of a set and
``[!abc]`` one not in a set. Everything else is literal. Matching is case-insensitive.
"""

from __future__ import annotations

import re
from functools import lru_cache

WORD_CHARS = "A-Za-z0-9_"


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*?")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape("["))  # unterminated: a literal bracket
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            escaped = "".join("\\" + ch if ch in "\\^[]" else ch for ch in body)
            out.append(f"[{'^' if negate else ''}{escaped}]")
        else:
            out.append(re.escape(c))
    return "".join(out)


@lru_cache(maxsize=4096)
def compile_glob(pattern: str, word_boundary: bool = False) -> re.Pattern[str]:
    """A regex matching the whole value (or, with ``word_boundary``, any substring that starts and ends at a word
    boundary: the start/end of the value or a character outside ``[A-Za-z0-9_]``)."""
    body = _translate(pattern)
    if word_boundary:
        regex = f"(?<![{WORD_CHARS}])(?:{body})(?![{WORD_CHARS}])"
    else:
        regex = f"\\A(?:{body})\\Z"
    try:
        return re.compile(regex, re.IGNORECASE | re.DOTALL)
    except re.error:  # e.g. a reversed range [z-a]: never matches
        return re.compile(r"(?!x)x")


def glob_matches(pattern: str, value: str, word_boundary: bool = False) -> bool:
    return compile_glob(pattern, word_boundary).search(value) is not None
