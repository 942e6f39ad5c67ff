from tests.unit.messaging.conftest import store_db  # noqa: F401 - a migrated database on each engine
