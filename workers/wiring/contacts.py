"""Contacts area: the contacts API, the contacts-only invite/DM policy, directory ranking.

Needs: core.auth, core.membership (invite checks), core.user_directory (ranking).
Exposes: core.contacts (ContactStore) for story audiences.
"""

from __future__ import annotations

from homeserver.handlers.contacts import ContactInvitePolicy, ContactRanking, ContactsHandler
from homeserver.rest.client.contacts import ContactsServlet
from storage.stores.contacts import ContactStore
from workers.core import Core


def wire(core: Core) -> None:
    store = ContactStore(core.db)
    core.contacts = store
    handler = ContactsHandler(store, core.clock, core.server_name)
    core.on_resource("client", ContactsServlet(core.auth, handler).register)
    core.membership.invite_checks.append(ContactInvitePolicy(store, core.server_name).check)
    core.user_directory.set_ranking(ContactRanking(store))
