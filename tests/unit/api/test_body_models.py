"""Validation at the edge: request-body models map every malformed body to the spec's 400 errcode.

Table-driven over the models in homeserver/api/models (no server: ``parse_value`` is what
``parse_body`` runs on the request's JSON object).
"""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.api.models.account import ChangePasswordBody, DeactivateBody
from homeserver.api.models.auth import LoginBody, RefreshBody
from homeserver.api.models.devices import DeleteDevicesBody, UpdateDeviceBody
from homeserver.api.models.directory import AliasBody, PublicRoomsBody, UpgradeBody, VisibilityBody
from homeserver.api.models.ephemeral import PresenceBody, TypingBody
from homeserver.api.models.keys import BackupVersionBody, DehydratedDeviceBody, KeysClaimBody, KeysQueryBody, KeysUploadBody
from homeserver.api.models.push import PusherSetBody
from homeserver.api.models.reports import EventReportBody, ReportBody
from homeserver.api.models.read_markers import ReadMarkersBody, ReceiptBody, UserDirectorySearchBody
from homeserver.api.models.rooms import CreateRoomBody, InviteBody, MembershipBody, RedactBody, TargetedMembershipBody
from homeserver.api.models.to_device import SendToDeviceBody
from homeserver.http.models import parse_value
from tests.unit.api.helpers import assert_refused

HTTP = {"kind": "http", "app_id": "a", "pushkey": "k", "app_display_name": "A", "device_display_name": "D", "lang": "en",
        "data": {"url": "https://push.example/_matrix/push/v1/notify"}}

BAD = [
    # model, body, errcode
    (CreateRoomBody, {"name": 1}, "M_BAD_JSON"),
    (CreateRoomBody, {"topic": ["x"]}, "M_BAD_JSON"),
    (CreateRoomBody, {"invite": "@a:x"}, "M_BAD_JSON"),
    (CreateRoomBody, {"invite": [1]}, "M_BAD_JSON"),
    (CreateRoomBody, {"invite": ["not-a-user"]}, "M_INVALID_PARAM"),
    (CreateRoomBody, {"is_direct": "true"}, "M_BAD_JSON"),  # strict: no coercion of strings to booleans
    (CreateRoomBody, {"is_direct": 1}, "M_BAD_JSON"),
    (CreateRoomBody, {"visibility": "secret"}, "M_BAD_JSON"),
    (CreateRoomBody, {"preset": "party"}, "M_BAD_JSON"),
    (CreateRoomBody, {"room_version": "99"}, "M_UNSUPPORTED_ROOM_VERSION"),
    (CreateRoomBody, {"room_version": 11}, "M_UNSUPPORTED_ROOM_VERSION"),
    (CreateRoomBody, {"creation_content": []}, "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": {}}, "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": [{"type": "m.room.topic"}]}, "M_MISSING_PARAM"),
    (CreateRoomBody, {"initial_state": [{"type": 5, "content": {}}]}, "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": [{"type": "m.room.topic", "content": "x"}]}, "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": [{"type": "m.room.topic", "state_key": None, "content": {}}]}, "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": [{"type": "m.room.member", "state_key": "@a:x", "content": {"membership": "x"}}]},
     "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": [{"type": "m.room.member", "state_key": "nobody", "content": {"membership": "ban"}}]},
     "M_INVALID_ROOM_STATE"),
    (CreateRoomBody, {"power_level_content_override": "x"}, "M_BAD_JSON"),
    (CreateRoomBody, {"room_alias_name": "a:b"}, "M_INVALID_PARAM"),
    (CreateRoomBody, {"room_alias_name": ""}, "M_INVALID_PARAM"),
    (CreateRoomBody, {"room_alias_name": 7}, "M_BAD_JSON"),
    (CreateRoomBody, {"org.sup.channel": "yes"}, "M_BAD_JSON"),
    (MembershipBody, {"reason": 5}, "M_BAD_JSON"),
    (TargetedMembershipBody, {}, "M_MISSING_PARAM"),
    (TargetedMembershipBody, {"user_id": 5}, "M_BAD_JSON"),
    (TargetedMembershipBody, {"user_id": "@"}, "M_INVALID_PARAM"),
    (TargetedMembershipBody, {"user_id": "@a:x", "reason": {}}, "M_BAD_JSON"),
    (InviteBody, {"id_server": "id.example", "medium": "email", "address": "a@b"}, "M_UNRECOGNIZED"),
    (RedactBody, {"reason": False}, "M_BAD_JSON"),
    (PusherSetBody, {"app_id": "a", "pushkey": "k"}, "M_MISSING_PARAM"),  # kind is required (null deletes)
    (PusherSetBody, {**HTTP, "kind": 1}, "M_BAD_JSON"),
    (PusherSetBody, {**HTTP, "kind": "sms"}, "M_INVALID_PARAM"),
    (PusherSetBody, {**HTTP, "app_id": "a" * 65}, "M_INVALID_PARAM"),
    (PusherSetBody, {**HTTP, "pushkey": "é" * 300}, "M_INVALID_PARAM"),
    (PusherSetBody, {**HTTP, "lang": None}, "M_MISSING_PARAM"),
    (PusherSetBody, {**HTTP, "data": "x"}, "M_BAD_JSON"),
    (PusherSetBody, {**HTTP, "data": {}}, "M_MISSING_PARAM"),
    (PusherSetBody, {**HTTP, "data": {"url": "ftp://x/_matrix/push/v1/notify"}}, "M_INVALID_PARAM"),
    (PusherSetBody, {**HTTP, "append": "true"}, "M_BAD_JSON"),
    (PusherSetBody, {**HTTP, "kind": "email", "pushkey": "nomail"}, "M_INVALID_PARAM"),
    (SendToDeviceBody, {}, "M_MISSING_PARAM"),
    (SendToDeviceBody, {"messages": []}, "M_BAD_JSON"),
    (SendToDeviceBody, {"messages": {"notauser": {}}}, "M_INVALID_PARAM"),
    (SendToDeviceBody, {"messages": {"@a:x": {"D": "str"}}}, "M_BAD_JSON"),
    (SendToDeviceBody, {"messages": {"@a:x": {"": {}}}}, "M_INVALID_PARAM"),
    (KeysUploadBody, {"device_keys": "x"}, "M_BAD_JSON"),
    (KeysUploadBody, {"one_time_keys": []}, "M_BAD_JSON"),
    (KeysUploadBody, {"one_time_keys": {"signed_curve25519:A": 5}}, "M_BAD_JSON"),
    (KeysUploadBody, {"fallback_keys": "x"}, "M_BAD_JSON"),
    (RefreshBody, {}, "M_MISSING_PARAM"),
    (RefreshBody, {"refresh_token": 5}, "M_BAD_JSON"),
    (RefreshBody, {"refresh_token": ""}, "M_INVALID_PARAM"),
    (LoginBody, {}, "M_MISSING_PARAM"),
    (LoginBody, {"type": 1}, "M_BAD_JSON"),
    (LoginBody, {"type": "m.login.password", "password": 5}, "M_BAD_JSON"),
    (LoginBody, {"type": "m.login.password", "refresh_token": "yes"}, "M_BAD_JSON"),
    (LoginBody, {"type": "m.login.token", "token": ["x"]}, "M_BAD_JSON"),
    (LoginBody, {"type": "m.login.password", "device_id": ""}, "M_INVALID_PARAM"),
    (LoginBody, {"type": "m.login.password", "device_id": "a\u0000"}, "M_INVALID_PARAM"),
    (LoginBody, {"type": "m.login.password", "device_id": "D" * 256}, "M_INVALID_PARAM"),
    (LoginBody, {"type": "m.login.password", "initial_device_display_name": 7}, "M_BAD_JSON"),
    (LoginBody, {"type": "m.login.password", "initial_device_display_name": "n" * 257}, "M_INVALID_PARAM"),
    (TypingBody, {}, "M_MISSING_PARAM"),
    (TypingBody, {"typing": "true"}, "M_BAD_JSON"),
    (TypingBody, {"typing": True, "timeout": 1.5}, "M_BAD_JSON"),
    (TypingBody, {"typing": True, "timeout": True}, "M_BAD_JSON"),
    (PresenceBody, {}, "M_MISSING_PARAM"),
    (PresenceBody, {"presence": 1}, "M_BAD_JSON"),
    (PresenceBody, {"presence": "busy"}, "M_INVALID_PARAM"),
    (PresenceBody, {"presence": "online", "status_msg": 5}, "M_BAD_JSON"),
    (PresenceBody, {"presence": "online", "status_msg": "x" * 1025}, "M_INVALID_PARAM"),
    (ReadMarkersBody, {"m.fully_read": 5}, "M_BAD_JSON"),
    (ReadMarkersBody, {"m.read": "not-an-event"}, "M_INVALID_PARAM"),
    (ReadMarkersBody, {"m.read.private": ["$e"]}, "M_BAD_JSON"),
    (UserDirectorySearchBody, {}, "M_MISSING_PARAM"),
    (UserDirectorySearchBody, {"search_term": 5}, "M_BAD_JSON"),
    (UserDirectorySearchBody, {"search_term": "a\u0000"}, "M_INVALID_PARAM"),
    (UserDirectorySearchBody, {"search_term": "a", "limit": -1}, "M_INVALID_PARAM"),
    (UserDirectorySearchBody, {"search_term": "a", "limit": "5"}, "M_BAD_JSON"),
    (PublicRoomsBody, {"limit": -1}, "M_INVALID_PARAM"),
    (PublicRoomsBody, {"limit": "10"}, "M_BAD_JSON"),
    (PublicRoomsBody, {"since": 5}, "M_BAD_JSON"),
    (PublicRoomsBody, {"filter": []}, "M_BAD_JSON"),
    (PublicRoomsBody, {"filter": {"generic_search_term": 1}}, "M_BAD_JSON"),
    (PublicRoomsBody, {"filter": {"room_types": "m.space"}}, "M_BAD_JSON"),
    (UpgradeBody, {}, "M_MISSING_PARAM"),
    (UpgradeBody, {"new_version": 11}, "M_BAD_JSON"),
    (UpgradeBody, {"new_version": "99"}, "M_UNSUPPORTED_ROOM_VERSION"),
    (UpgradeBody, {"new_version": "11", "additional_creators": ["x"]}, "M_INVALID_PARAM"),
    (UpdateDeviceBody, {"display_name": 5}, "M_BAD_JSON"),
    (UpdateDeviceBody, {"display_name": "n" * 257}, "M_INVALID_PARAM"),
    (DeleteDevicesBody, {}, "M_MISSING_PARAM"),
    (DeleteDevicesBody, {"devices": "D"}, "M_BAD_JSON"),
    (DeleteDevicesBody, {"devices": [1]}, "M_BAD_JSON"),
    (DeleteDevicesBody, {"devices": ["a\u0000"]}, "M_INVALID_PARAM"),
    (EventReportBody, {"reason": 5}, "M_BAD_JSON"),
    (EventReportBody, {"score": -101}, "M_INVALID_PARAM"),
    (EventReportBody, {"score": 1}, "M_INVALID_PARAM"),
    (EventReportBody, {"score": "-5"}, "M_BAD_JSON"),
    (ReportBody, {}, "M_MISSING_PARAM"),
    (ReportBody, {"reason": None}, "M_BAD_JSON"),
    (ReceiptBody, {"thread_id": 1}, "M_BAD_JSON"),
    (AliasBody, {}, "M_MISSING_PARAM"),
    (AliasBody, {"room_id": 5}, "M_BAD_JSON"),
    (AliasBody, {"room_id": "not-a-room"}, "M_INVALID_PARAM"),
    (VisibilityBody, {"visibility": "secret"}, "M_INVALID_PARAM"),
    (VisibilityBody, {"visibility": True}, "M_BAD_JSON"),
    (ChangePasswordBody, {}, "M_MISSING_PARAM"),
    (ChangePasswordBody, {"new_password": 5}, "M_BAD_JSON"),
    (ChangePasswordBody, {"new_password": ""}, "M_WEAK_PASSWORD"),
    (ChangePasswordBody, {"new_password": "p" * 513}, "M_INVALID_PARAM"),
    (ChangePasswordBody, {"new_password": "p", "logout_devices": "no"}, "M_BAD_JSON"),
    (DeactivateBody, {"erase": "yes"}, "M_BAD_JSON"),
    (DeactivateBody, {"id_server": 5}, "M_BAD_JSON"),
    (BackupVersionBody, {"auth_data": {}}, "M_MISSING_PARAM"),
    (BackupVersionBody, {"algorithm": "a"}, "M_MISSING_PARAM"),
    (BackupVersionBody, {"algorithm": "a", "auth_data": "x"}, "M_BAD_JSON"),
    (BackupVersionBody, {"algorithm": 1, "auth_data": {}}, "M_BAD_JSON"),
    (KeysQueryBody, {}, "M_MISSING_PARAM"),
    (KeysQueryBody, {"device_keys": []}, "M_BAD_JSON"),
    (KeysQueryBody, {"device_keys": {"@a:x": "D"}}, "M_BAD_JSON"),
    (KeysQueryBody, {"device_keys": {"nobody": []}}, "M_INVALID_PARAM"),
    (KeysQueryBody, {"device_keys": {}, "timeout": "10"}, "M_BAD_JSON"),
    (KeysClaimBody, {"one_time_keys": {"@a:x": {"D": 1}}}, "M_BAD_JSON"),
    (KeysClaimBody, {"one_time_keys": {"@a:x": []}}, "M_BAD_JSON"),
    (KeysClaimBody, {"one_time_keys": {"a": {}}}, "M_INVALID_PARAM"),
    (DehydratedDeviceBody, {}, "M_MISSING_PARAM"),
    (DehydratedDeviceBody, {"device_data": "x"}, "M_BAD_JSON"),
    (DehydratedDeviceBody, {"device_data": {}, "device_id": ""}, "M_INVALID_PARAM"),
    (DehydratedDeviceBody, {"device_data": {}, "device_id": 5}, "M_BAD_JSON"),
    (DehydratedDeviceBody, {"device_data": {}, "initial_device_display_name": 5}, "M_BAD_JSON"),
    (DehydratedDeviceBody, {"device_data": {}, "one_time_keys": []}, "M_BAD_JSON"),
]


@pytest.mark.parametrize("model,body,errcode", BAD)
def test_malformed_body_gets_spec_errcode(model: Any, body: dict[str, Any], errcode: str) -> None:
    assert_refused(model, body, errcode)


def test_good_bodies_keep_their_values() -> None:
    body = parse_value({"preset": "trusted_private_chat", "invite": ["@b:x"], "is_direct": True, "name": "n",
                        "initial_state": [{"type": "m.room.topic", "content": {"topic": "t"}}], "extra": [1]},
                       CreateRoomBody)
    assert body.effective_preset == "trusted_private_chat" and body.invite == ["@b:x"] and body.is_direct
    assert body.initial_state[0].state_key == "" and body.initial_state[0].content == {"topic": "t"}
    assert parse_value({}, CreateRoomBody).effective_preset == "private_chat"
    assert parse_value({"visibility": "public"}, CreateRoomBody).effective_preset == "public_chat"
    assert parse_value({"org.sup.channel": True}, CreateRoomBody).is_channel
    assert parse_value({"user_id": "@b:x", "reason": "r"}, TargetedMembershipBody).reason == "r"
    assert parse_value({"kind": None, "app_id": "a", "pushkey": "k"}, PusherSetBody).kind is None
    assert parse_value(HTTP, PusherSetBody).data == HTTP["data"]
    assert parse_value({"messages": {"@a:x": {"*": {"k": 1}}}}, SendToDeviceBody).messages["@a:x"]["*"] == {"k": 1}
    up = parse_value({"one_time_keys": {"curve25519:A": "k"}, "org.matrix.msc2732.fallback_keys": {}}, KeysUploadBody)
    assert up.one_time_keys == {"curve25519:A": "k"} and up.unstable_fallback_keys == {} and up.device_keys is None
    assert parse_value({}, KeysUploadBody).model_fields_set == set()
    login = parse_value({"type": "m.login.password", "user": "a", "password": "p", "org.sup.totp_code": "123456"}, LoginBody)
    assert login.identifier_fields() == {"user": "a"} and login.totp_code == "123456" and login.refresh_token is False
    assert "status_msg" not in parse_value({"presence": "online"}, PresenceBody).model_fields_set
    assert parse_value({"typing": False}, TypingBody).timeout is None
    rm = parse_value({"m.fully_read": "$a", "m.read": "$b"}, ReadMarkersBody)
    assert (rm.fully_read, rm.read, rm.read_private) == ("$a", "$b", None)
    assert parse_value({"search_term": "x"}, UserDirectorySearchBody).limit == 10
    pr = parse_value({"filter": {"room_types": [None, "m.space"]}}, PublicRoomsBody)
    assert pr.filter is not None and pr.filter.room_types == [None, "m.space"] and pr.limit is None
    assert parse_value({"devices": ["A", "B", "A"], "auth": {}}, DeleteDevicesBody).devices == ["A", "B"]
    assert "display_name" not in parse_value({}, UpdateDeviceBody).model_fields_set
    assert parse_value({"display_name": None}, UpdateDeviceBody).model_fields_set == {"display_name"}
    assert parse_value({}, VisibilityBody).visibility == "public" and parse_value({}, ReceiptBody).thread_id is None
    assert parse_value({"device_data": {}}, DehydratedDeviceBody).keys() is None
    dk = parse_value({"device_data": {}, "one_time_keys": {"curve25519:A": "k"}}, DehydratedDeviceBody).keys()
    assert dk is not None and dk.one_time_keys == {"curve25519:A": "k"} and dk.device_keys is None
