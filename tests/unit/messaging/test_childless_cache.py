"""Fresh events nothing relates to skip the aggregation query; a relation makes the parent queried again."""

from __future__ import annotations

from twisted.internet import defer

from storage.stores.relations import RelationsStore


class _NoDatabase:
    calls = 0

    async def read(self, name, fn, *args):  # noqa: ANN001
        _NoDatabase.calls += 1
        raise AssertionError("no query expected")


def test_childless_events_need_no_query_until_something_relates() -> None:
    store = RelationsStore(_NoDatabase())  # type: ignore[arg-type]
    store._note_persisted("$parent", [])
    d = defer.ensureDeferred(store.get_aggregations(["$parent"], "@u:x", False))
    assert not d.result.has_any() and _NoDatabase.calls == 0
    store._note_persisted("$child", ["$parent"])  # a reaction/edit/thread reply to $parent
    assert "$parent" not in store._childless and "$child" in store._childless
    d = defer.ensureDeferred(store.get_aggregations(["$parent"], "@u:x", False))
    d.addErrback(lambda f: f.trap(AssertionError))
    assert _NoDatabase.calls == 1  # the parent is queried again
