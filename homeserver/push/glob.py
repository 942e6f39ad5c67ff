"""Push rules' glob matching: the shared linear-time matcher (``homeserver/types/glob.py``)."""

from __future__ import annotations

from homeserver.types.glob import Glob, compile_glob, glob_matches

__all__ = ["Glob", "compile_glob", "glob_matches"]
