"""The search index behaves the same on SQLite FTS5 and PostgreSQL tsvector (one interface)."""

from __future__ import annotations

from storage.stores.search import RoomScope, SearchStore, query_terms, search_value

ROOM = "!a:test"
OTHER = "!b:test"


def _index(store_db, store, rows):
    def fn(txn):
        for i, (room, sender, etype, sk, content) in enumerate(rows, start=1):
            store.index_event_txn(txn, f"$e{i}", room, sender, etype, sk, content, 1000 + i, i, i)
    store_db.txn(fn)


def test_search_value_rules():
    assert search_value("m.room.message", None, {"body": "hi"}) == ("content.body", "hi")
    assert search_value("m.room.name", "", {"name": "Lobby"}) == ("content.name", "Lobby")
    assert search_value("m.room.topic", "", {"topic": "cats"}) == ("content.topic", "cats")
    assert search_value("m.room.encrypted", None, {"ciphertext": "xx", "body": "leak"}) is None
    assert search_value("m.room.message", None, {"body": 5}) is None
    assert search_value("m.room.name", "x", {"name": "not state"}) is None
    assert query_terms('martians "AND" (men)*') == ["martians", "and", "men"]


def test_ranking_stemming_and_scope(store_db):
    store = SearchStore(store_db.db)
    _index(store_db, store, [
        (ROOM, "@a:test", "m.room.message", None, {"body": "the martian landed"}),
        (ROOM, "@a:test", "m.room.message", None, {"body": "martians martians martians everywhere, martians"}),
        (ROOM, "@b:test", "m.room.message", None, {"body": "nothing to see"}),
        (OTHER, "@a:test", "m.room.message", None, {"body": "martians in another room"}),
        (ROOM, "@a:test", "m.room.encrypted", None, {"body": "martians encrypted"}),
        (ROOM, "@a:test", "m.room.topic", "", {"topic": "Martian topics"}),
    ])
    hits, count = store_db.run(store.search, [RoomScope(ROOM)], "martians", ["content.body"], "rank", 10)
    assert [h.event_id for h in hits] == ["$e2", "$e1"]  # denser match ranks first; stemming finds "martian"
    assert count == 2 and hits[0].rank > hits[1].rank
    hits, count = store_db.run(store.search, [RoomScope(ROOM)], "martian", ["content.body", "content.topic"], "recent", 10)
    assert [h.event_id for h in hits] == ["$e6", "$e2", "$e1"]
    hits, _ = store_db.run(store.search, [RoomScope(ROOM), RoomScope(OTHER, max_stream=3)], "martians", list(
        ["content.body"]), "recent", 10)
    assert "$e4" not in [h.event_id for h in hits]  # left OTHER at stream 3: later events invisible
    hits, _ = store_db.run(store.search, [RoomScope(ROOM)], "martians", ["content.body"], "rank", 10, senders=["@b:test"])
    assert hits == []


def test_pagination_and_delete(store_db):
    store = SearchStore(store_db.db)
    _index(store_db, store, [(ROOM, "@a:test", "m.room.message", None, {"body": f"hello number {i}"}) for i in range(25)])
    seen = []
    after = None
    while True:
        hits, count = store_db.run(store.search, [RoomScope(ROOM)], "hello", ["content.body"], "recent", 10, after=after)
        seen += [h.event_id for h in hits]
        if len(hits) < 10:
            break
        after = (hits[-1].rank, hits[-1].stream_ordering)
    assert count == 25 and len(seen) == 25 and len(set(seen)) == 25
    ranked = [h.event_id for off in (0, 10, 20) for h in store_db.run(
        store.search, [RoomScope(ROOM)], "hello", ["content.body"], "rank", 10, offset=off)[0]]
    assert sorted(ranked) == sorted(seen)
    store_db.txn(lambda t: store.delete_txn(t, ["$e1", "$e2"]))
    hits, count = store_db.run(store.search, [RoomScope(ROOM)], "hello", ["content.body"], "recent", 50)
    assert count == 23 and "$e1" not in [h.event_id for h in hits]


def test_hostile_terms_are_not_syntax(store_db):
    store = SearchStore(store_db.db)
    _index(store_db, store, [(ROOM, "@a:test", "m.room.message", None, {"body": "quote \" and NEAR( stuff"})])
    for term in ['"', "NEAR(", "a:* & !b", "' OR 1=1 --", "*", "(((", "stuff)"]:
        store_db.run(store.search, [RoomScope(ROOM)], term, ["content.body"], "rank", 10)
    hits, _ = store_db.run(store.search, [RoomScope(ROOM)], "stuff)", ["content.body"], "rank", 10)
    assert [h.event_id for h in hits] == ["$e1"]
