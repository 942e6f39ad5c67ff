"""Validation at the edge, the second batch of families (push rules, profile, end-to-end keys, search, registration,
3PID, admin, SUP extensions): every malformed body gets the spec's 400 errcode; good bodies keep what clients send."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.api.errors import MatrixError
from homeserver.api.models.push import PushRuleActionsBody, PushRuleBody, PushRuleEnabledBody
from homeserver.http.models import parse_value
from tests.unit.api.helpers import assert_refused

BAD: list[tuple[Any, dict[str, Any], str]] = [
    (PushRuleBody, {}, "M_MISSING_PARAM"),
    (PushRuleBody, {"actions": "notify"}, "M_BAD_JSON"),
    (PushRuleBody, {"actions": ["explode"]}, "M_INVALID_PARAM"),
    (PushRuleBody, {"actions": [5]}, "M_INVALID_PARAM"),
    (PushRuleBody, {"actions": [{"set_tweak": ""}]}, "M_INVALID_PARAM"),
    (PushRuleBody, {"actions": [{"set_tweak": "highlight", "value": "yes"}]}, "M_INVALID_PARAM"),
    (PushRuleBody, {"actions": [], "conditions": {}}, "M_BAD_JSON"),
    (PushRuleBody, {"actions": [], "conditions": ["x"]}, "M_BAD_JSON"),
    (PushRuleBody, {"actions": [], "conditions": [{"kind": 5}]}, "M_BAD_JSON"),
    (PushRuleBody, {"actions": [], "conditions": [{"kind": "event_match", "key": "k"}]}, "M_BAD_JSON"),
    (PushRuleBody, {"actions": [], "conditions": [{"kind": "event_property_is", "key": "k", "value": 2**60}]},
     "M_BAD_JSON"),
    (PushRuleBody, {"actions": [], "pattern": 5}, "M_BAD_JSON"),
    (PushRuleEnabledBody, {}, "M_MISSING_PARAM"),
    (PushRuleEnabledBody, {"enabled": 1}, "M_BAD_JSON"),
    (PushRuleEnabledBody, {"enabled": "true"}, "M_BAD_JSON"),
    (PushRuleActionsBody, {}, "M_MISSING_PARAM"),
    (PushRuleActionsBody, {"actions": {}}, "M_BAD_JSON"),
]


@pytest.mark.parametrize("model,body,errcode", BAD)
def test_malformed_body_gets_spec_errcode(model: Any, body: dict[str, Any], errcode: str) -> None:
    assert_refused(model, body, errcode)


def test_push_rule_bodies_keep_what_clients_send() -> None:
    body = parse_value({"actions": ["notify", "dont_notify", {"set_tweak": "sound", "value": "ping", "x.y": 1}],
                        "conditions": [{"kind": "org.future", "anything": [1]}, {"kind": "event_match", "key": "k",
                                                                                  "pattern": "p", "x": 1}],
                        "pattern": "p", "extension": True}, PushRuleBody)
    assert body.actions == ["notify", {"set_tweak": "sound", "value": "ping", "x.y": 1}]  # historical action dropped
    assert body.conditions is not None and body.conditions[0] == {"kind": "org.future", "anything": [1]}
    assert body.conditions[1]["x"] == 1 and body.pattern == "p"
    assert parse_value({"enabled": False}, PushRuleEnabledBody).enabled is False
    assert parse_value({"actions": []}, PushRuleActionsBody).actions == []


def _profile(key: str, body: dict[str, Any]) -> Any:
    from homeserver.api.models.profile import ProfileFieldBody

    return parse_value(body, ProfileFieldBody, {"key": key})


@pytest.mark.parametrize("key,body,errcode", [
    ("displayname", {}, "M_MISSING_PARAM"),
    ("displayname", {"displayname": 12}, "M_BAD_JSON"),
    ("displayname", {"displayname": None}, "M_BAD_JSON"),
    ("displayname", {"displayname": "d" * 257}, "M_INVALID_PARAM"),
    ("displayname", {"displayname": "a\u0000"}, "M_INVALID_PARAM"),
    ("avatar_url", {"avatar_url": "https://x/y.png"}, "M_INVALID_PARAM"),
    ("avatar_url", {"avatar_url": ["mxc://x/y"]}, "M_BAD_JSON"),
    ("m.tz", {"m.tz": 1}, "M_BAD_JSON"),
    ("Not-Valid", {"Not-Valid": 1}, "M_INVALID_PARAM"),
    ("com.example." + "k" * 300, {"com.example." + "k" * 300: 1}, "M_KEY_TOO_LARGE"),
    ("com.example.big", {"com.example.big": "x" * 20000}, "M_PROFILE_TOO_LARGE"),
])
def test_profile_field_errors(key: str, body: dict[str, Any], errcode: str) -> None:
    with pytest.raises(MatrixError) as e:
        _profile(key, body)
    assert (e.value.status, e.value.errcode) == (400, errcode), e.value.msg


def test_profile_field_keeps_custom_values() -> None:
    from homeserver.api.models.profile import ProfileFieldBody

    field = _profile("com.example.pronouns", {"com.example.pronouns": {"en": "she/her", "n": 1}, "other": 2})
    assert (field.key, field.value) == ("com.example.pronouns", {"en": "she/her", "n": 1})
    assert ProfileFieldBody.of("displayname", "Alice").value == "Alice"


def test_admin_user_body() -> None:
    from homeserver.api.models.admin import AdminDeactivateBody, AdminUserBody

    for body, errcode in (({"admin": "yes"}, "M_BAD_JSON"), ({"deactivated": 1}, "M_BAD_JSON"), ({"password": ""}, "M_WEAK_PASSWORD"),
                          ({"password": 5}, "M_BAD_JSON"), ({"avatar_url": "http://x"}, "M_INVALID_PARAM"),
                          ({"displayname": 5}, "M_BAD_JSON"), ({"user_type": []}, "M_BAD_JSON")):
        with pytest.raises(MatrixError) as e:
            parse_value(body, AdminUserBody)
        assert e.value.errcode == errcode, body
    user = parse_value({"deactivated": False, "password": "pw"}, AdminUserBody)
    assert user.model_fields_set == {"deactivated", "password"} and user.logout_devices is True
    assert parse_value({}, AdminDeactivateBody).erase is False


def _key(**over: Any) -> dict[str, Any]:
    return {"user_id": "@a:x", "usage": ["master"], "keys": {"ed25519:K": "K"}, **over}


KEY_DATA = {"first_message_index": 0, "forwarded_count": 0, "is_verified": False, "session_data": {"x": 1}}


@pytest.mark.parametrize("model,body,errcode", [
    ("DeviceSigningUploadBody", {"master_key": "k"}, "M_BAD_JSON"),
    ("DeviceSigningUploadBody", {"master_key": {"usage": ["master"], "keys": {}}}, "M_MISSING_PARAM"),
    ("DeviceSigningUploadBody", {"master_key": _key(usage="master")}, "M_BAD_JSON"),
    ("DeviceSigningUploadBody", {"master_key": _key(usage=[1])}, "M_BAD_JSON"),
    ("DeviceSigningUploadBody", {"self_signing_key": _key(keys={"ed25519:K": 1})}, "M_BAD_JSON"),
    ("DeviceSigningUploadBody", {"user_signing_key": _key(signatures={"@a:x": "sig"})}, "M_BAD_JSON"),
    ("DeviceSigningUploadBody", {"master_key": _key(), "auth": "x"}, "M_BAD_JSON"),
    ("SignaturesUploadBody", {"nobody": {}}, "M_INVALID_PARAM"),
    ("SignaturesUploadBody", {"@a:x": []}, "M_BAD_JSON"),
    ("KeyBackupData", {}, "M_MISSING_PARAM"),
    ("KeyBackupData", {**KEY_DATA, "first_message_index": -1}, "M_INVALID_PARAM"),
    ("KeyBackupData", {**KEY_DATA, "first_message_index": True}, "M_BAD_JSON"),
    ("KeyBackupData", {**KEY_DATA, "forwarded_count": 1.5}, "M_BAD_JSON"),
    ("KeyBackupData", {**KEY_DATA, "is_verified": "yes"}, "M_BAD_JSON"),
    ("KeyBackupData", {**KEY_DATA, "session_data": "x"}, "M_BAD_JSON"),
    ("RoomKeyBackup", {}, "M_MISSING_PARAM"),
    ("RoomKeyBackup", {"sessions": {"s": "x"}}, "M_BAD_JSON"),
    ("KeyBackupKeysBody", {"rooms": []}, "M_BAD_JSON"),
    ("KeyBackupKeysBody", {"rooms": {"!r:x": {"sessions": {"s": {**KEY_DATA, "is_verified": None}}}}}, "M_BAD_JSON"),
])
def test_e2e_bodies(model: str, body: dict[str, Any], errcode: str) -> None:
    from homeserver.api.models import keys

    with pytest.raises(MatrixError) as e:
        parse_value(body, getattr(keys, model))
    assert (e.value.status, e.value.errcode) == (400, errcode), e.value.msg


def test_e2e_bodies_keep_signed_objects_as_sent() -> None:
    from homeserver.api.models.keys import DeviceSigningUploadBody, KeyBackupKeysBody, SignaturesUploadBody, backup_keys_body

    master = _key(signatures={"@a:x": {"ed25519:D": "s"}}, **{"org.example.extra": [1]})
    up = parse_value({"master_key": master, "auth": {"type": "m.login.password", "session": "S"}}, DeviceSigningUploadBody)
    assert up.master_key == master and up.uia_body() == {"auth": {"type": "m.login.password", "session": "S"}}
    assert parse_value({}, DeviceSigningUploadBody).uia_body() == {}
    sigs = parse_value({"@a:x": {"K": {"anything": 1}, "L": "not an object"}}, SignaturesUploadBody)
    assert sigs.root["@a:x"]["L"] == "not an object"  # a per-key failure, answered in ``failures``
    body = parse_value({"rooms": {"!r:x": {"sessions": {"s": {**KEY_DATA, "extra": 1}}}}}, KeyBackupKeysBody)
    assert body.rooms["!r:x"].sessions["s"].model_dump() == KEY_DATA
    assert backup_keys_body("!r:x", "s").__name__ == "KeyBackupData" and backup_keys_body(None, None) is KeyBackupKeysBody


def _search(room_events: Any) -> dict[str, Any]:
    return {"search_categories": {"room_events": room_events}}


@pytest.mark.parametrize("body,errcode", [
    ({}, "M_MISSING_PARAM"),
    ({"search_categories": "room_events"}, "M_BAD_JSON"),
    ({"search_categories": {"rooms": {}}}, "M_INVALID_PARAM"),
    (_search("x"), "M_BAD_JSON"),
    (_search({}), "M_MISSING_PARAM"),
    (_search({"search_term": 5}), "M_BAD_JSON"),
    (_search({"search_term": "x" * 1001}), "M_INVALID_PARAM"),
    (_search({"search_term": "x", "keys": ["content.secret"]}), "M_INVALID_PARAM"),
    (_search({"search_term": "x", "keys": "content.body"}), "M_BAD_JSON"),
    (_search({"search_term": "x", "order_by": "random"}), "M_INVALID_PARAM"),
    (_search({"search_term": "x", "filter": []}), "M_BAD_JSON"),
    (_search({"search_term": "x", "groupings": {"group_by": [{"key": "type"}]}}), "M_INVALID_PARAM"),
    (_search({"search_term": "x", "groupings": {"group_by": ["room_id"]}}), "M_BAD_JSON"),
    (_search({"search_term": "x", "event_context": {"before_limit": -1}}), "M_INVALID_PARAM"),
    (_search({"search_term": "x", "event_context": {"after_limit": "5"}}), "M_BAD_JSON"),
    (_search({"search_term": "x", "event_context": {"include_profile": 1}}), "M_BAD_JSON"),
    (_search({"search_term": "x", "include_state": "no"}), "M_BAD_JSON"),
])
def test_search_body_errors(body: dict[str, Any], errcode: str) -> None:
    from homeserver.api.models.search import SearchBody

    with pytest.raises(MatrixError) as e:
        parse_value(body, SearchBody)
    assert (e.value.status, e.value.errcode) == (400, errcode), e.value.msg


def test_search_body_defaults() -> None:
    from homeserver.api.models.search import SEARCH_KEYS, SearchBody
    from homeserver.handlers.search import criteria
    from storage.stores.search import ALL_KEYS

    assert ALL_KEYS == SEARCH_KEYS
    assert parse_value({"search_categories": {}}, SearchBody).search_categories.room_events is None
    body = parse_value(_search({"search_term": "x", "keys": ["content.name", "content.name"],
                                "event_context": {"before_limit": 50}, "filter": {"limit": 3},
                                "groupings": {"group_by": [{"key": "sender"}, {"key": "sender"}]}}), SearchBody)
    room_events = body.search_categories.room_events
    assert room_events is not None
    crit = criteria(room_events)
    assert crit.keys == ("content.name",) and crit.before_limit == 20 and crit.after_limit == 5 and crit.want_context
    assert crit.group_by == ("sender",) and crit.filter.limit == 3 and crit.order_by == "rank"


REGISTER_BAD: list[tuple[dict[str, Any], str]] = [
    ({"username": 5}, "M_INVALID_USERNAME"),
    ({"username": ["a"]}, "M_INVALID_USERNAME"),
    ({"username": {"a": 1}}, "M_INVALID_USERNAME"),
    ({"username": True}, "M_INVALID_USERNAME"),
    ({"password": 7}, "M_BAD_JSON"),
    ({"password": ["p"]}, "M_BAD_JSON"),
    ({"password": ""}, "M_WEAK_PASSWORD"),
    ({"password": "p" * 513}, "M_INVALID_PARAM"),
    ({"device_id": 3}, "M_BAD_JSON"),
    ({"device_id": ""}, "M_INVALID_PARAM"),
    ({"device_id": "D" * 256}, "M_INVALID_PARAM"),
    ({"device_id": "D\u0000"}, "M_INVALID_PARAM"),
    ({"initial_device_display_name": 5}, "M_BAD_JSON"),
    ({"initial_device_display_name": "n" * 257}, "M_INVALID_PARAM"),
    ({"initial_device_display_name": "n\u0000"}, "M_INVALID_PARAM"),
    ({"inhibit_login": "yes"}, "M_BAD_JSON"),
    ({"inhibit_login": 1}, "M_BAD_JSON"),
    ({"inhibit_login": None}, "M_BAD_JSON"),
    ({"refresh_token": 1}, "M_BAD_JSON"),
    ({"refresh_token": "true"}, "M_BAD_JSON"),
    ({"auth": "nope"}, "M_BAD_JSON"),
    ({"auth": ["m.login.dummy"]}, "M_BAD_JSON"),
    ({"auth": 5}, "M_BAD_JSON"),
    # of several problems, the first field's (in the order the model declares them) is reported
    ({"username": 5, "password": 7, "auth": "x"}, "M_INVALID_USERNAME"),
    ({"device_id": "", "username": 5}, "M_INVALID_PARAM"),
    ({"password": "", "auth": "x"}, "M_WEAK_PASSWORD"),
]


@pytest.mark.parametrize("body,errcode", REGISTER_BAD)
def test_register_body_refused(body: dict[str, Any], errcode: str) -> None:
    from homeserver.api.models.auth import RegisterBody

    assert_refused(RegisterBody, body, errcode)


def test_register_body_typed() -> None:
    from homeserver.api.models.auth import RegisterBody

    ok = parse_value({"username": "a", "password": "p", "auth": {"type": "m.login.dummy", "x": [1]}, "x": 1,
                      "device_id": "D", "initial_device_display_name": "phone", "inhibit_login": True,
                      "refresh_token": True}, RegisterBody)
    assert (ok.username, ok.password, ok.device_id, ok.initial_device_display_name) == ("a", "p", "D", "phone")
    assert ok.inhibit_login is True and ok.refresh_token is True
    assert ok.uia_body() == {"auth": {"type": "m.login.dummy", "x": [1]}}  # UIA's dict, kept as sent
    # a UIA retry may carry only ``auth``; the first call may carry no ``auth`` (UIA answers 401 with the flows)
    retry = parse_value({"auth": {"type": "m.login.dummy", "session": "s"}}, RegisterBody)
    assert (retry.username, retry.password, retry.device_id, retry.inhibit_login, retry.refresh_token) == (None, None, None, False, False)
    first = parse_value({"username": "a", "password": None}, RegisterBody)
    assert first.auth is None and first.uia_body() == {} and first.password is None
    # the username's grammar is the handler's (it needs the server name): any string passes the model
    assert parse_value({"username": "Not Valid"}, RegisterBody).username == "Not Valid"


ADMIN_USER_BAD = [
    ("SetAdminBody", {}, "M_MISSING_PARAM"),
    ("SetAdminBody", {"admin": "true"}, "M_BAD_JSON"),
    ("ResetPasswordBody", {}, "M_MISSING_PARAM"),
    ("ResetPasswordBody", {"new_password": ""}, "M_WEAK_PASSWORD"),
    ("ResetPasswordBody", {"new_password": "p", "logout_devices": "no"}, "M_BAD_JSON"),
    ("LoginAsBody", {"valid_until_ms": "1"}, "M_BAD_JSON"),
    ("LoginAsBody", {"valid_until_ms": True}, "M_BAD_JSON"),
    ("RatelimitOverrideBody", {"messages_per_second": -1}, "M_INVALID_PARAM"),
    ("RatelimitOverrideBody", {"burst_count": 1.5}, "M_BAD_JSON"),
    ("AdminDeviceBody", {"display_name": 5}, "M_BAD_JSON"),
    ("AdminDeviceBody", {"display_name": "n" * 101}, "M_TOO_LARGE"),
    ("AdminDeleteDevicesBody", {"devices": "D"}, "M_BAD_JSON"),
    ("AdminDeleteDevicesBody", {"devices": [1]}, "M_BAD_JSON"),
    ("AdminCreateDeviceBody", {}, "M_MISSING_PARAM"),
    ("AdminCreateDeviceBody", {"device_id": ""}, "M_INVALID_PARAM"),
    ("AdminCreateDeviceBody", {"device_id": "a\u0000"}, "M_INVALID_PARAM"),
    ("SuspendBody", {"suspend": 1}, "M_BAD_JSON"),
    ("ExperimentalFeaturesBody", {"features": []}, "M_BAD_JSON"),
    ("ExperimentalFeaturesBody", {"features": {"msc9999": True}}, "M_INVALID_PARAM"),
    ("ExperimentalFeaturesBody", {"features": {"msc3026": "on"}}, "M_BAD_JSON"),
]


def test_admin_bodies_keep_what_was_sent() -> None:
    from homeserver.api.models.admin import AdminDeviceBody, ExperimentalFeaturesBody, RatelimitOverrideBody

    assert parse_value({"display_name": None}, AdminDeviceBody).model_fields_set == {"display_name"}
    assert parse_value({}, AdminDeviceBody).model_fields_set == set()
    assert parse_value({}, RatelimitOverrideBody).messages_per_second == 0
    assert parse_value({"features": {"msc3881": False}}, ExperimentalFeaturesBody).features == {"msc3881": False}


ADMIN_ROOM_BAD = [
    ("RoomBlockBody", {}, "M_MISSING_PARAM"),
    ("RoomBlockBody", {"block": "yes"}, "M_BAD_JSON"),
    ("DeleteRoomBody", {"block": 1}, "M_BAD_JSON"),
    ("DeleteRoomBody", {"room_name": 5}, "M_BAD_JSON"),
    ("MakeRoomAdminBody", {"user_id": 5}, "M_BAD_JSON"),
    ("AdminJoinBody", {}, "M_MISSING_PARAM"),
    ("PurgeHistoryBody", {"delete_local_events": "yes"}, "M_BAD_JSON"),
    ("PurgeHistoryBody", {"purge_up_to_ts": "1"}, "M_BAD_JSON"),
    ("PurgeHistoryBody", {"purge_up_to_event_id": 5}, "M_BAD_JSON"),
    ("RedactUserBody", {"rooms": "x"}, "M_BAD_JSON"),
    ("RedactUserBody", {"limit": 0}, "M_INVALID_PARAM"),
    ("RedactUserBody", {"reason": 1}, "M_BAD_JSON"),
]


def test_delete_room_defaults() -> None:
    from homeserver.api.models.admin import DeleteRoomBody

    body = parse_value({}, DeleteRoomBody)
    assert (body.block, body.purge) == (False, True)
    assert body.options() == {"new_room_user_id": None, "room_name": None, "message": None}


ADMIN_SERVER_BAD = [
    ("ServerNoticeBody", {"content": {}}, "M_MISSING_PARAM"),
    ("ServerNoticeBody", {"user_id": "nobody", "content": {}}, "M_INVALID_PARAM"),
    ("ServerNoticeBody", {"user_id": "@a:x", "content": "hi"}, "M_BAD_JSON"),
    ("ServerNoticeBody", {"user_id": "@a:x", "content": {}, "type": ""}, "M_INVALID_PARAM"),
    ("ServerNoticeBody", {"user_id": "@a:x", "content": {}, "state_key": 1}, "M_BAD_JSON"),
    ("BackgroundUpdatesEnabledBody", {"enabled": "no"}, "M_BAD_JSON"),
    ("StartJobBody", {}, "M_MISSING_PARAM"),
    ("StartJobBody", {"job_name": 1}, "M_BAD_JSON"),
    ("RegistrationTokenBody", {"token": "bad token!"}, "M_INVALID_PARAM"),
    ("RegistrationTokenBody", {"length": 100}, "M_INVALID_PARAM"),
    ("RegistrationTokenBody", {"length": "5"}, "M_BAD_JSON"),
    ("RegistrationTokenBody", {"uses_allowed": -1}, "M_INVALID_PARAM"),
    ("RegistrationTokenBody", {"expiry_time": 1.5}, "M_BAD_JSON"),
]
# shared-secret registration: only the JSON types (and the nonce's presence) are the model's; the values are checked
# after the nonce is used up (tests/server/accounts/test_register_edge.py)
SHARED_SECRET_BAD = [
    ("SharedSecretRegisterBody", {}, "M_MISSING_PARAM"),
    ("SharedSecretRegisterBody", {"username": "a", "password": "p", "mac": "00"}, "M_MISSING_PARAM"),
    ("SharedSecretRegisterBody", {"nonce": None}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": 5}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": ["n"]}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": "n", "username": 1}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": "n", "password": 1}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": "n", "password": {"p": 1}}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": "n", "mac": []}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": "n", "mac": 0}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": "n", "admin": "no"}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": "n", "admin": 1}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": "n", "admin": None}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": "n", "user_type": 5}, "M_BAD_JSON"),
    ("SharedSecretRegisterBody", {"nonce": "n", "displayname": ["d"]}, "M_BAD_JSON"),
]


@pytest.mark.parametrize("model,body,errcode", ADMIN_USER_BAD + ADMIN_ROOM_BAD + ADMIN_SERVER_BAD + SHARED_SECRET_BAD)
def test_admin_bodies(model: str, body: dict[str, Any], errcode: str) -> None:
    from homeserver.api.models import admin

    assert_refused(getattr(admin, model), body, errcode)


def test_registration_token_body_fields_sent() -> None:
    from homeserver.api.models.admin import RegistrationTokenBody, ServerNoticeBody

    assert parse_value({"uses_allowed": None}, RegistrationTokenBody).model_fields_set == {"uses_allowed"}
    assert parse_value({}, RegistrationTokenBody).length == 16
    notice = parse_value({"user_id": "@a:x", "content": {"msgtype": "m.text", "body": "hi", "x": [1]}}, ServerNoticeBody)
    assert notice.type == "m.room.message" and notice.content["x"] == [1]


@pytest.mark.parametrize("module,model,body,errcode", [
    ("stories", "StoryPostBody", {}, "M_MISSING_PARAM"),
    ("stories", "StoryPostBody", {"content": {"msgtype": "m.file", "body": "x"}}, "M_INVALID_PARAM"),
    ("stories", "StoryPostBody", {"content": {"msgtype": "m.text", "body": 5}}, "M_BAD_JSON"),
    ("stories", "StoryPostBody", {"content": {"msgtype": "m.text", "body": "x" * 4001}}, "M_INVALID_PARAM"),
    ("stories", "StoryPostBody", {"content": {"msgtype": "m.image", "body": "x", "url": "https://evil"}}, "M_INVALID_PARAM"),
    ("stories", "StoryPostBody", {"content": {"msgtype": "m.image", "body": "x", "url": "mxc://a/b", "info": "x"}}, "M_BAD_JSON"),
    ("stories", "StoryPostBody", {"content": {"msgtype": "m.text", "body": "x"}, "audience": {"kind": "friends"}}, "M_INVALID_PARAM"),
    ("stories", "StoryPostBody", {"content": {"msgtype": "m.text", "body": "x"}, "audience": {"kind": "list"}}, "M_MISSING_PARAM"),
    ("stories", "StoryPostBody", {"content": {"msgtype": "m.text", "body": "x"}, "lifetime_ms": True}, "M_BAD_JSON"),
    ("stories", "StoryReactBody", {"key": ""}, "M_INVALID_PARAM"),
    ("stories", "StoryReactBody", {"key": 1}, "M_BAD_JSON"),
    ("stories", "StoryReplyBody", {"body": "a\u0000"}, "M_INVALID_PARAM"),
    ("stories", "StoryReplyBody", {}, "M_MISSING_PARAM"),
    ("contacts", "ContactBody", {"nickname": 5}, "M_BAD_JSON"),
    ("contacts", "ContactBody", {"nickname": "n" * 257}, "M_INVALID_PARAM"),
    ("contacts", "ContactBody", {"lists": "work"}, "M_BAD_JSON"),
    ("contacts", "ContactBody", {"lists": ["bad name"]}, "M_INVALID_PARAM"),
    ("contacts", "ContactBody", {"lists": ["l"] * 51}, "M_INVALID_PARAM"),
    ("contacts", "ContactPolicyBody", {"invites": "nobody"}, "M_INVALID_PARAM"),
    ("contacts", "ContactPolicyBody", {"direct_messages": None}, "M_BAD_JSON"),
])
def test_sup_extension_bodies(module: str, model: str, body: dict[str, Any], errcode: str) -> None:
    import importlib

    with pytest.raises(MatrixError) as e:
        parse_value(body, getattr(importlib.import_module(f"homeserver.api.models.{module}"), model))
    assert (e.value.status, e.value.errcode) == (400, errcode), e.value.msg


def test_sup_extension_bodies_keep_values() -> None:
    from homeserver.api.models.contacts import ContactBody, ContactPolicyBody
    from homeserver.api.models.stories import StoryPostBody

    post = parse_value({"content": {"msgtype": "m.image", "body": "b", "url": "mxc://a/b", "info": {"w": 1}, "x": 1}}, StoryPostBody)
    assert post.content.event_content() == {"msgtype": "m.image", "body": "b", "url": "mxc://a/b", "info": {"w": 1}}
    assert post.audience.kind == "contacts" and post.lifetime_ms is None
    text = parse_value({"content": {"msgtype": "m.text", "body": "b", "url": "mxc://a/b"}}, StoryPostBody)
    assert text.content.event_content() == {"msgtype": "m.text", "body": "b"}
    assert parse_value({"lists": ["a", "a", "b"]}, ContactBody).lists == ["a", "b"]
    assert parse_value({}, ContactBody).lists is None
    assert parse_value({"invites": "contacts"}, ContactPolicyBody).changes() == {"invites": "contacts"}


def test_sfu_token_request() -> None:
    from homeserver.api.models.rtc import SfuTokenRequest

    token = {"access_token": "a", "matrix_server_name": "x", "token_type": "Bearer", "expires_in": 3600}
    for body, errcode in (({}, "M_MISSING_PARAM"), ({"room": "!r:x"}, "M_MISSING_PARAM"),
                          ({"room": 5, "openid_token": token}, "M_BAD_JSON"), ({"room": "!r:x", "openid_token": "t"}, "M_BAD_JSON"),
                          ({"room": "", "openid_token": token}, "M_INVALID_PARAM"),
                          ({"room": "!r:x", "openid_token": token, "device_id": 7}, "M_BAD_JSON")):
        with pytest.raises(MatrixError) as e:
            parse_value(body, SfuTokenRequest)
        assert e.value.errcode == errcode, body
    ok = parse_value({"room": "!r:x", "openid_token": token, "device_id": "D"}, SfuTokenRequest)
    assert (ok.room, ok.openid_token.matrix_server_name, ok.device_id) == ("!r:x", "x", "D")


EMAIL = {"client_secret": "abc", "email": "a@b.c", "send_attempt": 1}
PHONE = {"client_secret": "abc", "country": "GB", "phone_number": "+44 7700 900123", "send_attempt": 1}


@pytest.mark.parametrize("model,body,errcode", [
    ("EmailTokenRequest", {"email": "a@b", "send_attempt": 1}, "M_MISSING_PARAM"),
    ("EmailTokenRequest", {**EMAIL, "client_secret": ""}, "M_MISSING_PARAM"),
    ("EmailTokenRequest", {**EMAIL, "client_secret": "bad secret!"}, "M_INVALID_PARAM"),
    ("EmailTokenRequest", {**EMAIL, "send_attempt": "1"}, "M_BAD_JSON"),
    ("EmailTokenRequest", {**EMAIL, "send_attempt": -1}, "M_INVALID_PARAM"),
    ("EmailTokenRequest", {**EMAIL, "email": "not-an-email"}, "M_INVALID_PARAM"),
    ("EmailTokenRequest", {**EMAIL, "next_link": "javascript:x"}, "M_INVALID_PARAM"),
    ("EmailTokenRequest", {**EMAIL, "id_server": "x" * 256}, "M_INVALID_PARAM"),
    ("MsisdnTokenRequest", {**PHONE, "country": "Great Britain"}, "M_INVALID_PARAM"),
    ("MsisdnTokenRequest", {**PHONE, "phone_number": "call me"}, "M_INVALID_PARAM"),
    ("ThreePidAddBody", {"client_secret": "abc"}, "M_MISSING_PARAM"),
    ("ThreePidAddBody", {"client_secret": "abc", "sid": "a b"}, "M_INVALID_PARAM"),
    ("ThreePidLegacyBody", {}, "M_MISSING_PARAM"),
    ("ThreePidLegacyBody", {"three_pid_creds": "x"}, "M_BAD_JSON"),
    ("ThreePidBindBody", {"client_secret": "abc", "sid": "1", "id_server": "i"}, "M_MISSING_PARAM"),
    ("ThreePidDeleteBody", {"medium": "fax", "address": "1"}, "M_INVALID_PARAM"),
    ("ThreePidDeleteBody", {"medium": "email"}, "M_MISSING_PARAM"),
])
def test_threepid_bodies(model: str, body: dict[str, Any], errcode: str) -> None:
    from homeserver.api.models import threepid

    with pytest.raises(MatrixError) as e:
        parse_value(body, getattr(threepid, model))
    assert (e.value.status, e.value.errcode) == (400, errcode), e.value.msg


def test_threepid_bodies_accept_what_clients_send() -> None:
    from homeserver.api.models.threepid import EmailTokenRequest, MsisdnTokenRequest, ThreePidAddBody, ThreePidLegacyBody

    assert parse_value({**EMAIL, "next_link": "https://app.example/done"}, EmailTokenRequest).send_attempt == 1
    assert parse_value(PHONE, MsisdnTokenRequest).country == "GB"
    assert parse_value({"client_secret": "a", "sid": "1", "auth": {"type": "m.login.password"}}, ThreePidAddBody).uia_body() == \
        {"auth": {"type": "m.login.password"}}
    assert parse_value({"threePidCreds": {"client_secret": "a", "sid": "1"}}, ThreePidLegacyBody).threePidCreds is not None


def test_uia_only_and_totp_bodies() -> None:
    from homeserver.api.models.auth import TotpConfirmBody, UiaBody

    assert parse_value({}, UiaBody).uia_body() == {}
    assert parse_value({"auth": {"type": "m.login.password", "password": "p"}}, UiaBody).uia_body()["auth"]["type"] == "m.login.password"
    for model, body, errcode in ((UiaBody, {"auth": "x"}, "M_BAD_JSON"), (TotpConfirmBody, {}, "M_MISSING_PARAM"),
                                 (TotpConfirmBody, {"code": ""}, "M_INVALID_PARAM"), (TotpConfirmBody, {"code": 123456}, "M_BAD_JSON")):
        with pytest.raises(MatrixError) as e:
            parse_value(body, model)
        assert e.value.errcode == errcode, body


def test_tag_and_dehydrated_events_bodies() -> None:
    from homeserver.api.models.account import TagBody
    from homeserver.api.models.keys import DehydratedEventsBody

    assert parse_value({"order": 0.25, "org.example": {"x": 1}}, TagBody).content() == {"order": 0.25, "org.example": {"x": 1}}
    assert parse_value({}, TagBody).content() == {} and parse_value({"order": 1}, TagBody).content() == {"order": 1}
    assert parse_value({"next_batch": "42"}, DehydratedEventsBody).next_batch == "42"
    for model, body, errcode in ((TagBody, {"order": "1"}, "M_BAD_JSON"), (TagBody, {"order": True}, "M_BAD_JSON"),
                                 (DehydratedEventsBody, {"next_batch": "\u00b3"}, "M_INVALID_PARAM"),
                                 (DehydratedEventsBody, {"next_batch": 5}, "M_BAD_JSON")):
        with pytest.raises(MatrixError) as e:
            parse_value(body, model)
        assert e.value.errcode == errcode, body


def test_user_flag_body() -> None:
    from homeserver.api.models.admin import UserFlagBody

    assert parse_value({"locked": True}, UserFlagBody, {"flag": "locked"}).value is True
    for body, errcode in (({}, "M_MISSING_PARAM"), ({"locked": None}, "M_MISSING_PARAM"), ({"locked": "yes"}, "M_BAD_JSON"),
                          ({"suspended": True}, "M_MISSING_PARAM")):
        with pytest.raises(MatrixError) as e:
            parse_value(body, UserFlagBody, {"flag": "locked"})
        assert e.value.errcode == errcode, body


def test_every_body_model_is_strict_and_frozen() -> None:
    """No coercion anywhere ("1" is never an integer, 1 never true) and no mutation after parsing: every model in
    homeserver/api/models keeps the Body configuration (a model may allow extra keys, never loosen types)."""
    import importlib
    import pkgutil

    from pydantic import BaseModel

    import homeserver.api.models as package

    seen = 0
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__:
                assert value.model_config.get("strict") is True, value
                assert value.model_config.get("frozen") is True, value
                seen += 1
    assert seen >= 60, seen


def test_shared_secret_register_body_types_only() -> None:
    from homeserver.api.models.admin import SharedSecretRegisterBody

    # presence and values (empty username, NUL, password length, a missing mac) are the handler's, after the nonce
    bare = parse_value({"nonce": "n"}, SharedSecretRegisterBody)
    assert (bare.username, bare.password, bare.mac, bare.admin, bare.user_type, bare.displayname) == (None,) * 3 + (False, None, None)
    empty = parse_value({"nonce": "", "username": "", "password": "", "mac": ""}, SharedSecretRegisterBody)
    assert (empty.nonce, empty.username, empty.password, empty.mac) == ("", "", "", "")
    full = parse_value({"nonce": "n", "username": "u", "password": "p", "mac": "AB", "admin": True, "user_type": "bot",
                        "displayname": "U", "x": 1}, SharedSecretRegisterBody)
    assert (full.username, full.password, full.mac, full.admin, full.user_type, full.displayname) == ("u", "p", "AB", True, "bot", "U")
