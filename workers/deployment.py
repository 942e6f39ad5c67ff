"""The deployment file: one YAML file, read by every process, describing the whole deployment.

Example (docs/workers.md has the full reference)::

    redis: {host: 127.0.0.1, port: 6379, channel: sup}
    shared_secret: "long random string"        # internal API between processes
    instances:
      main:      {role: main, internal: "http://127.0.0.1:9100"}
      sync1:     {role: sync, listen: "127.0.0.1:8101"}
      sync2:     {role: sync, listen: "127.0.0.1:8102"}
      media1:    {role: media, listen: "127.0.0.1:8103"}

Which instance writes which stream follows from the roles (:data:`STREAM_WRITER_ROLE`); the
main instance writes every stream no other instance's role claims. The homeserver config file
(``homeserver.yaml``: database, server name, keys) is shared too; the deployment file only adds
what differs between processes.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from workers.roles import ROLE_NAMES

_NAME_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")  # fits the ~writer part of sync tokens
_LISTEN_RE = re.compile(r"^([0-9A-Za-z.\-:\[\]]+):(\d{1,5})$")

# Streams and the role that writes them. Every stream is written by exactly one instance today:
# the first instance of that role, or main.
# With ``event_persister`` instances the events stream has several writers (one per persister, positions
# from a PostgreSQL sequence; see ``Deployment.event_writers``).
STREAM_WRITER_ROLE: dict[str, str] = {
    "events": "main",
    "account_data": "main",
    "typing": "main",
    "receipts": "main",
    "presence": "main",
    "to_device": "main",
    "device_lists": "main",
}


class DeploymentError(ValueError):
    pass


def shard_index(room_id: str, n: int) -> int:
    """The shard (0..n-1) of ``room_id`` among ``n`` event persisters: the first 8 bytes of SHA-256 of the
    room id (UTF-8), big-endian, modulo ``n``. A pure function of its arguments, so every process of a
    deployment (and any tool) computes the same owner; changing the number of persisters moves rooms, which
    is safe only with every process stopped (nothing about a room is kept outside the database)."""
    if n <= 1:
        return 0
    digest = hashlib.sha256(room_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n


@dataclass(frozen=True)
class Instance:
    name: str
    role: str
    listen: tuple[str, int] | None = None  # public (client-facing) listener
    internal: str | None = None  # base URL of its internal API (never a public listener)
    shard: int | None = None


@dataclass(frozen=True)
class Deployment:
    instances: dict[str, Instance]
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_dbid: int = 0
    channel: str = "sup"
    shared_secret: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def instance(self, name: str) -> Instance:
        try:
            return self.instances[name]
        except KeyError:
            raise DeploymentError(f"instance {name!r} is not in the deployment file (known: {', '.join(sorted(self.instances))})") from None

    def of_role(self, role: str) -> list[Instance]:
        return [i for i in self.instances.values() if i.role == role]

    def main(self) -> Instance:
        mains = self.of_role("main")
        if len(mains) != 1:
            raise DeploymentError("a deployment has exactly one instance with role main")
        return mains[0]

    def writer_of(self, stream: str) -> str:
        """The instance that writes ``stream`` (for ``events`` with persisters: the first of :meth:`event_writers`)."""
        role = STREAM_WRITER_ROLE.get(stream, "main")
        found = self.of_role(role)
        return found[0].name if found else self.main().name

    def federation_senders(self) -> list[str]:
        """The ``federation_sender`` instances, in shard order (their ``shard`` key, then name)."""
        found = self.of_role("federation_sender")
        return [i.name for i in sorted(found, key=lambda i: (i.shard if i.shard is not None else 1 << 30, i.name))]

    def federation_sender_for(self, destination: str) -> str | None:
        """The instance that sends to ``destination``: a stable hash of the server name over the sender instances
        (None: no sender instance, main sends). Every process computes the same answer from the same file."""
        names = self.federation_senders()
        if not names:
            return None
        h = int.from_bytes(hashlib.sha256(destination.encode("utf-8")).digest()[:8], "big")
        return names[h % len(names)]

    def streams_written_by(self, instance: str) -> list[str]:
        out = [s for s in STREAM_WRITER_ROLE if s != "events" and self.writer_of(s) == instance]
        if instance in self.event_writers():
            out.insert(0, "events")
        return out

    def multi_writer_events(self) -> bool:
        """Is the events stream written by event persisters (positions from the database sequence)?"""
        return bool(self.persisters())

    def persisters(self) -> list[Instance]:
        """The event persister instances in shard order (their ``shard`` number, else their name)."""
        found = self.of_role("event_persister")
        return sorted(found, key=lambda i: (i.shard if i.shard is not None else len(found) + 1, i.name))

    def event_writers(self) -> list[str]:
        """The instances that write the events stream: the persisters, or main when there are none."""
        return [i.name for i in self.persisters()] or [self.main().name]

    def persister_for(self, room_id: str) -> Instance:
        """The event persister that owns ``room_id`` (:func:`shard_index` over :meth:`persisters`); main if none."""
        found = self.persisters()
        if not found:
            return self.main()
        return found[shard_index(room_id, len(found))]


def parse(data: Any) -> Deployment:
    if not isinstance(data, dict):
        raise DeploymentError("the deployment file must be a mapping")
    raw = data.get("instances")
    if not isinstance(raw, dict) or not raw:
        raise DeploymentError("instances: a mapping of instance name -> {role, listen, internal, shard}")
    instances: dict[str, Instance] = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise DeploymentError(f"instance name {name!r}: 1-32 letters and digits")
        if not isinstance(spec, dict):
            raise DeploymentError(f"instances.{name}: a mapping")
        role = spec.get("role")
        if role not in ROLE_NAMES:
            raise DeploymentError(f"instances.{name}.role: one of {', '.join(ROLE_NAMES)}")
        listen = None
        if spec.get("listen") is not None:
            m = _LISTEN_RE.match(str(spec["listen"]))
            if m is None:
                raise DeploymentError(f"instances.{name}.listen: HOST:PORT")
            listen = (m.group(1).strip("[]"), int(m.group(2)))
        internal = spec.get("internal")
        if internal is not None and (not isinstance(internal, str) or not internal.startswith(("http://", "https://"))):
            raise DeploymentError(f"instances.{name}.internal: an http(s) base URL")
        shard = spec.get("shard")
        if shard is not None and (not isinstance(shard, int) or shard < 0):
            raise DeploymentError(f"instances.{name}.shard: a non-negative integer")
        unknown = set(spec) - {"role", "listen", "internal", "shard"}
        if unknown:
            raise DeploymentError(f"instances.{name}: unknown keys {sorted(unknown)}")
        instances[name] = Instance(name, role, listen, internal, shard)
    redis = data.get("redis") or {}
    if not isinstance(redis, dict):
        raise DeploymentError("redis: a mapping {host, port, dbid, channel}")
    secret = data.get("shared_secret", "")
    if not isinstance(secret, str):
        raise DeploymentError("shared_secret: a string")
    dep = Deployment(
        instances,
        redis_host=str(redis.get("host", "127.0.0.1")),
        redis_port=int(redis.get("port", 6379)),
        redis_dbid=int(redis.get("dbid", 0)),
        channel=str(redis.get("channel", "sup")),
        shared_secret=secret,
        extra={k: v for k, v in data.items() if k not in ("instances", "redis", "shared_secret")},
    )
    dep.main()  # exactly one main
    persisters = dep.persisters()
    for p in persisters:
        if p.internal is None:
            raise DeploymentError(f"instances.{p.name}.internal: an event persister needs an internal API URL")
    shards = [p.shard for p in persisters if p.shard is not None]
    if shards and sorted(shards) != list(range(len(persisters))):
        raise DeploymentError("event persisters' shard numbers: 0..N-1, each once (or none at all)")
    if persisters and not secret:
        raise DeploymentError("shared_secret: required when there are event persisters (internal API)")
    return dep


def load(path: str) -> Deployment:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    env_host = os.environ.get("SUP_REDIS__HOST")
    if env_host and isinstance(data, dict):
        data.setdefault("redis", {}).setdefault("host", env_host)
    return parse(data)
