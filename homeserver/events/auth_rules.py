"""The authorization rules, as pure functions.

Entry points (one code path for local events and federation):

* :func:`check_auth_rules` — the rules proper, given the relevant auth state
  as a map ``(type, state_key) -> Event``.
* :func:`check_event_against_auth_events` — receipt check 4: the event's own
  ``auth_events`` (including the list checks: duplicates, unexpected entries,
  rejected entries, room mismatch).
* :func:`check_event_against_state` — receipt checks 5 and 6 (state before the
  event; current state for soft-fail) and local event creation: selects the
  needed entries from a full state map and applies the rules.

Every rejection raises :class:`AuthError` whose ``reason`` names the rule.
Signature *verification* is not done here (it needs keys): the rule "event
must be validly signed by the server of join_authorised_via_users_server" is
enforced cryptographically by :func:`homeserver.events.signing.verify_event_signatures`
(which requires that server's signature); here we check it is present.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from homeserver.events.auth_selection import (
    CREATE,
    JOIN_RULES,
    POWER_LEVELS,
    auth_types_for_event,
)
from homeserver.events.errors import AuthError
from homeserver.events.event import Event
from homeserver.events.hashing import create_event_id_from_room_id
from homeserver.events.ids import get_domain, is_valid_user_id
from homeserver.events.power_levels import (
    PowerLevels,
    is_strict_int,
    parse_level,
    room_creators,
)
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.events.third_party_invite import public_keys_of, signed_matches_any_key

StateKey = tuple[str, str]
AuthMap = Mapping[StateKey, Event]

_PL_SCALAR_KEYS = (
    "users_default",
    "events_default",
    "state_default",
    "ban",
    "redact",
    "kick",
    "invite",
)


def _domain(identifier: str) -> str:
    try:
        return get_domain(identifier)
    except ValueError:
        raise AuthError(f"malformed identifier {identifier!r}") from None


# --- list checks on the event's own auth_events --------------------------------


def check_auth_events_list(
    event: Event,
    auth_events: Iterable[Event],
    *,
    is_rejected: Callable[[str], bool] | None = None,
) -> dict[StateKey, Event]:
    """Rules "Considering the event's auth_events"; returns them as a map."""
    rv = event.room_version
    allowed = set(auth_types_for_event(event, rv))
    out: dict[StateKey, Event] = {}
    for ae in auth_events:
        key = ae.state_tuple
        if key is None:
            raise AuthError(f"auth event {ae.event_id} is not a state event")
        if key in out:
            raise AuthError(f"duplicate auth events for {key}")
        if key not in allowed:
            raise AuthError(
                f"auth event {ae.event_id} of {key} is not an expected auth event"
            )
        if is_rejected is not None and is_rejected(ae.event_id):
            raise AuthError(f"auth event {ae.event_id} was rejected")
        if ae.room_id != event.room_id:
            raise AuthError(f"auth event {ae.event_id} belongs to another room")
        out[key] = ae
    if rv.create_event_in_auth_events and CREATE not in out:
        raise AuthError("no m.room.create event in auth_events")
    return out


def check_event_against_auth_events(
    event: Event,
    auth_events: Iterable[Event],
    *,
    create_event: Event | None = None,
    is_rejected: Callable[[str], bool] | None = None,
) -> None:
    """Receipt check 4: authorise ``event`` against its own ``auth_events``.

    For v12 the create event is not among the auth events; pass it as
    ``create_event`` (the event whose id is the room id).
    """
    auth_map = check_auth_events_list(event, auth_events, is_rejected=is_rejected)
    if event.room_version.room_id_from_create_event and event.type != "m.room.create":
        if create_event is None:
            raise AuthError("room's m.room.create event is unknown")
        if is_rejected is not None and is_rejected(create_event.event_id):
            raise AuthError("room's m.room.create event was rejected")
        auth_map[CREATE] = create_event
    check_auth_rules(event, auth_map)


def check_event_against_state(event: Event, state: AuthMap) -> None:
    """Receipt checks 5/6 and local creation: authorise against a state map.

    ``state`` maps ``(type, state_key)`` to events (full state or just the
    needed part); it must include the create event in every room version.
    """
    auth_map: dict[StateKey, Event] = {}
    for key in auth_types_for_event(event, event.room_version):
        ev = state.get(key)
        if ev is not None:
            auth_map[key] = ev
    create = state.get(CREATE)
    if create is not None:
        auth_map[CREATE] = create
    check_auth_rules(event, auth_map)


# --- the rules proper ----------------------------------------------------------


def check_auth_rules(event: Event, auth_events: AuthMap) -> None:
    """Apply the authorization rules of ``event.room_version``.

    ``auth_events`` is the auth state (``(type, state_key) -> Event``) and must
    contain the room's create event (also in v12). Raises :class:`AuthError`.
    """
    rv = event.room_version
    if event.type == "m.room.create":
        _check_create(event, rv)
        return

    create = auth_events.get(CREATE)
    if create is None:
        raise AuthError("no m.room.create event in auth events")
    if rv.room_id_from_create_event:
        if create.event_id != create_event_id_from_room_id(event.room_id):
            raise AuthError("room_id is not the id of the room's m.room.create event")
    elif create.room_id != event.room_id:
        raise AuthError("m.room.create event belongs to another room")

    if create.content.get("m.federate", True) is False and _domain(
        event.sender
    ) != _domain(create.sender):
        raise AuthError("room is not federated and sender is on another server")

    if rv.special_case_aliases_auth and event.type == "m.room.aliases":
        if event.state_key is None:
            raise AuthError("m.room.aliases event has no state_key")
        if event.state_key != _domain(event.sender):
            raise AuthError("m.room.aliases state_key does not match sender's server")
        return

    pls = PowerLevels(auth_events, rv)
    if event.type == "m.room.member":
        _check_membership(event, auth_events, pls, create)
        return

    if _membership_of(auth_events, event.sender) != "join":
        raise AuthError(f"sender {event.sender} is not joined to the room")

    sender_level = pls.user_level(event.sender)
    if event.type == "m.room.third_party_invite":
        if sender_level >= pls.level("invite"):
            return
        raise AuthError("sender's power level is below the invite level")

    required = pls.required_level(event.type, event.is_state())
    if required > sender_level:
        raise AuthError(
            f"sender's power level {sender_level} is below {required} required for {event.type}"
        )

    sk = event.state_key
    if sk is not None and sk.startswith("@") and sk != event.sender:
        raise AuthError("state_key starting with '@' does not match sender")

    if event.type == "m.room.power_levels":
        _check_power_levels(event, auth_events, pls, create)
        return

    if rv.redaction_auth_in_rules and event.type == "m.room.redaction":
        if sender_level >= pls.level("redact"):
            return
        redacts = event.redacts
        if (
            redacts is not None
            and ":" in redacts
            and (_domain(redacts) == _domain(event.event_id))
        ):
            return
        raise AuthError("sender may not redact events from another server")


def _check_create(event: Event, rv: RoomVersion) -> None:
    if event.prev_event_ids:
        raise AuthError("m.room.create event has prev_events")
    if rv.room_id_from_create_event:
        if event.has_field("room_id"):
            raise AuthError("m.room.create event must not have a room_id")
    elif _domain(event.room_id) != _domain(event.sender):
        raise AuthError("room_id's server does not match the sender's server")
    room_version = event.content.get("room_version")
    if "room_version" in event.content and (
        not isinstance(room_version, str) or room_version not in KNOWN_ROOM_VERSIONS
    ):
        raise AuthError(f"unknown room_version {room_version!r} in m.room.create")
    if rv.privileged_creators and "additional_creators" in event.content:
        extra = event.content["additional_creators"]
        if not isinstance(extra, tuple) or not all(is_valid_user_id(u) for u in extra):
            raise AuthError("additional_creators must be an array of valid user ids")
    if not rv.implicit_room_creator and "creator" not in event.content:
        raise AuthError("m.room.create content has no creator")


def _membership_of(auth_events: AuthMap, user_id: str) -> str | None:
    ev = auth_events.get(("m.room.member", user_id))
    return ev.membership if ev is not None else None


def _join_rule(auth_events: AuthMap) -> str | None:
    ev = auth_events.get(JOIN_RULES)
    if ev is None:
        return None
    rule = ev.content.get("join_rule")
    return rule if isinstance(rule, str) else None


def _check_membership(
    event: Event, auth_events: AuthMap, pls: PowerLevels, create: Event
) -> None:
    rv = event.room_version
    target = event.state_key
    membership = event.content.get("membership")
    if target is None or "membership" not in event.content:
        raise AuthError("m.room.member event has no state_key or no membership")

    authoriser = event.content.get("join_authorised_via_users_server")
    if rv.restricted_join_rule and authoriser is not None:
        if not isinstance(authoriser, str) or ":" not in authoriser:
            raise AuthError("join_authorised_via_users_server is not a user id")
        if _domain(authoriser) not in event.signatures:
            raise AuthError(
                "event is not signed by the server of join_authorised_via_users_server"
            )

    sender_membership = _membership_of(auth_events, event.sender)
    target_membership = _membership_of(auth_events, target)
    sender_level = pls.user_level(event.sender)
    target_level = pls.user_level(target)
    join_rule = _join_rule(auth_events)

    if membership == "join":
        creators = room_creators(create, rv)
        only_create = event.prev_event_ids == (create.event_id,)
        creator = (
            create.sender if rv.implicit_room_creator else next(iter(creators), None)
        )
        if only_create and target == creator:
            return
        if event.sender != target:
            raise AuthError("cannot join on behalf of another user")
        if sender_membership == "ban":
            raise AuthError("sender is banned from the room")
        invite_like = {"invite"} | ({"knock"} if rv.knock_join_rule else set())
        restricted_like = ({"restricted"} if rv.restricted_join_rule else set()) | (
            {"knock_restricted"} if rv.knock_restricted_join_rule else set()
        )
        if join_rule in invite_like:
            if target_membership in ("invite", "join"):
                return
            raise AuthError(f"join rule is {join_rule} and user is not invited")
        if join_rule in restricted_like:
            if target_membership in ("join", "invite"):
                return
            if not isinstance(authoriser, str):
                raise AuthError(
                    "restricted join without join_authorised_via_users_server"
                )
            if _membership_of(auth_events, authoriser) != "join" or pls.user_level(
                authoriser
            ) < pls.level("invite"):
                raise AuthError(
                    "join_authorised_via_users_server user cannot invite users to the room"
                )
            return
        if join_rule == "public":
            return
        raise AuthError(f"join rule {join_rule!r} does not allow joining")

    if membership == "invite":
        if "third_party_invite" in event.content:
            _check_third_party_invite(event, auth_events, target_membership)
            return
        if sender_membership != "join":
            raise AuthError("inviter is not joined to the room")
        if target_membership in ("join", "ban"):
            raise AuthError(f"invitee's membership is {target_membership}")
        if sender_level >= pls.level("invite"):
            return
        raise AuthError("sender's power level is below the invite level")

    if membership == "leave":
        if event.sender == target:
            allowed = {"invite", "join"} | ({"knock"} if rv.knock_join_rule else set())
            if sender_membership in allowed:
                return
            raise AuthError(f"cannot leave with current membership {sender_membership}")
        if sender_membership != "join":
            raise AuthError("sender is not joined to the room")
        if target_membership == "ban" and sender_level < pls.level("ban"):
            raise AuthError("sender's power level is below the ban level (unban)")
        if sender_level >= pls.level("kick") and target_level < sender_level:
            return
        raise AuthError("sender's power level is too low to kick the target")

    if membership == "ban":
        if sender_membership != "join":
            raise AuthError("sender is not joined to the room")
        if sender_level >= pls.level("ban") and target_level < sender_level:
            return
        raise AuthError("sender's power level is too low to ban the target")

    if membership == "knock" and rv.knock_join_rule:
        knockable = {"knock"} | (
            {"knock_restricted"} if rv.knock_restricted_join_rule else set()
        )
        if join_rule not in knockable:
            raise AuthError(f"join rule {join_rule!r} does not allow knocking")
        if event.sender != target:
            raise AuthError("cannot knock on behalf of another user")
        if sender_membership not in ("ban", "invite", "join"):
            return
        raise AuthError(f"cannot knock with current membership {sender_membership}")

    raise AuthError(f"unknown membership {membership!r}")


def _check_third_party_invite(
    event: Event, auth_events: AuthMap, target_membership: str | None
) -> None:
    if target_membership == "ban":
        raise AuthError("third-party invitee is banned")
    tpi = event.content["third_party_invite"]
    signed = tpi.get("signed") if isinstance(tpi, Mapping) else None
    if not isinstance(signed, Mapping):
        raise AuthError("third_party_invite has no signed property")
    mxid, token = signed.get("mxid"), signed.get("token")
    if not isinstance(mxid, str) or not isinstance(token, str):
        raise AuthError("third_party_invite.signed lacks mxid or token")
    if mxid != event.state_key:
        raise AuthError("third_party_invite mxid does not match state_key")
    tpi_event = auth_events.get(("m.room.third_party_invite", token))
    if tpi_event is None:
        raise AuthError("no m.room.third_party_invite event for token")
    if tpi_event.sender != event.sender:
        raise AuthError("sender does not match the m.room.third_party_invite sender")
    if signed_matches_any_key(signed, public_keys_of(tpi_event.content)):
        return
    raise AuthError("third_party_invite signature does not match any public key")


def _int_map_ok(value: Any, rv: RoomVersion) -> bool:
    return isinstance(value, Mapping) and all(
        parse_level(v, rv) is not None for v in value.values()
    )


def _check_power_levels(
    event: Event, auth_events: AuthMap, pls: PowerLevels, create: Event
) -> None:
    rv = event.room_version
    content = event.content
    if rv.enforce_int_power_levels:
        for key in _PL_SCALAR_KEYS:
            if key in content and not is_strict_int(content[key]):
                raise AuthError(f"power level {key!r} is not an integer")
        for key in ("events", "notifications"):
            if key in content and not _int_map_ok(content[key], rv):
                raise AuthError(f"power levels {key!r} must map to integers")
    users = content.get("users", {})
    if not isinstance(users, Mapping):
        raise AuthError("power levels 'users' is not an object")
    for user_id, level in users.items():
        if not is_valid_user_id(user_id):
            raise AuthError(f"power levels 'users' has invalid user id {user_id!r}")
        if parse_level(level, rv) is None:
            raise AuthError(f"power level for {user_id} is not an integer")
    if rv.privileged_creators:
        for creator in room_creators(create, rv):
            if creator in users:
                raise AuthError(
                    f"room creator {creator} must not appear in power levels users"
                )

    old_event = auth_events.get(POWER_LEVELS)
    if old_event is None:
        return
    old = old_event.content
    sender_level = pls.user_level(event.sender)

    def level(mapping: Mapping[str, Any], key: str) -> int | None:
        return parse_level(mapping.get(key), rv) if key in mapping else None

    for key in _PL_SCALAR_KEYS:
        before, after = level(old, key), level(content, key)
        if before == after:
            continue
        if before is not None and before > sender_level:
            raise AuthError(
                f"cannot change {key!r}: current value is above sender's level"
            )
        if after is not None and after > sender_level:
            raise AuthError(f"cannot change {key!r}: new value is above sender's level")

    maps = ["events"] + (
        ["notifications"] if rv.limit_notifications_power_levels else []
    )
    for name in maps:
        before_map = old.get(name) if isinstance(old.get(name), Mapping) else {}
        after_map = content.get(name) if isinstance(content.get(name), Mapping) else {}
        for key in set(before_map) | set(after_map):
            before, after = level(before_map, key), level(after_map, key)
            if before == after:
                continue
            if key in before_map and before is not None and before > sender_level:
                raise AuthError(
                    f"cannot change {name}.{key}: current value is above sender's level"
                )
            if key in after_map and after is not None and after > sender_level:
                raise AuthError(
                    f"cannot change {name}.{key}: new value is above sender's level"
                )

    old_users = old.get("users") if isinstance(old.get("users"), Mapping) else {}
    for user_id in set(old_users) | set(users):
        before, after = level(old_users, user_id), level(users, user_id)
        if before == after:
            continue
        if (
            user_id in old_users
            and user_id != event.sender
            and before is not None
            and before >= sender_level
        ):
            raise AuthError(
                f"cannot change power level of {user_id}: not below sender's"
            )
        if user_id in users and after is not None and after > sender_level:
            raise AuthError(f"cannot set power level of {user_id} above sender's level")


__all__ = [
    "check_auth_events_list",
    "check_auth_rules",
    "check_event_against_auth_events",
    "check_event_against_state",
]
