"""Load, override from the environment, validate and freeze the configuration."""

from __future__ import annotations

import os
from typing import Any, Mapping

import yaml

from homeserver.config.options import OPTIONS, OPTIONS_BY_PATH, ConfigError

ENV_PREFIX = "SUP_"
# SUP_ variables that are not config options: the CLI's and the container entrypoint's own.
NOT_OPTIONS = ("SUP_CONFIG", "SUP_DATA_DIR_DEFAULT", "SUP_ROLE", "SUP_INSTANCE", "SUP_DEPLOYMENT", "SUP_TLS_CERT", "SUP_TLS_KEY",
               "SUP_NO_TLS")


class Section:
    """A frozen, attribute-access view of one level of the configuration."""

    def __init__(self, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("configuration is read-only")

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.as_dict() if isinstance(v, Section) else v) for k, v in self._values.items()}


class Config(Section):
    """The whole validated configuration. Sections: ``config.database.engine`` etc."""

    @property
    def signing_key_file(self) -> str:
        return self.signing_key_path or os.path.join(self.data_dir, f"{self.server_name}.signing.key")

    @property
    def sqlite_path(self) -> str:
        return self.database.path or os.path.join(self.data_dir, "homeserver.db")

    @property
    def media_dir(self) -> str:
        return self.media.path or os.path.join(self.data_dir, "media")

    @property
    def base_url(self) -> str:
        if self.public_baseurl:
            return self.public_baseurl.rstrip("/") + "/"
        for listener in self.listeners:
            if "client" in listener["resources"]:
                scheme = "https" if listener["tls_certificate"] else "http"
                return f"{scheme}://{self.server_name}:{listener['port']}/"
        return f"https://{self.server_name}/"


def _flatten(raw: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; stops at known leaf options (which may be mappings)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ConfigError(f"{prefix}{key}: option names must be strings")
        path = prefix + key
        if path in OPTIONS_BY_PATH:
            out[path] = value
        elif isinstance(value, dict) and any(o.startswith(path + ".") for o in OPTIONS_BY_PATH):
            out.update(_flatten(value, path + "."))
        else:
            raise ConfigError(f"{path}: unknown option")
    return out


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``SUP_DATABASE__ENGINE=postgres`` → ``{"database.engine": "postgres"}``.

    Nesting uses a double underscore; values are parsed as YAML scalars
    (so ``true``, ``8008`` and ``[...]`` work).
    """
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_OPTIONS:
            continue
        path = name[len(ENV_PREFIX):].lower().replace("__", ".")
        if path not in OPTIONS_BY_PATH:
            raise ConfigError(f"{name}: unknown option {path}")
        try:
            out[path] = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            out[path] = raw
    return out


def load_config(
    path: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read ``path`` (may be None), apply env and explicit overrides, validate every value."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                loaded = yaml.safe_load(f)
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must contain a mapping")
        raw = _flatten(loaded)
    raw.update(_env_overrides(os.environ if environ is None else environ))
    if overrides:
        raw.update(_flatten(dict(overrides)) if any(isinstance(v, dict) for v in overrides.values()) else dict(overrides))

    values: dict[str, Any] = {}
    for option in OPTIONS:
        value = raw.get(option.path, option.default)
        try:
            values[option.path] = option.parse(value)
        except ValueError as e:
            raise ConfigError(f"{option.path}: {e}") from None
    _check_consistency(values)

    tree: dict[str, Any] = {}
    for path, value in values.items():
        node = tree
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return Config({k: (Section(v) if isinstance(v, dict) and k not in ("old_signing_keys",) else v) for k, v in tree.items()})


def _check_consistency(values: dict[str, Any]) -> None:
    import re

    name = values["server_name"]
    if not name or not re.fullmatch(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?", name):
        raise ConfigError("server_name: not a valid server name (hostname[:port])")
    if values["database.engine"] == "postgres" and not values["database.dsn"]:
        raise ConfigError("database.dsn: required when database.engine is postgres")
    if values["database.pool_min"] > values["database.pool_max"]:
        raise ConfigError("database.pool_min: must not exceed database.pool_max")
    if values["rtc.livekit_url"] and not (values["rtc.livekit_api_key"] and values["rtc.livekit_api_secret"]):
        raise ConfigError("rtc.livekit_api_key: rtc.livekit_api_key and rtc.livekit_api_secret are required with rtc.livekit_url")
    if values["media.store"] == "s3" and not values["media.s3_bucket"]:
        raise ConfigError("media.s3_bucket: required when media.store is s3")
    if values["email.smtp_host"] and not values["email.from"]:
        raise ConfigError("email.from: required when email.smtp_host is set")
    if values["email.from"]:
        from email.utils import parseaddr

        addr = parseaddr(values["email.from"])[1]
        if "@" not in addr or any(c in values["email.from"] for c in "\r\n"):
            raise ConfigError("email.from: not an email address (e.g. 'Example <noreply@example.org>')")
    if values["email.require_at_registration"] and not values["email.smtp_host"]:
        raise ConfigError("email.require_at_registration: needs email.smtp_host")
    for pattern in values["registration.reserved_localparts"]:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ConfigError(f"registration.reserved_localparts: bad regular expression {pattern!r}: {e}") from None


def generate_sample_config(server_name: str, data_dir: str = "./data") -> str:
    """A complete, commented YAML config with every option at its default."""
    lines = [
        "# SUP homeserver configuration.",
        "# Every option is listed with its default. Each can also be set from the",
        "# environment: SUP_ + the option path in capitals, nesting with a double",
        "# underscore, e.g. SUP_DATABASE__ENGINE=postgres, SUP_REGISTRATION__ENABLED=true.",
        "",
    ]
    fixed = {"server_name": server_name, "data_dir": data_dir}
    current_section: str | None = None
    for option in OPTIONS:
        parts = option.path.split(".")
        value = fixed.get(option.path, option.default)
        if len(parts) == 1:
            current_section = None
            lines.append(f"# {option.doc}")
            dumped = yaml.safe_dump({parts[0]: value}, default_flow_style=False, sort_keys=False).rstrip()
            lines.extend(dumped.splitlines())
            lines.append("")
        else:
            if parts[0] != current_section:
                current_section = parts[0]
                lines.append(f"{parts[0]}:")
            lines.append(f"  # {option.doc}")
            dumped = yaml.safe_dump({parts[1]: value}, default_flow_style=True, sort_keys=False).strip()
            if dumped.startswith("{") and dumped.endswith("}"):
                dumped = dumped[1:-1]
            lines.append(f"  {dumped}")
    return "\n".join(lines) + "\n"
