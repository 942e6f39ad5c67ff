"""Per-connection state: what each room of a connection was last sent with, per ``pos``.

A ``pos`` is ``<generation>_<seq>``. Each response that sends anything stores, under a new ``seq``, the
stream token it covered and per room ``[sent_upto, timeline_limit, required_state signature, membership, is_dm]``.
A request with ``pos`` N confirms N: older positions are deleted (N itself is kept for a retry). Each save
takes a fresh ``seq`` (one more than any stored), so a request the client cancelled, still finishing with the
same ``pos``, stores a position of its own that the client never uses. The state is
written to the database (it survives a restart) and the latest position per connection is kept in memory.
An unknown generation or seq, or a connection unused for longer than the expiry, is ``400 M_UNKNOWN_POS``.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import NamedTuple

from homeserver.api.errors import Codes, MatrixError
from homeserver.clock import Clock
from homeserver.sync.token import StreamToken
from homeserver.types.caches import LruCache, key_part
from storage.stores.sliding_sync import SlidingSyncStore

DEFAULT_EXPIRY_MS = 7 * 24 * 3600 * 1000
MAX_CONNECTIONS_PER_DEVICE = 10
MEMORY_CONNECTIONS = 10_000
TOUCH_EVERY_MS = 3600 * 1000
_POS_RE = re.compile(r"^([A-Za-z0-9]{1,32})_(\d{1,18})$")


class UnknownPos(MatrixError):
    def __init__(self, msg: str = "Unknown or expired position: start the connection again without pos") -> None:
        super().__init__(400, Codes.UNKNOWN_POS, msg)


class RoomStatus(NamedTuple):
    """What the connection has of one room (a tuple: the whole map is dumped to JSON as lists, fast)."""

    sent_upto: int  # events position the client's copy of the room is complete up to
    timeline_limit: int
    rs_sig: str
    membership: str
    is_dm: bool = False  # what the client was last told (m.direct)

    def to_json(self) -> list[object]:
        return list(self)

    @classmethod
    def from_json(cls, v: list[object]) -> RoomStatus:
        return cls(int(v[0]), int(v[1]), str(v[2]), str(v[3]), bool(v[4]) if len(v) > 4 else False)  # type: ignore[call-overload]


@dataclass
class ConnectionState:
    """One position of a connection (``seq`` None: a new connection, nothing sent yet)."""

    user_id: str
    device_id: str
    conn_id: str
    generation: str
    seq: int | None
    token: StreamToken | None
    rooms: dict[str, RoomStatus] = field(default_factory=dict)
    last_used_ms: int = 0

    @property
    def pos(self) -> str | None:
        return None if self.seq is None else f"{self.generation}_{self.seq}"


class ConnectionStore:
    def __init__(self, store: SlidingSyncStore, clock: Clock, expiry_ms: int = DEFAULT_EXPIRY_MS) -> None:
        self._store = store
        self._clock = clock
        self.expiry_ms = expiry_ms
        # (user, device, conn_id) -> the latest position handed out (a retry of it is served from here)
        self._latest = LruCache("sliding_sync_connections", MEMORY_CONNECTIONS, invalidate_on={"user": key_part(0)})

    async def open(self, user_id: str, device_id: str | None, conn_id: str, pos: str | None) -> ConnectionState:
        dev = device_id or ""
        key = (user_id, dev, conn_id)
        now = self._clock.time_msec()
        if pos is None:
            generation = secrets.token_hex(6)
            await self._store.start_connection(user_id, dev, conn_id, generation, now, MAX_CONNECTIONS_PER_DEVICE)
            state = ConnectionState(user_id, dev, conn_id, generation, None, None, {}, now)
            self._remember(key, state)
            return state
        m = _POS_RE.match(pos)
        if m is None:
            raise UnknownPos("Malformed pos")
        generation, seq = m.group(1), int(m.group(2))
        cached = self._latest.get_(key)
        if cached is not None and cached.generation == generation and cached.seq == seq:
            if now - cached.last_used_ms > self.expiry_ms:
                raise UnknownPos()
            return _copy(cached)
        stored = await self._store.load_position(user_id, dev, conn_id, seq)
        if stored is None or stored.generation != generation or now - stored.last_used_ts > self.expiry_ms:
            raise UnknownPos()
        try:
            rooms = {r: RoomStatus.from_json(v) for r, v in json.loads(stored.rooms).items()}
            token = StreamToken.parse(stored.stream_token)
        except (ValueError, TypeError, IndexError, MatrixError):
            raise UnknownPos() from None
        state = ConnectionState(user_id, dev, conn_id, generation, seq, token, rooms, stored.last_used_ts)
        return state

    async def save(self, prev: ConnectionState, token: StreamToken, rooms: dict[str, RoomStatus]) -> ConnectionState:
        """Store the connection's next position; raises UnknownPos if the connection was restarted meanwhile."""
        now = self._clock.time_msec()
        seq = await self._store.save_position(
            prev.user_id, prev.device_id, prev.conn_id, prev.generation, prev.seq, token.to_string(),
            json.dumps(rooms, separators=(",", ":")), now,
        )
        if seq is None:
            raise UnknownPos("The connection was restarted")
        state = ConnectionState(prev.user_id, prev.device_id, prev.conn_id, prev.generation, seq, token, rooms, now)
        self._remember((prev.user_id, prev.device_id, prev.conn_id), state)
        return state

    async def keep(self, state: ConnectionState) -> None:
        """Nothing new was sent: the same pos stays valid; refresh its last use now and then."""
        now = self._clock.time_msec()
        if now - state.last_used_ms > TOUCH_EVERY_MS:
            await self._store.touch(state.user_id, state.device_id, state.conn_id, now)
            state.last_used_ms = now
            cached = self._latest.get((state.user_id, state.device_id, state.conn_id))
            if cached is not None and cached.seq == state.seq and cached.generation == state.generation:
                cached.last_used_ms = now

    async def expire(self) -> int:
        cutoff = self._clock.time_msec() - self.expiry_ms
        for key in [k for k, s in self._latest.items() if s.last_used_ms < cutoff]:
            del self._latest[key]
        return await self._store.expire(cutoff)

    def forget_device(self, user_id: str, device_id: str) -> None:
        for key in [k for k in self._latest if k[0] == user_id and k[1] == device_id]:
            del self._latest[key]

    def _remember(self, key: tuple[str, str, str], state: ConnectionState) -> None:
        self._latest.put(key, _copy(state))


def _copy(s: ConnectionState) -> ConnectionState:
    return ConnectionState(s.user_id, s.device_id, s.conn_id, s.generation, s.seq, s.token, dict(s.rooms), s.last_used_ms)
