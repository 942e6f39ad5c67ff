"""Configuration: one YAML file, ``SUP_`` environment overrides, validated at start."""

from homeserver.config.loader import Config, load_config, generate_sample_config
from homeserver.config.options import ConfigError

__all__ = ["Config", "ConfigError", "load_config", "generate_sample_config"]
