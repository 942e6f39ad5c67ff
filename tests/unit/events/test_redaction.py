"""Redaction per room version: every key whose treatment differs between versions."""

from __future__ import annotations

import pytest

from homeserver.events import KNOWN_ROOM_VERSIONS, redact_event_dict

VERSIONS = [str(i) for i in range(1, 13)]


def _redact(version: str, event: dict) -> dict:
    return redact_event_dict(event, KNOWN_ROOM_VERSIONS[version])


# (event type, content key, first version that keeps it or None, last version that keeps it or None)
CONTENT_CASES = [
    ("m.room.aliases", "aliases", "1", "5"),
    ("m.room.join_rules", "allow", "8", None),
    ("m.room.join_rules", "join_rule", "1", None),
    ("m.room.member", "join_authorised_via_users_server", "9", None),
    ("m.room.member", "membership", "1", None),
    ("m.room.member", "displayname", None, None),
    ("m.room.create", "creator", "1", None),
    ("m.room.create", "room_version", "11", None),  # v11 keeps all create content
    ("m.room.create", "m.federate", "11", None),
    ("m.room.power_levels", "invite", "11", None),
    ("m.room.power_levels", "ban", "1", None),
    ("m.room.power_levels", "notifications", None, None),
    ("m.room.redaction", "redacts", "11", None),
    ("m.room.history_visibility", "history_visibility", "1", None),
    ("m.room.topic", "topic", None, None),
]


def _kept(version: str, first: str | None, last: str | None) -> bool:
    v = int(version)
    return first is not None and v >= int(first) and (last is None or v <= int(last))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("event_type", "key", "first", "last"), CONTENT_CASES)
def test_content_keys(
    version: str, event_type: str, key: str, first: str | None, last: str | None
) -> None:
    event = {
        "type": event_type,
        "content": {key: "v", "other_junk": 1},
        "state_key": "",
    }
    out = _redact(version, event)
    assert ("other_junk" in out["content"]) == (
        event_type == "m.room.create" and int(version) >= 11
    )
    assert (key in out["content"]) == _kept(version, first, last)


TOP_LEVEL_CASES = [
    ("origin", "1", "10"),
    ("membership", "1", "10"),
    ("prev_state", "1", "10"),
    ("event_id", "1", None),
    ("depth", "1", None),
    ("hashes", "1", None),
    ("signatures", "1", None),
    ("unsigned", None, None),
    ("redacts", None, None),  # top-level redacts is never protected
    ("age_ts", None, None),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("key", "first", "last"), TOP_LEVEL_CASES)
def test_top_level_keys(
    version: str, key: str, first: str | None, last: str | None
) -> None:
    event = {"type": "m.room.message", "content": {"body": "x"}, key: "v"}
    out = _redact(version, event)
    assert (key in out) == _kept(version, first, last)
    assert out["content"] == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_third_party_invite_signed_kept_from_v11(version: str) -> None:
    content = {
        "membership": "invite",
        "third_party_invite": {"display_name": "x", "signed": {"token": "t"}},
    }
    out = _redact(version, {"type": "m.room.member", "content": content})
    if int(version) >= 11:
        assert out["content"]["third_party_invite"] == {"signed": {"token": "t"}}
    else:
        assert "third_party_invite" not in out["content"]


def test_redaction_does_not_mutate_input() -> None:
    event = {"type": "m.room.create", "content": {"a": {"b": 1}}, "junk": 1}
    out = _redact("11", event)
    out["content"]["a"]["b"] = 2
    assert event == {"type": "m.room.create", "content": {"a": {"b": 1}}, "junk": 1}
