"""Processes of one deployment started at once share one data folder: they must end up with one signing key."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any


def _load(path: str, barrier: Any, out: Any) -> None:
    from homeserver.signing_key import load_or_create_signing_key
    from signedjson.key import encode_signing_key_base64

    barrier.wait()
    key = load_or_create_signing_key(path)
    out.put(f"{key.version}:{encode_signing_key_base64(key)}")


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Any) -> None:
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        path = os.path.join(str(tmp_path), str(round_), "test.local.signing.key")
        barrier, out = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=_load, args=(path, barrier, out)) for _ in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        keys = {out.get(timeout=5) for _ in procs}
        assert len(keys) == 1
        assert os.listdir(os.path.dirname(path)) == ["test.local.signing.key"]  # no temporary file left
