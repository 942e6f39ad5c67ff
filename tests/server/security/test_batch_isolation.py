"""Class 6: one member's bad event never fails other members' events in the same persist batch (finding 4)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.server.security.helpers import V3, invite_join, room, user


def _flood(server, b, a, rid, bad_requests):
    """@b sends 20 good messages while @a interleaves poisoned requests; returns (b statuses, a statuses)."""
    def good(i: int) -> int:
        return requests.put(server.url + V3 + f"/rooms/{rid}/send/m.room.message/g{i}",
                            headers={"Authorization": f"Bearer {b}"}, json={"msgtype": "m.text", "body": f"good {i}"},
                            timeout=30).status_code

    def bad(req) -> int:
        path, data = req
        return requests.put(server.url + path, headers={"Authorization": f"Bearer {a}", "Content-Type": "application/json"},
                            data=data, timeout=30).status_code

    with ThreadPoolExecutor(12) as pool:
        goods = [pool.submit(good, i) for i in range(20)]
        bads = [pool.submit(bad, r) for r in bad_requests]
        return [f.result() for f in goods], [f.result() for f in bads]


def _stored_bodies(server, token, rid):
    r = server.get(V3 + f"/rooms/{rid}/messages", token=token, params={"dir": "b", "limit": 100})
    assert r.status_code == 200
    return {e["content"].get("body") for e in r.json()["chunk"] if e["type"] == "m.room.message"}


def test_nul_body_does_not_fail_other_senders(server):
    """Finding 4: 5 bodies with U+0000 interleaved with 20 good messages; all 20 good ones are stored."""
    a_id, a = user(server, "a")
    b_id, b = user(server, "b")
    rid = room(server, a)
    invite_join(server, a, rid, b_id, b)
    bad = [(V3 + f"/rooms/{rid}/send/m.room.message/p{i}", b'{"msgtype":"m.text","body":"p\\u0000"}') for i in range(5)]
    goods, bads = _flood(server, b, a, rid, bad)
    assert goods == [200] * 20
    assert all(s in (200, 400) for s in bads)
    assert {f"good {i}" for i in range(20)} <= _stored_bodies(server, b, rid)


def test_variant_nul_in_type_state_key_txn_and_relations(server):
    """Variant: NUL in the URL's event type, state key and txn id, and in topic / relation fields."""
    a_id, a = user(server, "a")
    b_id, b = user(server, "b")
    rid = room(server, a)
    invite_join(server, a, rid, b_id, b)
    bad = [
        (V3 + f"/rooms/{rid}/send/m.x%00y/t1", b"{}"),
        (V3 + f"/rooms/{rid}/send/m.room.message/t%00z", b'{"body":"x","msgtype":"m.text"}'),
        (V3 + f"/rooms/{rid}/state/m.x/k%00k", b"{}"),
        (V3 + f"/rooms/{rid}/state/m.room.topic/", b'{"topic":"t\\u0000"}'),
        (V3 + f"/rooms/{rid}/send/m.room.message/t3",
         b'{"body":"x","msgtype":"m.text","m.relates_to":{"rel_type":"m.\\u0000","event_id":"$a\\u0000"}}'),
    ]
    goods, bads = _flood(server, b, a, rid, bad)
    assert goods == [200] * 20
    assert bads[0] == 400 and bads[1] == 400 and bads[2] == 400
    assert all(s in (200, 400) for s in bads)
    assert {f"good {i}" for i in range(20)} <= _stored_bodies(server, b, rid)
    # the room still works afterwards, for both
    assert server.put(V3 + f"/rooms/{rid}/send/m.room.message/after", token=a, json={"body": "ok", "msgtype": "m.text"}).status_code == 200


def test_variant_any_batch_failure_is_retried_one_by_one(server):
    """Variant: whatever makes one event's write fail (here a derived-row writer that raises for one body),
    the other events of its batch are still committed; only the failing one is refused."""
    from tests.harness import on_reactor

    a_id, a = user(server, "a")
    b_id, b = user(server, "b")
    rid = room(server, a)
    invite_join(server, a, rid, b_id, b)

    def exploding_writer(txn, rows):
        for row in rows:
            if isinstance(row.content, dict) and row.content.get("body") == "explode":
                raise RuntimeError("this one event cannot be stored")

    on_reactor(server.app.core.persister.add_txn_writer, exploding_writer)
    bad = [(V3 + f"/rooms/{rid}/send/m.room.message/x{i}", b'{"msgtype":"m.text","body":"explode"}') for i in range(5)]
    goods, bads = _flood(server, b, a, rid, bad)
    assert goods == [200] * 20
    assert all(s >= 500 for s in bads)
    assert {f"good {i}" for i in range(20)} <= _stored_bodies(server, b, rid)
