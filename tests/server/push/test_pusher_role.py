"""The ``pusher`` worker role wires the email area too, so email pushers are sent from a pusher worker."""

from __future__ import annotations

from typing import Any

from homeserver.config import load_config
from tests.harness import database_overrides, on_reactor


def test_pusher_role_has_the_email_pusher_factory(tmp_path) -> None:
    from workers.app import HomeServerApp

    db, drop = database_overrides("sqlite", str(tmp_path))
    config = load_config(None, environ={}, overrides={
        "server_name": "test.local", "data_dir": str(tmp_path), **db,
        "listeners": [{"bind_address": "127.0.0.1", "port": 0, "resources": ["client", "metrics"]}],
        "email.smtp_host": "127.0.0.1", "email.from": "SUP <noreply@test.local>", "email.tls": "none"})

    def build() -> Any:
        from twisted.internet import reactor

        app = HomeServerApp(config, reactor, role="pusher")
        return app.setup()

    try:
        core = on_reactor(build)
        assert callable(getattr(core, "email_pusher_factory", None))
        assert core.pusher_pool is not None and core.mailer is not None
    finally:
        drop()
