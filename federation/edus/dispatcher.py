"""The inbound EDU dispatcher that the ``/send/{txnId}`` servlet (fedcore) calls.

``EduDispatcher.register(edu_type, handler)`` with ``async handler(origin, content)``;
``await on_edu(origin, edu_type, content)`` (``core.federation_edu_dispatcher``) or ``await dispatch(origin, edus)`` runs each EDU of a transaction in order. An EDU that is malformed, of an unknown
type, or whose handler fails is logged and counted, never raised: one bad EDU never fails the transaction.
At most 100 EDUs per transaction are looked at (the spec's limit).
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from prometheus_client import Counter

logger = logging.getLogger(__name__)

EDUS_IN = Counter("sup_federation_inbound_edus_total", "Inbound EDUs by type and outcome.", ["edu_type", "outcome"])

EduHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
MAX_EDUS = 100
KNOWN_TYPES = {"m.typing", "m.receipt", "m.presence", "m.device_list_update", "m.signing_key_update", "m.direct_to_device"}


class EduDispatcher:
    def __init__(self) -> None:
        self._handlers: dict[str, EduHandler] = {}

    def register(self, edu_type: str, handler: EduHandler) -> None:
        if edu_type in self._handlers:
            raise ValueError(f"EDU handler for {edu_type} already registered")
        self._handlers[edu_type] = handler

    async def on_edu(self, origin: str, edu_type: str, content: Any) -> None:
        """One EDU (the seam fedcore's transaction handler calls); never raises."""
        await self.dispatch(origin, [{"edu_type": edu_type, "content": content}])

    async def dispatch(self, origin: str, edus: Any) -> None:
        if not isinstance(edus, list):
            return
        for edu in edus[:MAX_EDUS]:
            if not isinstance(edu, dict):
                continue
            edu_type, content = edu.get("edu_type"), edu.get("content")
            label = edu_type if edu_type in KNOWN_TYPES else "other"
            handler = self._handlers.get(edu_type) if isinstance(edu_type, str) else None
            if handler is None or not isinstance(content, dict):
                EDUS_IN.labels(label, "ignored").inc()
                continue
            try:
                await handler(origin, content)
                EDUS_IN.labels(label, "ok").inc()
            except Exception:
                EDUS_IN.labels(label, "error").inc()
                logger.exception("EDU %s from %s failed", edu_type, origin)
