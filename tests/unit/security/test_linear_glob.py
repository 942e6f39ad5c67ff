"""Class 1 (nothing user-supplied stalls the reactor): every user glob is matched in linear time.

The attack patterns of the review (``*a*a*a*a*b`` against a run of ``a``) cost O(n^5) with the old
backtracking regexes; n=200 took 61 s. Here each must finish in milliseconds, and doubling the input
must roughly double (not multiply) the cost.
"""

from __future__ import annotations

import fnmatch
import random
import time

import pytest

from homeserver.push.evaluator import EvalContext, compile_condition, _contains_display_name
from homeserver.sync.filter import Filter
from homeserver.types.glob import compile_glob, glob_matches, literal_glob, star_glob

CTX = EvalContext(user_id="@a:x")


def _cost(fn, *args) -> float:
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def test_review_push_rule_pattern_is_fast():
    """Finding 1, push vector: content rule ``*a*a*a*a*b`` on a body of a's (140 froze the server 7.9 s)."""
    cond = compile_condition({"kind": "event_match", "key": "content.body", "pattern": "*a*a*a*a*b"})
    event = {"type": "m.room.message", "content": {"body": "a" * 65000}}
    t = time.perf_counter()
    assert cond(event, CTX) is False
    assert time.perf_counter() - t < 0.5


def test_review_filter_pattern_is_fast():
    """Finding 1, filter vector: ``a*a*a*a*a*b`` against a 255-byte event type."""
    f = Filter.parse({"room": {"timeline": {"types": ["a*a*a*a*a*b"]}}})
    t = time.perf_counter()
    assert not f.room.timeline.allows_type("a" * 255)
    assert f.room.timeline.allows_type("a" * 100 + "b")
    assert time.perf_counter() - t < 0.1


@pytest.mark.parametrize("pattern", [
    "*a*a*a*a*b",  # star-only fast path
    "*a?a*a?a*a?a*a?a*b",  # NFA path (? present)
    "*[a]*[a]*[a]*[a]*[!a]",  # NFA path (classes)
    "*" + "a*" * 50 + "b",  # 50 wildcards
    "?" * 40 + "*" + "a?" * 30 + "b",
])
@pytest.mark.parametrize("word_boundary", [False, True])
def test_variant_patterns_scale_linearly(pattern, word_boundary):
    """Variant: other wildcard shapes (``?``, classes, 50 stars), whole-value and word-boundary modes."""
    g = compile_glob(pattern, word_boundary=word_boundary)
    small, big = "a" * 5000, "a" * 20000
    t_small, t_big = _cost(g.matches, small), _cost(g.matches, big)
    assert t_big < 0.5
    assert t_big < 4 * t_small * 2.5 + 0.005  # 4x input → about 4x time, never polynomial blow-up


def test_filter_wildcards_only_star_case_sensitive():
    g = star_glob("m.room.*")
    assert g.matches("m.room.message") and not g.matches("M.ROOM.message")
    assert star_glob("m.?").matches("m.?") and not star_glob("m.?").matches("m.x")
    assert star_glob("[x]").matches("[x]")


def test_display_name_is_literal_and_bounded():
    assert _contains_display_name({"content": {"body": "hi Al*ce!"}}, EvalContext("@a:x", display_name="al*ce"))
    assert not _contains_display_name({"content": {"body": "hi Alice!"}}, EvalContext("@a:x", display_name="al*ce"))
    assert literal_glob("bob", word_boundary=True).matches("hey BOB.")
    assert not literal_glob("bob", word_boundary=True).matches("bobby")


def test_agrees_with_fnmatch_random():
    rng = random.Random(7)
    for _ in range(20000):
        p = "".join(rng.choice("ab*?.") for _ in range(rng.randint(0, 7)))
        s = "".join(rng.choice("abAB.") for _ in range(rng.randint(0, 10)))
        assert glob_matches(p, s) == fnmatch.fnmatchcase(s.lower(), p.lower()), (p, s)
        assert star_glob(p).matches(s) == fnmatch.fnmatchcase(s, p.replace("?", "[?]")), (p, s)


def test_variant_many_expensive_rules_are_budgeted():
    """Variant: 500 content rules with long wildcard segments (each linear, but 500 of them) against a 64 kB body:
    one evaluation stays bounded by the per-evaluation glob budget."""
    from homeserver.push.evaluator import compile_ruleset, evaluate

    rules = {"content": [{"rule_id": f"r{i}", "pattern": "*" + "a?" * 20 + f"b{i}", "actions": ["notify"], "enabled": True}
                         for i in range(500)]}
    compiled = compile_ruleset(rules)
    event = {"type": "m.room.message", "content": {"body": "a" * 64000}}
    t = time.perf_counter()
    evaluate(compiled, event, EvalContext(user_id="@a:x"))
    assert time.perf_counter() - t < 1.0


def test_long_segment_cost_is_bounded_per_match():
    g = compile_glob("*" + "a?" * 100 + "b", word_boundary=True)
    assert g.work_per_char == 201
    t = time.perf_counter()
    assert not g.matches("a" * 64000)
    assert time.perf_counter() - t < 0.5
