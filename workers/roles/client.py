"""A client worker (``sup worker client``): the read-only client endpoints plus login and registration, off main.

Room history and state (``/messages``, ``/context``, ``/event``, ``/state``, members), relations and
threads, profiles, account data, devices, push rules, notifications, the public room list and the
like are GET-only: what it reads comes from the database and its caches stay coherent by replication.

It also serves the account endpoints whose writes need no stream writer (``WRITE_ROUTES``): login (password,
TOTP, tokens), token refresh, registration with its UI-auth, TOTP enrolment, shared-secret registration. Their
abuse state (rate limits, failed-login and TOTP counters, UIA sessions, nonces) is shared with every other
process through Redis (``homeserver/shared_state.py``, ``workers/shared_state.py``); the one stream write they
cause, "this user has a new device" (device lists), is forwarded to the stream's writer over replication.
Sends, state, membership, redaction, logout (device deletion), password change and deactivation stay on main.
``tests/unit/roles_caches/test_deployment.py`` checks that every other route it claims is GET.
"""

from workers.roles import ROOM_BASE, worker

# Write routes served here: DB-only writes; their shared abuse state lives in Redis.
WRITE_ROUTES = (
    "POST login", "POST refresh", "POST refresh_v1", "POST register", "POST totp_enrol", "POST totp_confirm",
    "POST totp_disable", "POST totp_recovery_codes", "POST admin_register",
)

ROLE = worker(
    "client",
    areas=(
        *ROOM_BASE,
        "messaging",
        "email",  # the same registration flows (email) as main
        "push",
        "e2e",
        "compat",
        "replication",
    ),
    description="client API: reads (room history and state, relations, profiles, account data, devices, push rules) plus login and registration",
    routes=(
        "room_messages", "room_context", "room_get_event", "room_get_state", "room_get_state_event",
        "room_get_state_event_empty", "room_get_state_event_empty_slash", "room_joined_members", "room_members",
        "joined_rooms", "relations", "relations_type", "relations_type_event", "threads", "timestamp_to_event",
        "profile", "profile_field", "whoami", "capabilities", "account_data", "room_account_data", "tags",
        "devices", "pushrules_all", "pushrules_all_noslash", "pushrules_scope", "pushrules_scope_noslash",
        "pushrule_get", "pushrule_attr_get", "notifications", "public_rooms_get", "keys_changes", "mutual_rooms",
        "filter_get", "presence_get", "versions", "health", "metrics",
        "login_flows", "register_available", "registration_token_validity", "totp_status", "account_3pid",
        "admin_register_nonce",
    ) + WRITE_ROUTES,
)
