"""The one glob matcher for every user-supplied wildcard pattern (push rules, sync filters, ACLs, ...).

Why not one regular expression: a glob compiled to a backtracking regex (``*`` → ``.*?``) costs O(n^k) for
k wildcards (``*a*a*a*a*b`` against 200 ``a`` froze the reactor for a minute). Here ``*`` is never a regex
quantifier. The pattern is split at its stars into fixed-length segments, and the segments are placed
greedily leftmost, in order — exact for globs, since placing a segment earlier never removes a choice for the
ones after it. A literal segment is found with ``str.find``; a segment with ``?`` or a class is found with a
quantifier-free regex of exactly that length, whose search tries at most len(segment) characters per start
position. So a match costs O(len(value) × len(pattern)) at worst, in C, whatever the pattern.

Syntax (spec appendix "glob-style matching"): ``*`` any run of characters, ``?`` exactly one; with
``classes=True`` also ``[abc]``, ``[a-z]`` and ``[!abc]`` (an unterminated ``[`` is literal, a reversed
range matches nothing). Everything else is literal.

``word_boundary=True`` is push rules' ``content.body`` mode: the pattern may match any substring that
starts and ends at a word boundary (the value's start/end or a character outside ``[A-Za-z0-9_]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_WORD_RE = "A-Za-z0-9_"

# A token is a tuple: ("*",), ("?",), ("lit", ch) or ("set", negate, chars, ranges).


def _tokens(pattern: str, classes: bool, any_one: bool) -> list[tuple]:
    out: list[tuple] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not (out and out[-1][0] == "*"):  # runs of * collapse: the NFA needs one epsilon step only
                out.append(("*",))
        elif c == "?" and any_one:
            out.append(("?",))
        elif c == "[" and classes:
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(("lit", "["))  # unterminated: a literal bracket
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            chars: set[str] = set()
            ranges: list[tuple[str, str]] = []
            k = 0
            while k < len(body):
                if k + 2 < len(body) and body[k + 1] == "-":
                    ranges.append((body[k], body[k + 2]))
                    k += 3
                else:
                    chars.add(body[k])
                    k += 1
            out.append(("set", negate, frozenset(chars), tuple(ranges)))
        else:
            out.append(("lit", c))
    return out


def _token_matches(tok: tuple, ch: str, fold: bool) -> bool:
    kind = tok[0]
    if kind == "?":
        return True
    if kind == "lit":
        return tok[1] == ch
    _, negate, chars, ranges = tok
    cands = (ch, ch.upper()) if fold else (ch,)
    hit = any(c in chars or any(lo <= c <= hi for lo, hi in ranges) for c in cands)
    return hit != negate


def _fold_text(value: str) -> str:
    """Lower-case, keeping one character per character (so indices and boundaries line up)."""
    low = value.lower()
    if len(low) == len(value):
        return low
    return "".join(c if len(lc := c.lower()) != 1 else lc for c in value)


def _is_boundary_before(text: str, i: int) -> bool:
    return i == 0 or text[i - 1] not in _WORD


def _is_boundary_after(text: str, i: int) -> bool:
    return i >= len(text) or text[i] not in _WORD


@dataclass(frozen=True)
class Glob:
    """A compiled glob. ``matches(value)`` is linear in ``len(value)`` for every pattern."""

    pattern: str
    word_boundary: bool
    fold: bool
    _match: Callable[[str], bool]
    work_per_char: int = 1  # worst-case steps per character of the value (the longest wildcard segment)

    def matches(self, value: str) -> bool:
        return self._match(_fold_text(value) if self.fold else value)


def _lower_token(tok: tuple) -> tuple:
    if tok[0] == "lit":
        return ("lit", _fold_text(tok[1]))
    return tok


def _literal_matcher(lit: str, word_boundary: bool) -> Callable[[str], bool]:
    if not word_boundary:
        return lambda text: text == lit
    if not lit:  # the empty substring: somewhere with a boundary on both sides
        return lambda text: any(_is_boundary_before(text, i) and _is_boundary_after(text, i) for i in range(len(text) + 1))

    def match(text: str) -> bool:
        i = text.find(lit)
        while i >= 0:
            if _is_boundary_before(text, i) and _is_boundary_after(text, i + len(lit)):
                return True
            i = text.find(lit, i + 1)
        return False

    return match


def _star_matcher(segments: list[str], word_boundary: bool) -> Callable[[str], bool]:
    """Pattern ``s0*s1*...*sk`` of literal segments (s0 / sk may be empty for a leading / trailing star).

    Whole-value mode: s0 is a prefix, sk a suffix, and the middle segments are found leftmost in order,
    which is optimal for globs (an earlier placement never removes options for later segments)."""
    first, middle, last = segments[0], segments[1:-1], segments[-1]

    def place_middle(text: str, pos: int, end: int) -> int:
        for seg in middle:
            j = text.find(seg, pos, end)
            if j < 0:
                return -1
            pos = j + len(seg)
        return pos

    if not word_boundary:
        def whole(text: str) -> bool:
            if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
                return False
            end = len(text) - len(last)
            return place_middle(text, len(first), end) >= 0

        return whole

    def bounded(text: str) -> bool:
        # The leftmost bounded start gives the earliest placement of every later segment, so trying it
        # alone is exact: a later start can only push the middle segments right.
        if first:
            s = text.find(first)
            while s >= 0 and not _is_boundary_before(text, s):
                s = text.find(first, s + 1)
            if s < 0:
                return False
        else:
            s = 0
        pos = place_middle(text, s + len(first), len(text))
        if pos < 0:
            return False
        if not last:
            return True  # a trailing star can run to the value's end, which is a boundary
        j = text.find(last, pos)
        while j >= 0:
            if _is_boundary_after(text, j + len(last)):
                return True
            j = text.find(last, j + 1)
        return False

    return bounded


def _segment_regex(tokens: list[tuple], fold: bool) -> str:
    """A fixed-length, quantifier-free regular expression for one star-free run of tokens."""
    out: list[str] = []
    for tok in tokens:
        if tok[0] == "?":
            out.append(".")
        elif tok[0] == "lit":
            out.append(re.escape(tok[1]))
        else:
            _, negate, chars, ranges = tok
            body = "".join(re.escape(c) for c in sorted(chars)) + "".join(f"{re.escape(lo)}-{re.escape(hi)}" for lo, hi in ranges)
            out.append(f"[{'^' if negate else ''}{body}]" if body else ("[^\\s\\S]" if not negate else "."))
    return "".join(out)


def _segments_matcher(tokens: list[tuple], word_boundary: bool, fold: bool) -> Callable[[str], bool]:
    """Patterns with ``?`` or classes: the star-separated segments are fixed-length runs, each compiled to a
    regular expression with no quantifier and no alternation, so searching one costs at most
    len(value) x len(segment) steps (no backtracking between positions); the segments are then placed
    greedily leftmost in order, exactly as for literal segments. This is not a regex of the whole glob: ``*``
    never becomes ``.*``."""
    segs: list[list[tuple]] = [[]]
    for t in tokens:
        if t[0] == "*":
            segs.append([])
        else:
            segs[-1].append(t)
    flags = re.DOTALL | (re.IGNORECASE if fold else 0)
    bound_before, bound_after = f"(?<![{_WORD_RE}])", f"(?![{_WORD_RE}])"
    lens = [len(seg) for seg in segs]
    plain = [re.compile(_segment_regex(seg, fold), flags) for seg in segs]
    single = len(segs) == 1

    def place_middle(text: str, pos: int, end: int) -> int:
        for rx, n in zip(plain[1:-1], lens[1:-1]):
            m = rx.search(text, pos, end)
            if m is None:
                return -1
            pos = m.start() + n
        return pos

    if not word_boundary:
        first, last = plain[0], plain[-1]

        def whole(text: str) -> bool:
            n = len(text)
            if single:
                return lens[0] == n and first.match(text) is not None
            if n < lens[0] + lens[-1] or first.match(text) is None:
                return False
            end = n - lens[-1]
            if last.match(text, end) is None:
                return False
            return place_middle(text, lens[0], end) >= 0

        return whole

    first_b = re.compile(bound_before + _segment_regex(segs[0], fold) + (bound_after if single else ""), flags)
    last_b = re.compile(_segment_regex(segs[-1], fold) + bound_after, flags)

    def bounded(text: str) -> bool:
        if single:
            return first_b.search(text) is not None
        if lens[0]:
            m = first_b.search(text)
            if m is None:
                return False
            pos = m.start() + lens[0]
        else:
            pos = 0
        pos = place_middle(text, pos, len(text))
        if pos < 0:
            return False
        if not lens[-1]:
            return True  # a trailing star runs to the value's end, a boundary
        return last_b.search(text, pos) is not None

    return bounded


def _never(text: str) -> bool:
    return False


@lru_cache(maxsize=4096)
def compile_glob(pattern: str, word_boundary: bool = False, case_insensitive: bool = True,
                 classes: bool = True, any_one: bool = True) -> Glob:
    """Compile once; the cache makes repeated rules (every user's default rules) free.

    ``classes`` / ``any_one`` switch ``[...]`` / ``?`` off (literal) for places whose spec knows only ``*``
    (sync filter event types)."""
    tokens = _tokens(pattern, classes, any_one)
    if case_insensitive:
        tokens = [_lower_token(t) for t in tokens]
    kinds = {t[0] for t in tokens}
    if any(t[0] == "set" and any(lo > hi for lo, hi in t[3]) for t in tokens):
        match: Callable[[str], bool] = _never  # a reversed range [z-a] is malformed: the pattern never matches
    elif kinds <= {"lit"}:
        match = _literal_matcher("".join(t[1] for t in tokens), word_boundary)
    elif kinds <= {"lit", "*"}:
        segments = [""]
        for t in tokens:
            if t[0] == "*":
                segments.append("")
            else:
                segments[-1] += t[1]
        match = _star_matcher(segments, word_boundary)
    else:
        match = _segments_matcher(tokens, word_boundary, case_insensitive)
        longest, run = 1, 0
        for t in tokens:
            run = 0 if t[0] == "*" else run + 1
            longest = max(longest, run)
        return Glob(pattern, word_boundary, case_insensitive, match, longest)
    return Glob(pattern, word_boundary, case_insensitive, match)


def glob_matches(pattern: str, value: str, word_boundary: bool = False, case_insensitive: bool = True,
                 classes: bool = True, any_one: bool = True) -> bool:
    return compile_glob(pattern, word_boundary, case_insensitive, classes, any_one).matches(value)


def star_glob(pattern: str) -> Glob:
    """Case-sensitive glob where only ``*`` is special (sync filter ``types``/``not_types``)."""
    return compile_glob(pattern, case_insensitive=False, classes=False, any_one=False)


def literal_glob(text: str, word_boundary: bool = False) -> Glob:
    """Match ``text`` literally (no wildcard is special), case-insensitively: display-name mentions."""
    folded = _fold_text(text)
    return Glob(text, word_boundary, True, _literal_matcher(folded, word_boundary))
