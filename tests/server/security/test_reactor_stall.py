"""Class 1 over HTTP: a user's wildcard pattern never stalls the reactor (finding 1, both engines)."""

from __future__ import annotations

import json
import time

from tests.server.security.helpers import V3, Probe, invite_join, room, send, sync, user


def test_push_rule_redos_does_not_freeze_server(server):
    """Finding 1 (push vector): ``*a*a*a*a*b`` content rule + another member's message of a's, then /sync."""
    a_id, a = user(server, "a")
    b_id, b = user(server, "b")
    rid = room(server, a)
    invite_join(server, a, rid, b_id, b)
    since = sync(server, a)["next_batch"]
    r = server.put(V3 + "/pushrules/global/content/evil", token=a, json={"pattern": "*a*a*a*a*b", "actions": ["notify"]})
    assert r.status_code == 200, r.text
    send(server, b, rid, "a" * 3000)  # 140 took 7.9 s before the fix; 3000 would take years
    with Probe(server) as probe:
        t = time.perf_counter()
        sync(server, a, since)
        elapsed = time.perf_counter() - t
        r = server.get(V3 + "/notifications", token=a)
        assert r.status_code == 200
    assert elapsed < 5
    assert probe.worst < 3


def test_filter_wildcard_redos_does_not_freeze_server(server):
    """Finding 1 (filter vector): inline filter type ``a*a*a*a*a*b`` against a 255-byte event type."""
    a_id, a = user(server, "a")
    rid = room(server, a)
    r = server.put(V3 + f"/rooms/{rid}/send/{'a' * 250}/t1", token=a, json={})
    assert r.status_code == 200, r.text
    flt = json.dumps({"room": {"timeline": {"types": ["a*a*a*a*a*a*a*a*a*a*b"]}}})
    with Probe(server) as probe:
        t = time.perf_counter()
        sync(server, a, filter=flt)
        assert time.perf_counter() - t < 3
    assert probe.worst < 3


def test_variant_question_mark_and_class_rules_on_sender_and_type(server):
    """Variant: override rule with ``?``/class wildcards on ``type`` and a 50-wildcard rule on the body."""
    a_id, a = user(server, "a")
    b_id, b = user(server, "b")
    rid = room(server, a)
    invite_join(server, a, rid, b_id, b)
    since = sync(server, a)["next_batch"]
    cond = {"kind": "event_match", "key": "type", "pattern": "*?a*?a*?a*?a*[!a]"}
    assert server.put(V3 + "/pushrules/global/override/evil2", token=a,
                      json={"conditions": [cond], "actions": ["notify"]}).status_code == 200
    assert server.put(V3 + "/pushrules/global/content/evil3", token=a,
                      json={"pattern": "*a" * 50 + "b", "actions": ["notify"]}).status_code == 200
    assert server.put(V3 + f"/rooms/{rid}/send/{'a' * 250}/t2", token=b, json={"body": "a" * 5000}).status_code == 200
    with Probe(server) as probe:
        t = time.perf_counter()
        sync(server, a, since)
        assert time.perf_counter() - t < 5
    assert probe.worst < 3
