"""Glob matching (appendices: glob-style matching), checked against fnmatch and by construction."""

from __future__ import annotations

import fnmatch
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.push.glob import glob_matches

ALPHA = "abcAB.-_ :!"
text = st.text(alphabet=ALPHA, max_size=12)
pattern = st.text(alphabet=ALPHA + "*?", max_size=8)


@settings(max_examples=300, deadline=None)
@given(pattern, text)
def test_agrees_with_fnmatch_without_classes(p, s):
    """Without bracket classes our glob is fnmatch's, case-insensitively."""
    assert glob_matches(p, s) == fnmatch.fnmatchcase(s.lower(), p.lower())


@settings(max_examples=200, deadline=None)
@given(text)
def test_literal_matches_itself_and_star_matches_all(s):
    assert glob_matches(s, s)
    assert glob_matches(s.upper(), s.lower())
    assert glob_matches("*", s)
    assert glob_matches("?" * len(s), s)
    assert not glob_matches("?" * (len(s) + 1), s)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abc", min_size=1, max_size=5), st.text(alphabet=" -.,", min_size=1, max_size=2),
       st.text(alphabet="xyz", max_size=5))
def test_word_boundary_substring(word, sep, rest):
    """A word surrounded by non-word characters is found in a body; glued to word characters it is not."""
    assert glob_matches(word, f"{rest}{sep}{word}{sep}{rest}", word_boundary=True)
    assert not glob_matches(word, f"q{word}q", word_boundary=True)


def test_regex_metacharacters_are_literal():
    assert glob_matches("a.b", "a.b") and not glob_matches("a.b", "axb")
    assert glob_matches("(x)+", "(x)+")
    assert glob_matches("[", "[")  # unterminated class: literal
    assert not glob_matches("[z-a]", "b")  # invalid range never matches
    assert re.escape("x")  # keep re import used
