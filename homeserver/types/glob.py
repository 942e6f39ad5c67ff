"""The one glob matcher for every user-supplied wildcard pattern (push rules, sync filters, ACLs, ...).

Why not ``re``: a glob compiled to a backtracking regular expression (``*`` → ``.*?``) costs
O(n^k) for k wildcards (``*a*a*a*a*b`` against 200 ``a`` froze the reactor for a minute). This module
never builds a regex from user input. Matching is a bit-parallel NFA (Shift-And with self-loops for
``*``): one pass over the value, a handful of integer operations per character, so the cost is
O(len(value) × ⌈len(pattern) / word size⌉) whatever the pattern. Two common shapes take C-speed
fast paths with the same bound: a pattern with no wildcard (equality / ``str.find``) and a pattern whose
only wildcard is ``*`` (greedy leftmost ``str.find`` of each literal segment, which is exact for globs).

Syntax (spec appendix "glob-style matching"): ``*`` any run of characters, ``?`` exactly one; with
``classes=True`` also ``[abc]``, ``[a-z]`` and ``[!abc]`` (an unterminated ``[`` is literal, a reversed
range matches nothing). Everything else is literal.

``word_boundary=True`` is push rules' ``content.body`` mode: the pattern may match any substring that
starts and ends at a word boundary (the value's start/end or a character outside ``[A-Za-z0-9_]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")

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


def _nfa_matcher(tokens: list[tuple], word_boundary: bool, fold: bool) -> Callable[[str], bool]:
    """Shift-And: bit j of ``state`` means "the first j tokens matched a suffix of what was read"."""
    m = len(tokens)
    stars = 0  # states j whose token j (1-based) is "*": they loop on any character
    pre_star = 0  # states j-1 before a "*": epsilon to state j
    for j, tok in enumerate(tokens, start=1):
        if tok[0] == "*":
            stars |= 1 << j
            pre_star |= 1 << (j - 1)
    accept = 1 << m
    masks: dict[str, int] = {}

    def mask_for(ch: str) -> int:
        got = masks.get(ch)
        if got is None:
            got = 0
            for j, tok in enumerate(tokens, start=1):
                if tok[0] != "*" and _token_matches(tok, ch, fold):
                    got |= 1 << j
            if len(masks) < 4096:
                masks[ch] = got
        return got

    start = 1 | ((1 & pre_star) << 1)
    get = masks.get

    if not word_boundary:
        def whole(text: str) -> bool:
            state = start
            for ch in text:
                msk = get(ch)
                if msk is None:
                    msk = mask_for(ch)
                state = ((state << 1) & msk) | (state & stars)
                state |= (state & pre_star) << 1
                if not state:
                    return False
            return bool(state & accept)

        return whole

    def bounded(text: str) -> bool:
        state = start  # position 0 is a boundary
        n = len(text)
        if state & accept and _is_boundary_after(text, 0):
            return True
        for i, ch in enumerate(text):
            msk = get(ch)
            if msk is None:
                msk = mask_for(ch)
            state = ((state << 1) & msk) | (state & stars)
            state |= (state & pre_star) << 1
            boundary = ch not in _WORD  # boundary before i+1
            after_ok = i + 1 >= n or text[i + 1] not in _WORD
            if state & accept and after_ok:
                return True
            if boundary:
                state |= start
                if state & accept and after_ok:
                    return True
        return False

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
        match = _nfa_matcher(tokens, word_boundary, case_insensitive)
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
