"""The links SUP mails: ``/_sup/email/submit_token`` (address validation) and ``/_sup/email/unsubscribe``.

Both work without logging in: the first is authorised by the mailed token (with ``sid`` and ``client_secret``), the
second by an HMAC signature over the pusher. ``submit_token`` also takes the spec's ``submit_url`` form: a JSON
``POST {sid, client_secret, token}`` answered with ``{"success": bool}``. ``unsubscribe`` deletes the email pusher on
``GET`` (the link) and on ``POST`` (RFC 8058 one-click from ``List-Unsubscribe-Post``).
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.handlers.email_validation import SUBMIT_PATH
from homeserver.api.models.threepid import SubmitTokenBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.http.site import RawResponse
from homeserver.push.email_pusher import UNSUBSCRIBE_PATH

logger = logging.getLogger(__name__)
HTML = "text/html; charset=utf-8"
_PAGE_HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
                 "Referrer-Policy": "no-referrer"}


class EmailLinksServlet:
    def __init__(self, validator: Any, links: Any, pushers: Any, templates: Any, app_name: str) -> None:
        self.validator = validator
        self.links = links
        self.pushers = pushers
        self.templates = templates
        self.app_name = app_name

    def register(self, router: Router) -> None:
        add_route(router, "root", "GET", SUBMIT_PATH, self.on_submit_link, "email_submit_token_link")
        add_route(router, "root", "POST", SUBMIT_PATH, self.on_submit_json, "email_submit_token")
        add_route(router, "root", "GET", UNSUBSCRIBE_PATH, self.on_unsubscribe, "email_unsubscribe")
        add_route(router, "root", "POST", UNSUBSCRIBE_PATH, self.on_unsubscribe, "email_unsubscribe_post")

    def _page(self, status: int, title: str, message: str, **extra: Any) -> RawResponse:
        return RawResponse(status, self.templates.page(title, message, self.app_name, **extra), HTML, dict(_PAGE_HEADERS))

    @staticmethod
    def _q(request: SupRequest, name: str) -> str | None:
        v = request.query_str(name)
        if v is None or not v or len(v) > 1024 or "\x00" in v:
            return None
        return v

    async def on_submit_link(self, request: SupRequest) -> RawResponse:
        sid, secret, token = self._q(request, "sid"), self._q(request, "client_secret"), self._q(request, "token")
        if not (sid and secret and token):
            return self._page(400, "Invalid link", "This validation link is incomplete.")
        ok, next_link = await self.validator.submit_token(sid, secret, token)
        if not ok:
            return self._page(400, "Link not valid", "This validation link is wrong, expired or was used too many times. Ask your app to send a new one.")
        return self._page(200, "Email address confirmed", "Your email address is confirmed. You can return to your app and continue.",
                          next_link=next_link)

    async def on_submit_json(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        body = parse_body(request, SubmitTokenBody)
        ok, _ = await self.validator.submit_token(body.sid, body.client_secret, body.token)
        return 200, {"success": ok}

    async def on_unsubscribe(self, request: SupRequest) -> RawResponse:
        user_id, app_id, pushkey, sig = (self._q(request, n) for n in ("u", "a", "k", "sig"))
        if not (user_id and app_id and pushkey and sig) or not self.links.check(user_id, app_id, pushkey, sig):
            return self._page(400, "Invalid link", "This unsubscribe link is not valid.")
        existing = await self.pushers.store.get(user_id, app_id, pushkey)
        if existing is not None and existing.kind == "email":
            await self.pushers.remove(user_id, app_id, pushkey)
            logger.info("email notifications unsubscribed by link for %s", user_id)
        return self._page(200, "Unsubscribed", "You will not receive these email notifications any more.")
