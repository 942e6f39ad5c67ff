"""Configuration: sample generation round-trips, env overrides, and one-line validation errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from homeserver.config import ConfigError, generate_sample_config, load_config
from homeserver.config.options import OPTIONS, parse_duration_ms, parse_size


def test_sample_config_lists_every_option_and_loads(tmp_path) -> None:
    text = generate_sample_config("example.org", str(tmp_path))
    path = tmp_path / "c.yaml"
    path.write_text(text)
    loaded = yaml.safe_load(text)
    for option in OPTIONS:
        node = loaded
        for part in option.path.split("."):
            assert part in node, f"{option.path} missing from the sample"
            node = node[part]
    config = load_config(str(path), environ={})
    assert config.server_name == "example.org"
    assert config.database.engine == "sqlite"
    assert config.registration.enabled is False  # registration off by default


def test_env_overrides_use_double_underscore_paths() -> None:
    config = load_config(
        None,
        environ={"SUP_SERVER_NAME": "env.example", "SUP_REGISTRATION__ENABLED": "true", "SUP_HTTP__MAX_REQUEST_BODY": "2M"},
    )
    assert config.server_name == "env.example"
    assert config.registration.enabled is True
    assert config.http.max_request_body == 2 * 1024 * 1024


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"nonsense": 1}, "nonsense: unknown option"),
        ({"database": {"engine": "mysql"}}, "database.engine: expected one of sqlite, postgres"),
        ({"database": {"engine": "postgres"}}, "database.dsn: required"),
        ({"registration": {"enabled": "maybe"}}, "registration.enabled: expected true or false"),
        ({"registration": {"typo": True}}, "registration.typo: unknown option"),
        ({"listeners": [{"port": 99999}]}, "listeners: listener 0 needs a port"),
        ({"listeners": [{"port": 80, "resources": ["gopher"]}]}, "unknown resource 'gopher'"),
        ({"http": {"max_request_body": "lots"}}, "http.max_request_body: expected a size"),
        ({"server_name": "bad name!"}, "server_name: not a valid server name"),
        ({"logging": {"format": "xml"}}, "logging.format: expected one of text, json"),
    ],
)
def test_bad_values_name_the_option(tmp_path, values, needle) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ConfigError) as e:
        load_config(str(path), environ={})
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_env_option_is_an_error() -> None:
    with pytest.raises(ConfigError, match="SUP_NOPE: unknown option"):
        load_config(None, environ={"SUP_NOPE": "1"})


def test_cli_exits_non_zero_with_one_line_on_bad_config(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("database:\n  engine: oracle\n")
    proc = subprocess.run(
        [sys.executable, "-m", "workers.cli", "migrate", "--config", str(path)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert lines == ["config error: database.engine: expected one of sqlite, postgres"]


def test_duration_and_size_parsers() -> None:
    assert parse_duration_ms("10s") == 10_000
    assert parse_duration_ms("5m") == 300_000
    assert parse_duration_ms(250) == 250
    assert parse_size("1K") == 1024
    assert parse_size("50M") == 50 * 1024 * 1024
    assert parse_size("1GiB") == 1024**3
