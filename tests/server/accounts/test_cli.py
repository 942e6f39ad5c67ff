"""``sup register-user`` creates a user the server can log in."""

from __future__ import annotations

import pytest

from tests.server.accounts.helpers import login


def test_register_user_cli(make_server, engine, tmp_path, monkeypatch, capsys):
    if engine != "sqlite":
        pytest.skip("the CLI test shares a SQLite file with the server")
    from workers.cli import main

    data = tmp_path / "srv0"
    data.mkdir()
    monkeypatch.setenv("SUP_SERVER_NAME", "test.local")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "cli-password")
    assert main(["register-user", "--data-dir", str(data), "-u", "Boss", "--admin"]) == 0
    assert "@boss:test.local" in capsys.readouterr().out
    assert main(["register-user", "--data-dir", str(data), "-u", "boss", "-p", "x"]) == 1
    assert main(["register-user", "--data-dir", str(data), "-u", "bad name", "-p", "x"]) == 1
    monkeypatch.delenv("SUP_SERVER_NAME")
    srv = make_server()
    token = login(srv, "boss", password="cli-password")["access_token"]
    assert srv.get("/_synapse/admin/v2/users/@boss:test.local", token=token).json()["admin"] is True
