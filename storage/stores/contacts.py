"""Contacts, their labels (lists) and each user's contact policy (docs/contacts.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.database import Database, Txn


@dataclass
class Contact:
    contact_id: str
    nickname: str | None
    added_ts: int
    lists: list[str] = field(default_factory=list)
    mutual: bool = False


@dataclass(frozen=True)
class ContactPolicy:
    invites: str = "anyone"
    direct_messages: str = "anyone"


class ContactStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def count(self, user_id: str) -> int:
        rows = await self.db.query("count_contacts", "SELECT COUNT(*) FROM contacts WHERE user_id = ?", (user_id,))
        return int(rows[0][0])

    async def upsert(self, user_id: str, contact_id: str, nickname: str | None, lists: list[str] | None, now_ms: int) -> None:
        """Add or update a contact; ``lists`` (when given) replaces its labels."""

        def fn(txn: Txn) -> None:
            txn.execute("SELECT 1 FROM contacts WHERE user_id = ? AND contact_id = ?", (user_id, contact_id))
            if txn.fetchone() is None:
                txn.execute("INSERT INTO contacts (user_id, contact_id, nickname, added_ts) VALUES (?, ?, ?, ?)",
                            (user_id, contact_id, nickname, now_ms))
            else:
                txn.execute("UPDATE contacts SET nickname = ? WHERE user_id = ? AND contact_id = ?", (nickname, user_id, contact_id))
            if lists is not None:
                txn.execute("DELETE FROM contact_labels WHERE user_id = ? AND contact_id = ?", (user_id, contact_id))
                txn.execute_many("INSERT INTO contact_labels (user_id, label, contact_id) VALUES (?, ?, ?)",
                                 [(user_id, label, contact_id) for label in lists])

        await self.db.run("upsert_contact", fn)

    async def remove(self, user_id: str, contact_id: str) -> bool:
        def fn(txn: Txn) -> bool:
            txn.execute("DELETE FROM contact_labels WHERE user_id = ? AND contact_id = ?", (user_id, contact_id))
            txn.execute("DELETE FROM contacts WHERE user_id = ? AND contact_id = ?", (user_id, contact_id))
            return txn.rowcount > 0

        return await self.db.run("remove_contact", fn)

    async def list(self, user_id: str, label: str | None = None, contact_id: str | None = None) -> list[Contact]:
        """The user's contacts (optionally one label, or one contact), with labels and the mutual flag."""

        def fn(txn: Txn) -> list[Contact]:
            sql = ("SELECT c.contact_id, c.nickname, c.added_ts, r.user_id FROM contacts c "
                   "LEFT JOIN contacts r ON r.user_id = c.contact_id AND r.contact_id = c.user_id WHERE c.user_id = ?")
            params: list[object] = [user_id]
            if contact_id is not None:
                sql += " AND c.contact_id = ?"
                params.append(contact_id)
            if label is not None:
                sql += " AND EXISTS (SELECT 1 FROM contact_labels l WHERE l.user_id = c.user_id AND l.contact_id = c.contact_id AND l.label = ?)"
                params.append(label)
            txn.execute(sql + " ORDER BY c.contact_id", params)
            contacts = {row[0]: Contact(row[0], row[1], int(row[2]), [], row[3] is not None) for row in txn.fetchall()}
            if contacts:
                txn.execute("SELECT contact_id, label FROM contact_labels WHERE user_id = ? ORDER BY label", (user_id,))
                for cid, lab in txn.fetchall():
                    if cid in contacts:
                        contacts[cid].lists.append(lab)
            return list(contacts.values())

        return await self.db.read("list_contacts", fn)

    async def labels(self, user_id: str) -> dict[str, list[str]]:
        rows = await self.db.query("contact_labels", "SELECT label, contact_id FROM contact_labels WHERE user_id = ? ORDER BY label, contact_id",
                                   (user_id,))
        out: dict[str, list[str]] = {}
        for label, cid in rows:
            out.setdefault(label, []).append(cid)
        return out

    async def members_of(self, user_id: str, label: str | None) -> set[str]:
        """The contact ids of ``user_id`` (all, or only those with ``label``)."""
        if label is None:
            rows = await self.db.query("contact_ids", "SELECT contact_id FROM contacts WHERE user_id = ?", (user_id,))
        else:
            rows = await self.db.query("contact_ids_label", "SELECT contact_id FROM contact_labels WHERE user_id = ? AND label = ?",
                                       (user_id, label))
        return {r[0] for r in rows}

    async def has_contact(self, user_id: str, contact_id: str) -> bool:
        rows = await self.db.query("has_contact", "SELECT 1 FROM contacts WHERE user_id = ? AND contact_id = ?", (user_id, contact_id))
        return bool(rows)

    async def contacts_among(self, user_id: str, candidates: list[str]) -> set[str]:
        if not candidates:
            return set()
        marks = ",".join("?" for _ in candidates)
        rows = await self.db.query("contacts_among", f"SELECT contact_id FROM contacts WHERE user_id = ? AND contact_id IN ({marks})",
                                   (user_id, *candidates))
        return {r[0] for r in rows}

    async def get_policy(self, user_id: str) -> ContactPolicy:
        rows = await self.db.query("get_contact_policy", "SELECT invites, direct_messages FROM contact_policies WHERE user_id = ?", (user_id,))
        return ContactPolicy(rows[0][0], rows[0][1]) if rows else ContactPolicy()

    async def set_policy(self, user_id: str, policy: ContactPolicy) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM contact_policies WHERE user_id = ?", (user_id,))
            txn.execute("INSERT INTO contact_policies (user_id, invites, direct_messages) VALUES (?, ?, ?)",
                        (user_id, policy.invites, policy.direct_messages))

        await self.db.run("set_contact_policy", fn)
