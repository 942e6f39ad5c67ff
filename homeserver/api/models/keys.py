"""End-to-end key bodies: ``/keys/upload``, ``/keys/query``, ``/keys/claim``, ``/keys/device_signing/upload``,
``/keys/signatures/upload``, key backup versions and keys, dehydrated devices. The shapes only: key ids, algorithms
and signatures are checked by ``homeserver/handlers/{e2e_keys,cross_signing,key_backup}.py`` (they need the uploading
user, its devices and stored keys). Signed objects stay plain dicts, exactly as sent (their signatures cover every key)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, RootModel, field_validator

from homeserver.api.models import Body, matrix_error
from homeserver.types.ids import InvalidId, UserID

KeyMap = dict[str, str | dict[str, Any]]


class KeysUploadBody(Body):
    device_keys: dict[str, Any] | None = None
    one_time_keys: KeyMap | None = None
    fallback_keys: KeyMap | None = None
    unstable_fallback_keys: KeyMap | None = Field(None, alias="org.matrix.msc2732.fallback_keys")


class BackupVersionBody(Body):
    """``POST /room_keys/version`` and ``PUT /room_keys/version/{version}``. The algorithm's format is checked by the
    handler (``check_algorithm``), which also compares it with the stored version on update."""

    algorithm: str
    auth_data: dict[str, Any]
    version: str | None = None


def _user_ids(v: dict[str, Any]) -> dict[str, Any]:
    for user_id in v:
        try:
            UserID.parse(user_id)
        except InvalidId:
            raise matrix_error("M_INVALID_PARAM", f"Invalid user id {user_id[:64]!r}") from None
    return v


class KeysQueryBody(Body):
    """``POST /keys/query``: user id → device ids (empty: all of them)."""

    device_keys: dict[str, list[str]]
    timeout: int = 10_000

    _users = field_validator("device_keys")(_user_ids)


class KeysClaimBody(Body):
    """``POST /keys/claim``: user id → device id → algorithm (its format is checked by the handler)."""

    one_time_keys: dict[str, dict[str, str]]
    timeout: int = 10_000

    _users = field_validator("one_time_keys")(_user_ids)


class DehydratedDeviceBody(Body):
    """``PUT /dehydrated_device`` (MSC3814): the device's data and, optionally, its keys."""

    device_data: dict[str, Any]
    device_id: str | None = None
    initial_device_display_name: str | None = None
    device_keys: dict[str, Any] | None = None
    one_time_keys: KeyMap | None = None
    fallback_keys: KeyMap | None = None

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, v: str | None) -> str | None:
        if v is not None and (not v or len(v) > 255 or "\x00" in v):
            raise matrix_error("M_INVALID_PARAM", "'device_id' must be a non-empty string of at most 255 characters")
        return v

    def keys(self) -> KeysUploadBody | None:
        """The keys to upload for the dehydrated device, if any were sent."""
        if self.device_keys is None and self.one_time_keys is None and self.fallback_keys is None:
            return None
        return KeysUploadBody(device_keys=self.device_keys, one_time_keys=self.one_time_keys, fallback_keys=self.fallback_keys)


def _signed_key(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """A cross-signing key's JSON types (``user_id``, ``usage``, ``keys``, ``signatures``); kept exactly as sent."""
    if v is None:
        return None
    for name in ("user_id", "usage", "keys"):
        if name not in v:
            raise matrix_error("M_MISSING_PARAM", f"A cross-signing key needs {name!r}")
    if not isinstance(v["user_id"], str):
        raise matrix_error("M_BAD_JSON", "'user_id' must be a string")
    if not isinstance(v["usage"], list) or not all(isinstance(u, str) for u in v["usage"]):
        raise matrix_error("M_BAD_JSON", "'usage' must be an array of strings")
    if not isinstance(v["keys"], dict) or not all(isinstance(k, str) for k in v["keys"].values()):
        raise matrix_error("M_BAD_JSON", "'keys' must map key ids to strings")
    sigs = v.get("signatures")
    if sigs is not None and not (isinstance(sigs, dict) and all(isinstance(x, dict) for x in sigs.values())):
        raise matrix_error("M_BAD_JSON", "'signatures' must map user ids to objects")
    return v


class DeviceSigningUploadBody(Body):
    """``POST /keys/device_signing/upload``: any of the three cross-signing keys, and UIA's ``auth`` (needed only
    to replace existing keys)."""

    master_key: dict[str, Any] | None = None
    self_signing_key: dict[str, Any] | None = None
    user_signing_key: dict[str, Any] | None = None
    auth: dict[str, Any] | None = None

    _keys = field_validator("master_key", "self_signing_key", "user_signing_key")(_signed_key)

    def uia_body(self) -> dict[str, Any]:
        """What user-interactive auth reads: the ``auth`` object, as sent."""
        return {} if self.auth is None else {"auth": self.auth}


class SignaturesUploadBody(RootModel[dict[str, dict[str, Any]]]):
    """``POST /keys/signatures/upload``: user id → key id → signed object. A signed object that is not an object is
    a per-key failure in the answer (the spec's ``failures``), not a refusal of the whole request."""

    model_config = ConfigDict(strict=True, frozen=True)

    _users = field_validator("root")(_user_ids)


class KeyBackupData(Body):
    """One backed-up session key (``KeyBackupData``)."""

    first_message_index: Annotated[int, Field(ge=0, le=2**53)]
    forwarded_count: Annotated[int, Field(ge=0, le=2**53)]
    is_verified: bool
    session_data: dict[str, Any]


class RoomKeyBackup(Body):
    sessions: dict[str, KeyBackupData]


class KeyBackupKeysBody(Body):
    """``PUT /room_keys/keys``: room id → its sessions."""

    rooms: dict[str, RoomKeyBackup]


def backup_keys_body(room_id: str | None, session_id: str | None) -> type[Body]:
    """The body model of ``PUT /room_keys/keys[/{roomId}[/{sessionId}]]``: the path says how much the body holds."""
    if room_id is not None and session_id is not None:
        return KeyBackupData
    return RoomKeyBackup if room_id is not None else KeyBackupKeysBody


class DehydratedEventsBody(Body):
    """``POST /dehydrated_device/{deviceId}/events``: where the previous batch ended (a decimal position)."""

    next_batch: str | None = None

    @field_validator("next_batch")
    @classmethod
    def _token(cls, v: str | None) -> str | None:
        if v is not None and not (v.isascii() and v.isdigit() and len(v) <= 19):
            raise matrix_error("M_INVALID_PARAM", "Invalid 'next_batch'")
        return v
