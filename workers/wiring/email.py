"""Email area (docs/push.md "Email"): SMTP mailer, templates, email 3PIDs, email notifications.

Runs after accounts, rooms and messaging and before push (it hands the push service its email pusher factory) and
compat (which serves the 3PID endpoints with ``core.threepids``). Does nothing without ``email.smtp_host``.
Exposes:
  core.mailer                SmtpMailer (``await send(to, subject, text, html, headers)``)
  core.mail_templates        MailTemplates
  core.threepids             ThreePidHandler with email validation
  core.email_pusher_factory  (service, pusher, position) -> EmailPusher, used by workers.wiring.push
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.email.message import canonical_address
from homeserver.email.sender import SmtpMailer, SmtpSettings
from homeserver.email.templates import MailTemplates
from homeserver.handlers.email_validation import EmailValidator
from homeserver.handlers.threepid import ThreePidHandler
from homeserver.push.email_pusher import EmailContext, EmailPusher, UnsubscribeLinks
from homeserver.rest.client.email_links import EmailLinksServlet
from storage.stores.notifications import NotificationsStore
from storage.stores.pushers import PusherStore
from storage.stores.threepids import ThreepidInUse, ThreepidStore
from workers.core import Core
from workers.roles import Area

# Everything is optional: without email.smtp_host the area does nothing (so it provides nothing unconditionally).
AREA = Area(
    "email",
    uses=("ui_auth", "registration", "accounts", "event_store", "room_cache", "profiles"),
)

logger = logging.getLogger(__name__)


def wire(core: Core) -> None:
    email = core.config.email
    if not email.smtp_host:
        return
    clock, db = core.clock, core.db
    base_url = (email.public_base_url or core.config.base_url).rstrip("/")
    mailer = SmtpMailer(core.reactor, clock, SmtpSettings.from_config(email))
    templates = MailTemplates(email.template_dir)
    core.mailer = mailer
    core.mail_templates = templates

    # ---- email for accounts ----
    store = ThreepidStore(db)
    validator = EmailValidator(clock, store, mailer, templates, email.app_name, base_url, email.validation_token_lifetime,
                               email.max_validation_attempts)
    threepids = ThreePidHandler(validator, store, clock)
    core.threepids = threepids

    async def email_identity(creds: Any, description: str) -> tuple[str, str | None]:
        purpose = {"register": "register", "reset_password": "password"}.get(description)
        if purpose is None:
            from homeserver.api.errors import Codes, MatrixError

            raise MatrixError(401, Codes.THREEPID_AUTH_FAILED, "Email identity cannot authorise this operation")
        session = await validator.validated_session(creds, purpose)
        owner = await store.user_for(session.medium, session.address)
        if purpose == "register" and owner is not None:
            from homeserver.api.errors import Codes, MatrixError

            raise MatrixError(401, Codes.THREEPID_IN_USE, "This email address is already in use")
        await store.consume(session.session_id)
        return session.address, owner

    ui_auth = getattr(core, "ui_auth", None)
    if ui_auth is not None:
        ui_auth.set_email_identity_checker(email_identity)
    registration = getattr(core, "registration", None)
    if registration is not None:
        registration.email_flow = "required" if email.require_at_registration else "optional"

        async def bind_registered(user_id: str, threepid: dict[str, Any]) -> None:
            try:
                await store.bind(user_id, "email", canonical_address(threepid["address"]), clock.time_msec(), clock.time_msec())
            except ThreepidInUse:
                logger.warning("the email address validated at registration was taken meanwhile; not bound")

        registration.bind_threepid = bind_registered
    accounts = getattr(core, "accounts", None)
    if accounts is not None:
        accounts.threepids = store
        if hasattr(accounts, "add_user_deactivated_listener"):
            async def forget(user_id: str, _erase: bool = False) -> None:
                await store.delete_for_user(user_id)

            accounts.add_user_deactivated_listener(forget)

    # ---- email notifications ----
    links = UnsubscribeLinks(core.signing_key.encode(), base_url)
    core.on_resource("client", EmailLinksServlet(validator, links, _LazyPushers(core), templates, email.app_name).register)
    if not email.enable_notifs or getattr(core, "event_store", None) is None:
        return
    events = core.event_store
    rooms = core.room_cache
    profiles = getattr(core, "profiles", None)
    notif_store = NotificationsStore(db)
    pusher_store = PusherStore(db)

    async def display_name(user_id: str) -> str:
        try:
            name = await profiles.get_displayname(user_id) if profiles is not None else None
        except Exception:  # noqa: BLE001 - decoration only
            name = None
        return name if isinstance(name, str) and name else user_id

    async def state_content(snap: Any, key: tuple[str, str]) -> dict[str, Any]:
        eid = snap.state.get(key)
        row = await events.get_event(eid) if eid else None
        c = row.content if row is not None and row.redacted_by is None else None
        return c if isinstance(c, dict) else {}

    async def describe_room(room_id: str, user_id: str) -> tuple[str, Any]:
        snap = await rooms.get(room_id)

        async def member_name(member: str) -> str:
            name = (await state_content(snap, ("m.room.member", member))).get("displayname")
            return name if isinstance(name, str) and name else member

        name = (await state_content(snap, ("m.room.name", ""))).get("name")
        if not isinstance(name, str) or not name:
            name = (await state_content(snap, ("m.room.canonical_alias", ""))).get("alias")
        if not isinstance(name, str) or not name:
            others = [u for u, m in snap.memberships.items() if m == "join" and u != user_id][:3]
            name = ", ".join([await member_name(u) for u in others]) or "an empty room"
        return name, member_name

    async def membership(room_id: str, user_id: str) -> str | None:
        return (await rooms.get(room_id)).memberships.get(user_id)

    ctx = EmailContext(clock, mailer, templates, links, email.app_name, notif_store.read_positions, describe_room, display_name,
                       events.get_event, pusher_store.set_email_throttle, pusher_store.email_throttle, membership,
                       email.notif_delay, email.notif_throttle, max(1000, email.retry_delay))
    core.email_pusher_factory = lambda svc, p, pos: EmailPusher(svc, p, pos, ctx)


class _LazyPushers:
    """``core.pushers`` is created by the push wiring, after this one."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core.pushers, name)
