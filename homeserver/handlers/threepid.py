"""Third-party identifiers (email / phone) without an identity server.

With email configured (``email.smtp_host``, ``EmailValidator``), email addresses are validated by SUP itself:
* ``requestToken`` for ``email`` mails a validation link (``homeserver/handlers/email_validation.py``) and answers
  ``{sid, submit_url}``; 400 ``M_THREEPID_IN_USE`` when adding/registering an address another account has,
  400 ``M_THREEPID_NOT_FOUND`` for a password reset to an unknown address;
* ``/account/3pid/add`` (UIA-guarded by the servlet) binds the address of a validated session;
* ``/account/3pid/delete`` removes a bound address (``id_server_unbind_result: no-support``).
Phone numbers are never validated (no SMS sending); without email configured every medium is refused as before:
400 ``M_THREEPID_MEDIUM_NOT_SUPPORTED`` (adding / registering), 400 ``M_THREEPID_NOT_FOUND`` (password resets),
403 ``M_THREEPID_AUTH_FAILED`` for any ``sid``. ``/account/3pid/bind`` always answers 400 ``M_SERVER_NOT_TRUSTED``
(no identity server is trusted). ``GET /capabilities`` says whether ``m.3pid_changes`` is enabled.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, MatrixError
from homeserver.api.models.threepid import EmailTokenRequest, MsisdnTokenRequest, ThreePidAddBody, ThreePidDeleteBody
from storage.stores.threepids import ThreepidInUse

class ThreePidHandler:
    """Email addresses through ``validator`` (None: no email configured); phone numbers always refused."""

    def __init__(self, validator: Any = None, store: Any = None, clock: Any = None) -> None:
        self.validator = validator
        self.store = store
        self.clock = clock

    @property
    def email_enabled(self) -> bool:
        return self.validator is not None

    async def request_token(self, purpose: str, medium: str, body: EmailTokenRequest | MsisdnTokenRequest,
                            user_id: str | None = None) -> dict[str, Any]:
        """``purpose``: "account" (/account/3pid/*), "register" or "password"."""
        if isinstance(body, EmailTokenRequest) and self.validator is not None:
            return await self.validator.request_token(purpose, body.email, body.client_secret, body.send_attempt,
                                                      body.next_link, user_id)
        what = "email addresses" if medium == "email" else "phone numbers"
        if purpose == "password":
            raise MatrixError(400, Codes.THREEPID_NOT_FOUND, f"No account on this server has any of its {what} as a contact")
        raise MatrixError(400, Codes.THREEPID_MEDIUM_NOT_SUPPORTED, f"This server does not support {what} (no identity server or message sending)")

    def check_add(self) -> None:
        """Before UIA: without email validation there is no session to add."""
        if self.validator is None:
            raise MatrixError(403, Codes.THREEPID_AUTH_FAILED, "No validated third-party identifier session with this sid")

    async def add(self, user_id: str, body: ThreePidAddBody) -> None:
        self.check_add()
        session = await self.validator.validated_session({"sid": body.sid, "client_secret": body.client_secret}, "account")
        try:
            await self.store.bind(user_id, session.medium, session.address, session.validated_at or 0, self.clock.time_msec())
        except ThreepidInUse:
            raise MatrixError(400, Codes.THREEPID_IN_USE, "This email address is already in use") from None
        await self.validator.store.consume(session.session_id)

    async def list(self, user_id: str) -> list[dict[str, Any]]:
        return await self.store.for_user(user_id) if self.store is not None else []

    def add_legacy(self) -> None:
        raise MatrixError(403, Codes.THREEPID_AUTH_FAILED, "The credentials could not be verified: this server has no identity server")

    def bind(self) -> None:
        raise MatrixError(400, Codes.SERVER_NOT_TRUSTED, "This server does not bind third-party identifiers on identity servers")

    async def delete(self, user_id: str, body: ThreePidDeleteBody, unbind_only: bool = False) -> dict[str, Any]:
        if not unbind_only and self.store is not None and body.medium == "email":
            await self.store.unbind(user_id, body.medium, body.address.strip().lower())
        return {"id_server_unbind_result": "no-support"}
