"""Fixtures for multi-process tests: need PostgreSQL and redis-server (fail in CI when missing)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.harness import IN_CI, PostgresUnavailable, create_postgres_database
from tests.integration.multiprocess.cluster import Cluster, RedisServer
from tests.integration.multiprocess.router import Router


def _need(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI for the worker tests")
    pytest.skip(f"{what} is not available")


@pytest.fixture
def make_cluster(tmp_path: Any) -> Iterator[Callable[..., tuple[Cluster, Router]]]:
    """``make_cluster({"main": "main", "sync1": "sync", ...})`` -> (cluster, router), all processes started."""
    if shutil.which("redis-server") is None:
        _need("redis-server")
    made: list[tuple[Cluster, Router, RedisServer, Callable[[], None]]] = []

    def make(instances: dict[str, str], overrides: dict[str, Any] | None = None,
             listeners: dict[str, list[dict[str, Any]]] | None = None) -> tuple[Cluster, Router]:
        try:
            dsn, drop = create_postgres_database(migrated=True)
        except PostgresUnavailable:
            _need("PostgreSQL")
        redis = RedisServer(str(tmp_path))
        redis.start()
        cluster = Cluster(str(tmp_path), dsn, instances, redis, overrides, listeners)
        router: Router | None = None
        try:
            first = [n for n, r in instances.items() if r == "main"]
            for name in first + [n for n in instances if n not in first]:
                cluster.start(name)
            upstreams: dict[str, list[tuple[str, int]]] = {}
            for name, role in instances.items():
                upstreams.setdefault(role, []).append(("127.0.0.1", cluster.ports[name]))
            router = Router(upstreams)
        except BaseException:
            cluster.close()
            redis.close()
            drop()
            raise
        made.append((cluster, router, redis, drop))
        return cluster, router

    yield make
    for cluster, router, redis, drop in made:
        router.close()
        cluster.close()
        redis.close()
        drop()
