"""The shared backend of ``homeserver/shared_state.py`` for a workers deployment: Redis (txredisapi).

Why Redis and not the database: everything kept here is short-lived (a bucket refills within minutes, a UIA
session lives 15 minutes, a nonce 60 seconds) and none of it is a fact a client was told is committed, so
it does not need PostgreSQL's durability (DESIGN.md principle 1); it does need atomic read-modify-write
at request rate, which Redis gives in one round trip (a Lua script for a token bucket, ``GETDEL`` for a
single-use take) without adding write transactions to the database. Losing Redis loses these counters: a
restarted Redis hands out fresh budgets once and drops open UIA sessions (the client starts the flow again).

Layout, under the deployment's channel name (``PREFIX``) so deployments can share one Redis:

- ``PREFIX:b:KIND:KEY`` — a hash ``{t: tokens, l: last update (s)}``, expiring once it would be full again;
- ``PREFIX:m:NS:KEY`` — ``"CREATED|JSON"`` with ``PX`` = the namespace's lifetime;
- ``PREFIX:a:NS`` / ``PREFIX:o:NS:OWNER`` — sorted sets of live entry keys by creation time, for the
  ``max_entries`` / ``max_per_owner`` bounds (the oldest entry is evicted first, as in memory).

Time is the caller's clock (sent with each call), so unit tests drive this backend with a fake clock; a
timestamp older than the bucket's last update refills nothing (clock skew between hosts cannot mint tokens).
Every call has a deadline (``timeout_s``); a Redis that is down or slow raises
:class:`~homeserver.shared_state.SharedStateUnavailable` and the caller degrades (``docs/security.md``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from twisted.internet import defer

from homeserver.clock import Clock
from homeserver.shared_state import BucketSpec, MapSpec, SharedStateUnavailable

logger = logging.getLogger(__name__)

_MAX_KEY = 512  # client-chosen keys (session ids) longer than this are unknown, never stored

# KEYS[1] bucket; ARGV: rate, burst, now, cost, take(1)/peek(0). Returns "ok" or the tokens there are.
_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 't', 'l')
local tokens = tonumber(v[1])
local last = tonumber(v[2])
if tokens == nil or last == nil then
  tokens = burst
  last = now
end
if now > last then
  tokens = math.min(burst, tokens + (now - last) * rate)
  last = now
end
if tokens < cost then
  return tostring(tokens)
end
if ARGV[5] == '1' then
  tokens = tokens - cost
  redis.call('HSET', KEYS[1], 't', tostring(tokens), 'l', tostring(last))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 60000)
end
return 'ok'
"""

# KEYS: entry, all-index, owner-index (or ""); ARGV: value, now, lifetime_s, max_entries, max_per_owner (0: none),
# entry id, entry key prefix.
_PUT = """
local now = tonumber(ARGV[2])
local life = tonumber(ARGV[3])
local life_ms = math.ceil(life * 1000)
local id = ARGV[6]
local pfx = ARGV[7]
local function trim(z, max)
  redis.call('ZREMRANGEBYSCORE', z, '-inf', tostring(now - life))
  local n = redis.call('ZCARD', z)
  if max > 0 and n >= max then
    local old = redis.call('ZRANGE', z, 0, n - max)
    for _, m in ipairs(old) do
      redis.call('DEL', pfx .. m)
      redis.call('ZREM', z, m)
    end
  end
end
trim(KEYS[2], tonumber(ARGV[4]))
if KEYS[3] ~= '' then
  trim(KEYS[3], tonumber(ARGV[5]))
  redis.call('ZADD', KEYS[3], now, id)
  redis.call('PEXPIRE', KEYS[3], life_ms)
end
redis.call('ZADD', KEYS[2], now, id)
redis.call('PEXPIRE', KEYS[2], life_ms)
redis.call('SET', KEYS[1], ARGV[2] .. '|' .. ARGV[1], 'PX', life_ms)
return 1
"""

# KEYS[1] entry; ARGV[1] new JSON. Keeps the creation time and the TTL.
_REPLACE = """
local old = redis.call('GET', KEYS[1])
if not old then
  return 0
end
local i = string.find(old, '|', 1, true)
redis.call('SET', KEYS[1], string.sub(old, 1, i - 1) .. '|' .. ARGV[1], 'KEEPTTL')
return 1
"""


class RedisSharedState:
    """``SharedState`` on Redis; one connection per process (``core.shared_state``)."""

    shared = True

    def __init__(self, clock: Clock, reactor: Any, host: str, port: int, dbid: int = 0, prefix: str = "sup",
                 timeout_s: float = 1.0, connection: Any = None, retry_after_s: float = 1.0) -> None:
        self._clock = clock
        self._reactor = reactor
        self.prefix = prefix
        self.timeout_s = timeout_s
        # After a failure, calls fail at once for retry_after_s (then one is tried again): while Redis is down a
        # request pays the deadline at most once a second per process, not once per request.
        self.retry_after_s = retry_after_s
        self._down_until = 0.0
        if connection is None:
            import txredisapi

            connection = txredisapi.lazyConnection(host, port, dbid=dbid, reconnect=True, connectTimeout=2,
                                                   replyTimeout=max(1, int(timeout_s * 2)), convertNumbers=False)
            factory = getattr(connection, "_factory", None)
            if factory is not None:  # back within ~2 s of Redis returning (the default backs off to 10 s)
                factory.maxDelay = 2
        self._conn = connection

    async def close(self) -> None:
        try:
            await self._conn.disconnect()
        except Exception:
            pass

    async def _call(self, fn: Any) -> Any:
        """Run one Redis operation with a deadline; any failure is SharedStateUnavailable."""
        now = self._reactor.seconds()
        if now < self._down_until:
            raise SharedStateUnavailable("Redis was unavailable less than a second ago")
        try:
            d = defer.maybeDeferred(fn)
            d.addTimeout(self.timeout_s, self._reactor)
            return await d
        except Exception as e:
            if self._down_until == 0.0 or now - self._down_until > 60:
                logger.warning("shared state: Redis did not answer (%s: %s)", type(e).__name__, e)
            self._down_until = self._reactor.seconds() + self.retry_after_s
            raise SharedStateUnavailable(str(e)) from e

    # ------------------------------------------------------------------ token buckets
    def _bucket_key(self, kind: str, key: str) -> str:
        return f"{self.prefix}:b:{kind}:{key}"

    async def _bucket(self, kind: str, key: str, spec: BucketSpec, cost: float, take: bool) -> int:
        args = [repr(float(spec.per_second)), str(int(spec.burst)), repr(self._clock.time()), repr(float(cost)), "1" if take else "0"]
        got = await self._call(lambda: self._conn.eval(_BUCKET, [self._bucket_key(kind, key)], args))
        if got == "ok":
            return 0
        tokens = float(got)
        return max(1, int((cost - tokens) / spec.per_second * 1000 + 0.999))

    async def take(self, kind: str, key: str, spec: BucketSpec, cost: float = 1.0) -> int:
        return await self._bucket(kind, key, spec, cost, True)

    async def peek(self, kind: str, key: str, spec: BucketSpec, cost: float = 1.0) -> int:
        return await self._bucket(kind, key, spec, cost, False)

    async def reset(self, kind: str, key: str) -> None:
        await self._call(lambda: self._conn.delete(self._bucket_key(kind, key)))

    # ------------------------------------------------------------------ expiring entries
    def _entry_prefix(self, ns: str) -> str:
        return f"{self.prefix}:m:{ns}:"

    def _decode(self, raw: Any, spec: MapSpec) -> dict[str, Any] | None:
        if raw is None:
            return None
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        created, _, body = str(raw).partition("|")
        try:
            if float(created) <= self._clock.time() - spec.lifetime_s:
                return None  # expired by the caller's clock (Redis's PX is the garbage collector)
            value = json.loads(body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def put(self, ns: str, spec: MapSpec, key: str, value: dict[str, Any], owner: str | None = None) -> None:
        if len(key) > _MAX_KEY:
            raise ValueError("shared state key too long")
        pfx = self._entry_prefix(ns)
        keys = [pfx + key, f"{self.prefix}:a:{ns}", f"{self.prefix}:o:{ns}:{owner}" if owner is not None else ""]
        args = [json.dumps(value, separators=(",", ":")), repr(self._clock.time()), repr(float(spec.lifetime_s)),
                str(spec.max_entries), str(spec.max_per_owner or 0), key, pfx]
        await self._call(lambda: self._conn.eval(_PUT, keys, args))

    async def get(self, ns: str, spec: MapSpec, key: str) -> dict[str, Any] | None:
        if len(key) > _MAX_KEY:
            return None
        raw = await self._call(lambda: self._conn.get(self._entry_prefix(ns) + key))
        return self._decode(raw, spec)

    async def replace(self, ns: str, spec: MapSpec, key: str, value: dict[str, Any]) -> bool:
        if len(key) > _MAX_KEY:
            return False
        body = json.dumps(value, separators=(",", ":"))
        got = await self._call(lambda: self._conn.eval(_REPLACE, [self._entry_prefix(ns) + key], [body]))
        return str(got) == "1"

    async def pop(self, ns: str, spec: MapSpec, key: str) -> dict[str, Any] | None:
        if len(key) > _MAX_KEY:
            return None
        raw = await self._call(lambda: self._conn.execute_command("GETDEL", self._entry_prefix(ns) + key))
        return self._decode(raw, spec)


def shared_state_for(core: Any) -> Any:
    """The shared state of this process: Redis in a workers deployment, memory for a single process."""
    from homeserver.shared_state import MemorySharedState

    deployment = core.deployment
    if deployment is None:
        return MemorySharedState(core.clock)
    state = RedisSharedState(core.clock, core.reactor, deployment.redis_host, deployment.redis_port,
                             deployment.redis_dbid, prefix=deployment.channel)
    core.on_shutdown(state.close)
    return state
