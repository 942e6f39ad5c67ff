"""A client reader (``sup worker client``): the read-only client endpoints, off the main process.

Room history and state (``/messages``, ``/context``, ``/event``, ``/state``, members), relations and
threads, profiles, account data, devices, push rules, notifications, the public room list and the
like — every route here is GET-only (``tests/unit/roles_caches/test_deployment.py`` checks it), so
this role writes nothing: what it reads comes from the database and its caches stay coherent by
replication. Writes (send, state, membership, redaction, login, registration) stay on main.
"""

from workers.roles import Role

ROLE = Role(
    "client",
    modules=(
        "workers.wiring.foundation",
        "workers.wiring.accounts",
        "workers.wiring.rooms",
        "workers.wiring.sync",
        "workers.wiring.messaging",
        "workers.wiring.push",
        "workers.wiring.e2e",
        "workers.wiring.compat",
        "workers.wiring.replication",
    ),
    resources=("client", "metrics"),
    description="read-only client API: room history and state, relations, profiles, account data, devices, push rules",
    jobs=(),
    routes=(
        "room_messages", "room_context", "room_get_event", "room_get_state", "room_get_state_event",
        "room_get_state_event_empty", "room_get_state_event_empty_slash", "room_joined_members", "room_members",
        "joined_rooms", "relations", "relations_type", "relations_type_event", "threads", "timestamp_to_event",
        "profile", "profile_field", "whoami", "capabilities", "account_data", "room_account_data", "tags",
        "devices", "pushrules_all", "pushrules_all_noslash", "pushrules_scope", "pushrules_scope_noslash",
        "pushrule_get", "pushrule_attr_get", "notifications", "public_rooms_get", "keys_changes", "mutual_rooms",
        "filter_get", "presence_get", "versions", "health", "metrics",
    ),
)
