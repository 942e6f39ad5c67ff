"""The migrated database on each engine of the messaging store tests (``store_db``), reused here."""

from tests.unit.messaging.conftest import store_db  # noqa: F401 - a migrated database on each engine
