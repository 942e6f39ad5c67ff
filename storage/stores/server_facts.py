"""Small named server-wide facts (``server_facts`` table): the server name the database belongs
to, whether background jobs are enabled, ..."""

from __future__ import annotations

from storage.database import Database, Txn


def get_fact_txn(txn: Txn, name: str) -> str | None:
    row = txn.query_one("SELECT value FROM server_facts WHERE name = ?", (name,))
    return None if row is None else str(row[0])


def set_fact_txn(txn: Txn, name: str, value: str) -> None:
    txn.execute("INSERT INTO server_facts (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value))


def claim_fact_txn(txn: Txn, name: str, value: str) -> str:
    """The stored value of ``name``; stores ``value`` first if there is none (first start)."""
    stored = get_fact_txn(txn, name)
    if stored is None:
        # the processes of a deployment may all start at once: the first claim wins, the others read it
        txn.execute("INSERT INTO server_facts (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, value))
        stored = get_fact_txn(txn, name)
    return value if stored is None else stored


class ServerFactsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, name: str) -> str | None:
        return await self.db.run("get_server_fact", get_fact_txn, name)

    async def set(self, name: str, value: str) -> None:
        await self.db.run("set_server_fact", set_fact_txn, name, value)
