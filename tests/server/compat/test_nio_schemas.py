"""Every matrix-nio call that maps to an endpoint SUP implements, validated against nio's own response schemas.

A recording ``nio.AsyncClient`` keeps the raw JSON body of every response. For each call the test asserts
(1) nio parsed it into its success class (not an ``ErrorResponse``), (2) the raw body validates against the
schema nio itself uses for that response class (``nio.schemas.Schemas`` via ``nio.schemas.validate_json``),
and (3) no event inside it parsed as ``BadEvent``/``UnknownBadEvent`` (nio's per-event schemas). At the end the
set of calls exercised must equal :data:`COVERED`; :data:`NOT_COVERED` says why each remaining public
``AsyncClient`` request method is not in it. Runs on SQLite and PostgreSQL (issue 14 item 2).
"""

from __future__ import annotations

import asyncio
import io
import inspect
from dataclasses import dataclass, field
from typing import Any

import nio
import pytest
from nio import responses as R
from nio.schemas import Schemas, validate_json

from tests.server.accounts.helpers import register, shared_secret_register

# The nio calls this test drives; each maps to a SUP endpoint.
COVERED = {
    "login_info", "login", "login_raw", "logout", "register", "register_interactive", "register_with_token", "discovery_info",
    "whoami", "sync", "devices", "update_device", "delete_devices", "keys_upload", "keys_query", "keys_claim",
    "to_device", "share_group_session", "request_room_key", "room_create", "join", "room_invite", "room_leave",
    "room_forget", "room_kick", "room_ban", "room_unban", "room_knock", "room_enable_knocking", "room_send",
    "room_get_event", "room_get_event_relations", "room_get_threads", "room_put_state", "room_get_state",
    "room_get_state_event", "room_redact", "room_resolve_alias", "room_put_alias", "room_delete_alias",
    "room_get_visibility", "room_update_aliases", "update_room_topic", "room_upgrade", "room_context",
    "room_messages", "room_typing", "update_receipt_marker", "room_read_markers", "joined_members", "joined_rooms",
    "list_direct_rooms", "space_get_hierarchy", "content_repository_config", "upload", "download", "thumbnail",
    "get_profile", "get_displayname", "set_displayname", "get_avatar", "set_avatar", "get_presence", "set_presence",
    "get_openid_token", "upload_filter", "list_public_rooms", "set_pushrule", "delete_pushrule", "enable_pushrule",
    "set_pushrule_actions",
}
NOT_COVERED = {
    # no request of their own, or purely local
    "send": "the raw transport every call goes through", "receive_response": "local state update",
    "run_response_callbacks": "local", "create_matrix_response": "local parsing", "parse_body": "local parsing",
    "get_timeout_retry_wait_time": "local", "mxc_to_http": "local URL building", "close": "closes the HTTP session",
    "export_keys": "local key file", "import_keys": "local key file", "has_event_permission": "local power-level check",
    "has_permission": "local power-level check", "sync_forever": "a loop over sync (covered)",
    "send_to_device_messages": "sends queued to_device messages (PUT /sendToDevice, covered by to_device)",
    # interactive verification wrappers: each is PUT /sendToDevice with the same response schema as to_device, and
    # needs a second, interactive verification state machine; the endpoint and schema are covered by to_device
    "start_key_verification": "PUT /sendToDevice (as to_device)", "cancel_key_verification": "PUT /sendToDevice (as to_device)",
    "accept_key_verification": "PUT /sendToDevice (as to_device)", "confirm_short_auth_string": "PUT /sendToDevice (as to_device)",
    "provider": "helper generator of upload data, not a request",
}

# Response base classes that validate in their own from_dict rather than through nio's @verify decorator.
_DIRECT = {
    "RoomEventIdResponse": Schemas.room_event_id, "RoomGetStateResponse": Schemas.room_state,
    "EmptyResponse": Schemas.empty, "_EmptyResponseWithRoomId": Schemas.empty, "RoomIdResponse": Schemas.room_id,
}


def nio_schema_for(cls: type) -> dict[str, Any] | None:
    """The JSON schema nio validates ``cls``'s responses with (from its @verify wrapper or its base class)."""
    for klass in cls.__mro__:
        cm = vars(klass).get("from_dict")
        fn = getattr(cm, "__func__", None)
        if fn is not None and fn.__closure__ and "schema" in fn.__code__.co_freevars:
            return fn.__closure__[fn.__code__.co_freevars.index("schema")].cell_contents
        if klass.__name__ in _DIRECT:
            return _DIRECT[klass.__name__]
    return None


@dataclass
class Captured:
    response_class: type
    method: str
    path: str
    status: int
    body: Any = None


@dataclass
class Recorder:
    covered: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


class RecordingClient(nio.AsyncClient):
    """An AsyncClient that keeps each raw response (class, method, path, status, parsed JSON body)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.captured: list[Captured] = []
        self._pending: Captured | None = None

    async def create_matrix_response(self, response_class: type, transport_response: Any, data: Any = None,
                                     save_to: Any = None) -> Any:
        self._pending = Captured(response_class, transport_response.method, transport_response.url.path,
                                 transport_response.status)
        self.captured.append(self._pending)
        try:
            return await super().create_matrix_response(response_class, transport_response, data, save_to)
        finally:
            self._pending = None

    async def parse_body(self, transport_response: Any) -> dict[Any, Any]:
        body = await super().parse_body(transport_response)
        if self._pending is not None:
            self._pending.body = body
        return body


def _bad_events(obj: Any, depth: int = 0) -> list[Any]:
    """BadEvent / UnknownBadEvent instances anywhere inside a parsed nio response."""
    if depth > 8:
        return []
    if isinstance(obj, (nio.BadEvent, nio.UnknownBadEvent)):
        return [obj]
    out: list[Any] = []
    if isinstance(obj, dict):
        for v in obj.values():
            out += _bad_events(v, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out += _bad_events(v, depth + 1)
    elif hasattr(obj, "__dataclass_fields__"):
        for name in obj.__dataclass_fields__:
            out += _bad_events(getattr(obj, name, None), depth + 1)
    return out


async def call(rec: Recorder, client: RecordingClient, name: str, coro: Any, ok: type | tuple[type, ...]) -> Any:
    """Await one nio call and check its raw responses against nio's schemas; returns the parsed response."""
    start = len(client.captured)
    resp = await coro
    rec.covered.add(name)
    if not isinstance(resp, ok) or isinstance(resp, R.ErrorResponse):
        rec.failures.append(f"{name}: nio parsed {type(resp).__name__}: {resp}")
        return resp
    caps = client.captured[start:]
    for i, cap in enumerate(caps):
        # nio may parse a response into a subclass of the requested one (a 401 /delete_devices is a
        # DeleteDevicesAuthResponse): the last response is checked with the schema of what nio returned
        last = i == len(caps) - 1 and (issubclass(type(resp), cap.response_class) or cap.status == 401)
        schema = nio_schema_for(type(resp) if last else cap.response_class)
        if cap.body is None or schema is None:
            continue
        try:
            validate_json(cap.body, schema)
        except Exception as e:  # jsonschema.ValidationError
            rec.failures.append(f"{name}: {cap.method} {cap.path} -> {cap.status} fails {cap.response_class.__name__} schema: "
                                f"{getattr(e, 'message', e)}")
    bad = _bad_events(resp)
    if bad:
        rec.failures.append(f"{name}: events nio could not parse: {[getattr(b, 'source', b) for b in bad][:3]}")
    return resp


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


async def _user(server: Any, tmp_path: Any, name: str, e2e: bool = False) -> RecordingClient:
    reg = register(server, name)
    kwargs: dict[str, Any] = {}
    if e2e:
        store = tmp_path / f"store-{name}"
        store.mkdir()
        kwargs = {"store_path": str(store), "config": nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False)}
    client = RecordingClient(server.url, reg["user_id"], device_id=reg["device_id"], **kwargs)
    client.restore_login(reg["user_id"], reg["device_id"], reg["access_token"])
    return client


async def _accounts(rec: Recorder, server: Any, token_server: Any, admin_token: str) -> None:
    """Registration, login, logout, whoami, devices (the /devices null-field bug), discovery."""
    anon = RecordingClient(server.url)
    try:
        await call(rec, anon, "discovery_info", anon.discovery_info(), R.DiscoveryInfoResponse)
        await call(rec, anon, "login_info", anon.login_info(), R.LoginInfoResponse)
        reg = RecordingClient(server.url, device_id="NIOREG")
        await call(rec, reg, "register_interactive",
                   reg.register_interactive("nioflows", "nio-password-123", {"initial_device_display_name": "x"}),
                   R.RegisterInteractiveResponse)
        await call(rec, reg, "register", reg.register("nioreg", "nio-password-123", device_name="nio"), R.RegisterResponse)
        await reg.close()
        # a registration token (admin API) on a server that requires one, for register_with_token
        r = token_server.post("/_synapse/admin/v1/registration_tokens/new", token=admin_token, json={"token": "niotok", "uses_allowed": 1})
        assert r.status_code == 200, r.text
        tok = RecordingClient(token_server.url)
        await call(rec, tok, "register_with_token", tok.register_with_token("niotoken", "nio-password-123", "niotok"),
                   R.RegisterResponse)
        await tok.close()

        c = RecordingClient(server.url, "@nioreg:" + server.server_name)
        await call(rec, c, "login", c.login("nio-password-123", device_name="laptop"), R.LoginResponse)
        await call(rec, c, "whoami", c.whoami(), R.WhoamiResponse)
        # a login without a device name: the device nio's devices() choked on (display_name missing)
        raw = RecordingClient(server.url, "@nioreg:" + server.server_name)
        await call(rec, raw, "login_raw", raw.login_raw({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "nioreg"},
                                                         "password": "nio-password-123"}), R.LoginResponse)
        devs = await call(rec, c, "devices", c.devices(), R.DevicesResponse)
        assert isinstance(devs, R.DevicesResponse), rec.failures
        assert {d.id for d in devs.devices} >= {"NIOREG", c.device_id, raw.device_id}
        assert any(d.display_name is None for d in devs.devices)
        await call(rec, c, "update_device", c.update_device("NIOREG", {"display_name": "renamed"}), R.UpdateDeviceResponse)
        first = await call(rec, c, "delete_devices", c.delete_devices(["NIOREG"]), R.DeleteDevicesAuthResponse)
        auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": c.user_id},
                "password": "nio-password-123", "session": first.session}
        await call(rec, c, "delete_devices", c.delete_devices(["NIOREG"], auth=auth), R.DeleteDevicesResponse)
        await call(rec, raw, "logout", raw.logout(), R.LogoutResponse)
        await raw.close()
        await c.close()
    finally:
        await anon.close()


async def _sync_until(rec: Recorder, client: RecordingClient, pred: Any, rounds: int = 20) -> Any:
    for _ in range(rounds):
        resp = await call(rec, client, "sync", client.sync(timeout=300, full_state=False), R.SyncResponse)
        if client.olm is not None:
            if client.should_upload_keys:
                await call(rec, client, "keys_upload", client.keys_upload(), R.KeysUploadResponse)
            if client.should_query_keys:
                await call(rec, client, "keys_query", client.keys_query(), R.KeysQueryResponse)
            if client.should_claim_keys:
                await call(rec, client, "keys_claim", client.keys_claim(client.get_users_for_key_claiming()), R.KeysClaimResponse)
        if isinstance(resp, R.SyncResponse) and pred(resp):
            return resp
    raise AssertionError("condition not reached by sync")


async def _rooms(rec: Recorder, server: Any, tmp_path: Any) -> None:
    a = await _user(server, tmp_path, "nioa", e2e=True)
    b = await _user(server, tmp_path, "niob", e2e=True)
    c = await _user(server, tmp_path, "nioc", e2e=True)
    try:
        for cl in (a, b, c):
            await _sync_until(rec, cl, lambda r: True)
        hs = server.server_name
        created = await call(rec, a, "room_create", a.room_create(name="nio schemas", topic="t", alias="nioschemas",
                                                                  visibility=nio.RoomVisibility.public), R.RoomCreateResponse)
        room = created.room_id
        await call(rec, b, "join", b.join(room), R.JoinResponse)
        await _sync_until(rec, a, lambda r: room in a.rooms)  # nio's encrypting client sends only to rooms it has synced
        ev1 = (await call(rec, a, "room_send", a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "one"}),
                          R.RoomSendResponse)).event_id
        for i in range(4):
            await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": f"n{i}"})
        await call(rec, a, "room_get_event", a.room_get_event(room, ev1), R.RoomGetEventResponse)
        await call(rec, a, "room_send", a.room_send(room, "m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": ev1, "key": "👍"}}),
                   R.RoomSendResponse)
        await call(rec, a, "room_send", a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "in thread",
                                                                             "m.relates_to": {"rel_type": "m.thread", "event_id": ev1}}),
                   R.RoomSendResponse)
        rel = a.room_get_event_relations(room, ev1)
        got = [x async for x in rel]
        rec.covered.add("room_get_event_relations")
        assert len(got) == 2, got
        last = a.captured[-1]
        _validate(rec, "room_get_event_relations", last)
        threads = [x async for x in a.room_get_threads(room)]
        rec.covered.add("room_get_threads")
        assert [t.event_id for t in threads] == [ev1], threads
        _validate(rec, "room_get_threads", a.captured[-1])
        await call(rec, a, "room_put_state", a.room_put_state(room, "m.room.name", {"name": "renamed"}), R.RoomPutStateResponse)
        await call(rec, a, "room_get_state", a.room_get_state(room), R.RoomGetStateResponse)
        await call(rec, a, "room_get_state_event", a.room_get_state_event(room, "m.room.name"), R.RoomGetStateEventResponse)
        await call(rec, a, "update_room_topic", a.update_room_topic(room, "new topic"), R.RoomPutStateResponse)
        await call(rec, a, "room_put_alias", a.room_put_alias(f"#nioalt:{hs}", room), R.RoomPutAliasResponse)
        await call(rec, a, "room_resolve_alias", a.room_resolve_alias(f"#nioalt:{hs}"), R.RoomResolveAliasResponse)
        await call(rec, a, "room_update_aliases", a.room_update_aliases(room, canonical_alias=f"#nioschemas:{hs}",
                                                                          alt_aliases=[f"#nioalt:{hs}"]), R.RoomUpdateAliasResponse)
        await call(rec, a, "room_get_visibility", a.room_get_visibility(room), R.RoomGetVisibilityResponse)
        await call(rec, a, "list_public_rooms", a.list_public_rooms(), R.PublicRoomsResponse)
        await call(rec, a, "room_context", a.room_context(room, ev1, limit=4), R.RoomContextResponse)
        msgs = await call(rec, a, "room_messages", a.room_messages(room, limit=3), R.RoomMessagesResponse)
        await call(rec, a, "room_messages", a.room_messages(room, start=msgs.end, limit=3, direction=nio.MessageDirection.front),
                   R.RoomMessagesResponse)
        await call(rec, a, "room_typing", a.room_typing(room, True, 2000), R.RoomTypingResponse)
        await call(rec, b, "update_receipt_marker", b.update_receipt_marker(room, ev1), R.UpdateReceiptMarkerResponse)
        await call(rec, b, "room_read_markers", b.room_read_markers(room, ev1, ev1), R.RoomReadMarkersResponse)
        await call(rec, a, "joined_members", a.joined_members(room), R.JoinedMembersResponse)
        await call(rec, a, "joined_rooms", a.joined_rooms(), R.JoinedRoomsResponse)
        await call(rec, a, "room_redact", a.room_redact(room, ev1, reason="gone"), R.RoomRedactResponse)

        # m.direct (account data), then the list
        r = server.put(f"/_matrix/client/v3/user/{a.user_id}/account_data/m.direct", token=a.access_token,
                       json={b.user_id: [room]})  # nio has no call that writes m.direct
        assert r.status_code == 200, r.text
        await call(rec, a, "list_direct_rooms", a.list_direct_rooms(), R.DirectRoomsResponse)

        # membership: invite, kick, ban, unban, leave, forget, knock
        await call(rec, a, "room_invite", a.room_invite(room, c.user_id), R.RoomInviteResponse)
        await call(rec, a, "room_kick", a.room_kick(room, c.user_id, reason="r"), R.RoomKickResponse)
        await call(rec, a, "room_ban", a.room_ban(room, c.user_id, reason="r"), R.RoomBanResponse)
        await call(rec, a, "room_unban", a.room_unban(room, c.user_id), R.RoomUnbanResponse)
        knock_room = (await a.room_create(name="knock")).room_id
        await call(rec, a, "room_enable_knocking", a.room_enable_knocking(knock_room), R.RoomPutStateResponse)
        await call(rec, c, "room_knock", c.room_knock(knock_room, reason="let me in"), R.RoomKnockResponse)
        await call(rec, b, "room_leave", b.room_leave(room), R.RoomLeaveResponse)
        await call(rec, b, "room_forget", b.room_forget(room), R.RoomForgetResponse)

        # a space with a child, for the hierarchy
        space = (await a.room_create(name="space", space=True)).room_id
        await a.room_put_state(space, "m.space.child", {"via": [hs]}, state_key=room)
        await call(rec, a, "space_get_hierarchy", a.space_get_hierarchy(space), R.SpaceGetHierarchyResponse)

        # end-to-end: an encrypted room, a shared group session, a to-device message and a key request
        enc = (await a.room_create(invite=[b.user_id], initial_state=[
            {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])).room_id
        await _sync_until(rec, b, lambda r: enc in r.rooms.invite)
        await b.join(enc)
        await _sync_until(rec, a, lambda r: b.user_id in (a.rooms[enc].users if enc in a.rooms else {}))
        await call(rec, a, "keys_query", a.keys_query(), (R.KeysQueryResponse,)) if a.should_query_keys else None
        for dev in a.device_store.active_user_devices(b.user_id):
            a.verify_device(dev)
        await call(rec, a, "keys_claim", a.keys_claim({b.user_id: [b.device_id]}), R.KeysClaimResponse)
        await call(rec, a, "share_group_session", a.share_group_session(enc, ignore_unverified_devices=True),
                   R.ShareGroupSessionResponse)
        await a.room_send(enc, "m.room.message", {"msgtype": "m.text", "body": "secret"}, ignore_unverified_devices=True)
        msg = nio.ToDeviceMessage("org.sup.test", b.user_id, b.device_id, {"hello": "nio"})
        await call(rec, a, "to_device", a.to_device(msg), R.ToDeviceResponse)
        # carol joins after the session was shared: she cannot decrypt, and asks for the key
        await a.room_invite(enc, c.user_id)
        await _sync_until(rec, c, lambda r: enc in r.rooms.invite)
        await c.join(enc)
        hist = await c.room_messages(enc, limit=20)
        megolm = [e for e in getattr(hist, "chunk", []) if isinstance(e, nio.MegolmEvent)]
        assert megolm, hist
        await call(rec, c, "request_room_key", c.request_room_key(megolm[0]), R.RoomKeyRequestResponse)

        # every sync section nio parses, after all of the above: left/forgotten, knocked, invited rooms,
        # redacted and encrypted events, to-device messages
        for cl in (a, b, c):
            await _sync_until(rec, cl, lambda r: True)
        full = await call(rec, b, "sync", b.sync(timeout=0, full_state=True, since=None), R.SyncResponse)
        assert full.next_batch

        # upgrade (last: it tombstones the room)
        await call(rec, a, "room_upgrade", a.room_upgrade(room, "11"), R.RoomUpgradeResponse)
        await call(rec, a, "room_delete_alias", a.room_delete_alias(f"#nioalt:{hs}"), R.RoomDeleteAliasResponse)
    finally:
        for cl in (a, b, c):
            await cl.close()


def _validate(rec: Recorder, name: str, cap: Captured) -> None:
    schema = nio_schema_for(cap.response_class)
    if schema is None or cap.body is None:
        return
    try:
        validate_json(cap.body, schema)
    except Exception as e:
        rec.failures.append(f"{name}: {cap.method} {cap.path} fails {cap.response_class.__name__} schema: {getattr(e, 'message', e)}")


async def _profile_media_push(rec: Recorder, server: Any, tmp_path: Any) -> None:
    c = await _user(server, tmp_path, "niop")
    try:
        await call(rec, c, "set_displayname", c.set_displayname("Nio P"), R.ProfileSetDisplayNameResponse)
        await call(rec, c, "get_displayname", c.get_displayname(), R.ProfileGetDisplayNameResponse)
        await call(rec, c, "content_repository_config", c.content_repository_config(), R.ContentRepositoryConfigResponse)
        png = _png()
        up, _ = await c.upload(io.BytesIO(png), content_type="image/png", filename="p.png", filesize=len(png))
        rec.covered.add("upload")
        assert isinstance(up, R.UploadResponse), up
        _validate(rec, "upload", c.captured[-1])
        await call(rec, c, "set_avatar", c.set_avatar(up.content_uri), R.ProfileSetAvatarResponse)
        await call(rec, c, "get_avatar", c.get_avatar(), R.ProfileGetAvatarResponse)
        await call(rec, c, "get_profile", c.get_profile(), R.ProfileGetResponse)
        dl = await call(rec, c, "download", c.download(up.content_uri), R.DownloadResponse)
        assert dl.body == png
        await call(rec, c, "thumbnail", c.thumbnail(server.server_name, up.content_uri.rsplit("/", 1)[1], 32, 32),
                   R.ThumbnailResponse)
        await call(rec, c, "set_presence", c.set_presence("online", "here"), R.PresenceSetResponse)
        await call(rec, c, "get_presence", c.get_presence(c.user_id), R.PresenceGetResponse)
        await call(rec, c, "get_openid_token", c.get_openid_token(c.user_id), R.GetOpenIDTokenResponse)
        await call(rec, c, "upload_filter", c.upload_filter(room={"timeline": {"limit": 5}}), R.UploadFilterResponse)
        kind = nio.PushRuleKind.content
        await call(rec, c, "set_pushrule", c.set_pushrule("global", kind, "niorule", actions=[nio.PushNotify()], pattern="cake"),
                   R.SetPushRuleResponse)
        await call(rec, c, "enable_pushrule", c.enable_pushrule("global", kind, "niorule", False), R.EnablePushRuleResponse)
        await call(rec, c, "set_pushrule_actions", c.set_pushrule_actions("global", kind, "niorule", [nio.PushDontNotify()]),
                   R.SetPushRuleActionsResponse)
        await call(rec, c, "delete_pushrule", c.delete_pushrule("global", kind, "niorule"), R.DeletePushRuleResponse)
    finally:
        await c.close()


def test_nio_calls_validate_against_nio_schemas(make_server: Any, tmp_path: Any) -> None:
    server = make_server()
    token_server = make_server({"registration.require_token": True})
    admin = shared_secret_register(token_server, "nioadmin", admin=True)
    assert admin.status_code == 200, admin.text
    rec = Recorder()

    async def scenario() -> None:
        await _accounts(rec, server, token_server, admin.json()["access_token"])
        await _rooms(rec, server, tmp_path)
        await _profile_media_push(rec, server, tmp_path)

    asyncio.run(asyncio.wait_for(scenario(), 240))
    assert not rec.failures, "\n".join(rec.failures)
    assert rec.covered == COVERED, (COVERED - rec.covered, rec.covered - COVERED)


def test_covered_list_accounts_for_every_nio_request() -> None:
    """Every public coroutine of nio.AsyncClient is either driven above or has a stated reason not to be."""
    public = {n for n, f in inspect.getmembers(nio.AsyncClient, inspect.iscoroutinefunction) if not n.startswith("_")}
    public |= {n for n, f in inspect.getmembers(nio.AsyncClient, inspect.isasyncgenfunction) if not n.startswith("_")}
    unaccounted = public - COVERED - set(NOT_COVERED)
    assert not unaccounted, f"new nio calls to cover or explain: {sorted(unaccounted)}"
    assert not (COVERED & set(NOT_COVERED))


@pytest.mark.parametrize("cls", [R.DevicesResponse])
def test_schema_lookup_finds_nio_schema(cls: type) -> None:
    assert nio_schema_for(cls) is Schemas.devices
    assert nio_schema_for(R.RoomSendResponse) is Schemas.room_event_id
    assert R is not None
