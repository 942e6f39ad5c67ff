"""``sup worker``: refuses bad invocations with a one-line reason (exit 2), before opening anything."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from workers import cli


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


def _deployment(tmp_path: Any, instances: dict[str, Any], name: str = "deployment.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"instances": instances}))
    return str(path)


def test_worker_refusals(tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SUP_ROLE", "SUP_INSTANCE", "SUP_DEPLOYMENT"):
        monkeypatch.delenv(var, raising=False)
    dep = _deployment(tmp_path, {"main": {"role": "main"}, "s1": {"role": "sync", "listen": "127.0.0.1:1"}})
    assert _run(["worker"], capsys) == (2, "sup worker: give a ROLE (or set SUP_ROLE)\n")
    code, err = _run(["worker", "boss", "--deployment", dep], capsys)
    assert code == 2 and "unknown role 'boss'" in err
    code, err = _run(["worker", "sync"], capsys)
    assert code == 2 and "--deployment" in err
    code, err = _run(["worker", "sync", "--deployment", dep, "--instance", "nope"], capsys)
    assert code == 2 and "instance 'nope' is not in the deployment file" in err
    code, err = _run(["worker", "sync", "--deployment", dep, "--instance", "main"], capsys)
    assert code == 2 and "has role 'main'" in err
    bad = _deployment(tmp_path, {"s1": {"role": "sync"}}, "bad.yaml")
    code, err = _run(["worker", "sync", "--deployment", bad, "--instance", "s1"], capsys)
    assert code == 2 and "exactly one instance with role main" in err
    # several processes on SQLite: refused
    code, err = _run(["worker", "sync", "--deployment", dep, "--instance", "s1", "--data-dir", str(tmp_path / "d")], capsys)
    assert code == 2 and "need PostgreSQL" in err
