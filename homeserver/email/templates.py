"""Mail templates: plain text + HTML (+ a one-line subject) per kind, overridable by the deployer.

Templates are Jinja2 in a sandboxed environment; ``.html`` templates are autoescaped, so display names, room
names and message bodies can never inject markup. A deployer's ``email.template_dir`` is searched first, by file
name. If a deployer's template fails (syntax error, undefined variable, anything), the failure is logged and
counted (``sup_email_template_errors_total``) and the built-in template is used, so the mail still goes out.
Subjects are reduced to one line (control characters removed) before they reach a header.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from prometheus_client import Counter

from homeserver.email.message import header_text

logger = logging.getLogger(__name__)

BUILTIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
TEMPLATE_ERRORS = Counter("sup_email_template_errors_total", "Deployer mail templates that failed (built-in used).", ["template"])
KINDS = ("notif_mail", "add_threepid", "registration", "password_reset")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _env(directory: str) -> SandboxedEnvironment:
    return SandboxedEnvironment(loader=jinja2.FileSystemLoader(directory), autoescape=jinja2.select_autoescape(["html"]),
                                undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class MailTemplates:
    def __init__(self, template_dir: str | None = None) -> None:
        self._builtin = _env(BUILTIN_DIR)
        self._custom = _env(template_dir) if template_dir else None

    def _render_one(self, name: str, context: dict[str, Any]) -> str:
        if self._custom is not None:
            try:
                return self._custom.get_template(name).render(**context)
            except jinja2.TemplateNotFound:
                pass
            except Exception as e:  # noqa: BLE001 - any deployer template failure falls back to the built-in one
                TEMPLATE_ERRORS.labels(name).inc()
                logger.error("mail template %s from email.template_dir failed (%s: %s); using the built-in one",
                             name, type(e).__name__, str(e)[:200])
        return self._builtin.get_template(name).render(**context)

    def render(self, kind: str, context: dict[str, Any]) -> Rendered:
        subject = header_text(self._render_one(f"{kind}_subject.txt", context), 250)
        return Rendered(subject, self._render_one(f"{kind}.txt", context), self._render_one(f"{kind}.html", context))

    def page(self, title: str, message: str, app_name: str, **extra: Any) -> bytes:
        """A small HTML page (validation and unsubscribe results), overridable as ``page.html``."""
        ctx = {"title": title, "message": message, "app_name": app_name, "form_action": None, "form_button": None,
               "next_link": None, **extra}
        return self._render_one("page.html", ctx).encode("utf-8")
