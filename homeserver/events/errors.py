"""Typed errors raised by the event core."""

from __future__ import annotations


class EventError(Exception):
    """Base class for every error raised by :mod:`homeserver.events`."""


class InvalidEventError(EventError):
    """A PDU (or a locally built event) does not match its room version's format.

    Over federation such an event is *dropped* (checks on receipt, step 1).
    """


class CanonicalJsonError(InvalidEventError):
    """A value cannot be represented in the spec's canonical JSON."""


class SignatureError(EventError):
    """A required signature is missing or does not verify (event is dropped)."""


class HashMismatchError(EventError):
    """The content hash does not match (the event must be used redacted)."""


class AuthError(EventError):
    """An event fails the authorization rules.

    ``reason`` is a human-readable sentence naming the rule that failed; it is
    also ``str(error)`` so tests and logs can match on it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownRoomVersionError(EventError):
    """The room version identifier is not one we implement."""
