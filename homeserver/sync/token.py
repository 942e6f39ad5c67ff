"""Sync tokens: a vector of named stream positions with a versioned, opaque encoding.

A client only ever holds the string (``next_batch``, ``since``, ``prev_batch`` of
to-device etc.) and hands it back; it never parses it. The string is::

    s1_<events>_<account_data>_<typing>_<receipts>_<presence>_<to_device>_<device_lists>[_<more>...]

``s1`` is the format version. Each position is either a plain decimal ``N`` or,
once a stream has several writers, ``N~w1.M~w2.K``: ``N`` is the position every
writer has passed (the one single-writer code reads), followed by the writers
that are further ahead. Version-1 parsers already accept that form, so giving a
stream several writers does not change what clients hold. Streams added later
are appended; a token with fewer positions than we know is read with the missing
ones at 0 (which only means "send me everything of that stream"), a token with
more positions than we know is rejected. Only URL-unreserved characters are used,
so the token needs no escaping in a query string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from homeserver.api.errors import InvalidParam

# Order matters: it is the wire order. Only ever append.
STREAMS: tuple[str, ...] = (
    "events",
    "account_data",
    "typing",
    "receipts",
    "presence",
    "to_device",
    "device_lists",
)

VERSION = "s1"
_POS_RE = re.compile(r"^(\d{1,19})((?:~[A-Za-z0-9]{1,32}\.\d{1,19})*)$")
_WRITER_RE = re.compile(r"~([A-Za-z0-9]{1,32})\.(\d{1,19})")
MAX_TOKEN_LENGTH = 1024
_PARSED: dict[str, StreamToken] = {}  # token string -> parsed (immutable) token
_PARSED_MAX = 4096


class InvalidToken(InvalidParam):
    """A malformed sync token: 400 M_INVALID_PARAM."""

    def __init__(self, msg: str = "Invalid sync token") -> None:
        super().__init__(msg)


@dataclass(frozen=True)
class StreamToken:
    """Positions per stream; ``writers`` holds per-writer positions ahead of the minimum (empty today)."""

    positions: tuple[int, ...] = field(default=tuple(0 for _ in STREAMS))
    writers: tuple[tuple[tuple[str, int], ...], ...] = field(default=tuple(() for _ in STREAMS))

    # ---- construction ----
    @classmethod
    def from_dict(cls, positions: Mapping[str, int]) -> StreamToken:
        unknown = set(positions) - set(STREAMS)
        if unknown:
            raise ValueError(f"unknown streams {sorted(unknown)}")
        return cls(tuple(int(positions.get(s, 0)) for s in STREAMS))

    @classmethod
    def parse(cls, value: str) -> StreamToken:
        """Decode a client's token; anything malformed is :class:`InvalidToken` (400 M_INVALID_PARAM).

        Valid tokens are remembered (bounded): listeners woken together all come back with the same one."""
        hit = _PARSED.get(value) if isinstance(value, str) else None
        if hit is not None:
            return hit
        token = cls._parse(value)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[value] = token
        return token

    @classmethod
    def _parse(cls, value: str) -> StreamToken:
        if not isinstance(value, str) or not value or len(value) > MAX_TOKEN_LENGTH:
            raise InvalidToken()
        parts = value.split("_")
        if parts[0] != VERSION:
            raise InvalidToken("Unknown sync token version")
        raw = parts[1:]
        if not raw or len(raw) > len(STREAMS):
            raise InvalidToken()
        positions: list[int] = []
        writers: list[tuple[tuple[str, int], ...]] = []
        for item in raw:
            m = _POS_RE.match(item)
            if m is None:
                raise InvalidToken()
            positions.append(int(m.group(1)))
            writers.append(tuple((w, int(p)) for w, p in _WRITER_RE.findall(m.group(2))))
        while len(positions) < len(STREAMS):
            positions.append(0)
            writers.append(())
        return cls(tuple(positions), tuple(writers))

    # ---- access ----
    def get(self, stream: str) -> int:
        return self.positions[STREAMS.index(stream)]

    def __getitem__(self, stream: str) -> int:
        return self.get(stream)

    def items(self) -> Iterator[tuple[str, int]]:
        return iter(zip(STREAMS, self.positions))

    def as_dict(self) -> dict[str, int]:
        return dict(self.items())

    def copy_and_replace(self, stream: str, position: int) -> StreamToken:
        i = STREAMS.index(stream)
        positions = list(self.positions)
        positions[i] = position
        writers = list(self.writers)
        writers[i] = ()
        return replace(self, positions=tuple(positions), writers=tuple(writers))

    def copy_and_advance(self, stream: str, position: int) -> StreamToken:
        """Like :meth:`copy_and_replace` but never moves backwards."""
        if position <= self.get(stream):
            return self
        return self.copy_and_replace(stream, position)

    def is_after(self, other: StreamToken) -> bool:
        """True if any stream of ``self`` is ahead of ``other``."""
        return any(a > b for a, b in zip(self.positions, other.positions))

    def changed_streams(self, other: StreamToken) -> list[str]:
        return [s for s, a, b in zip(STREAMS, self.positions, other.positions) if a != b]

    # ---- encoding ----
    def to_string(self) -> str:
        cached = self.__dict__.get("_str")
        if cached is not None:
            return cached
        out = [VERSION]
        for pos, ws in zip(self.positions, self.writers):
            out.append(str(pos) + "".join(f"~{w}.{p}" for w, p in ws) if ws else str(pos))
        text = "_".join(out)
        object.__setattr__(self, "_str", text)  # immutable value: remember its encoding
        return text

    __str__ = to_string
