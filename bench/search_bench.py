"""Search latency over 10,000 indexed messages, on SQLite FTS5 and PostgreSQL tsvector.

Indexes N messages (a vocabulary of ~2,000 words, Zipf-ish) in one room through the same
SearchStore the server uses, then times the store's search (count + ranked page of 10, the
work POST /search does in the database) for several terms and orderings.

    python bench/search_bench.py            # both engines, 10,000 messages
    python bench/search_bench.py --engine sqlite --messages 50000

PostgreSQL: SUP_TEST_POSTGRES_ADMIN_DSN (default dbname=postgres user=postgres host=127.0.0.1).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from storage.database import Database  # noqa: E402
from storage.engines import make_engine  # noqa: E402
from storage.migrations import apply_migrations  # noqa: E402
from storage.stores.search import RoomScope, SearchStore  # noqa: E402
from tests.harness import create_postgres_database, ensure_reactor_running, on_reactor  # noqa: E402

ROOM = "!bench:bench.local"
TERMS = [("common", "rank"), ("common", "recent"), ("rare", "rank"), ("two words", "rank"), ("prefix", "recent")]


def _vocab(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(2000)]


def run(engine_name: str, n: int, repeats: int) -> dict[str, float]:
    reactor = ensure_reactor_running()
    drop = lambda: None  # noqa: E731
    tmp = tempfile.mkdtemp()
    if engine_name == "sqlite":
        engine = make_engine("sqlite", sqlite_path=os.path.join(tmp, "bench.db"))
    else:
        dsn, drop = create_postgres_database()
        engine = make_engine("postgres", dsn=dsn)
    db = Database(engine, reactor, pool_size=2)
    try:
        apply_migrations(db)
        store = SearchStore(db)
        rng = random.Random(42)
        vocab = _vocab(rng)
        weights = [1 / (i + 1) for i in range(len(vocab))]
        common, rare = vocab[0], vocab[-1]

        def fill(txn):  # noqa: ANN001
            for i in range(n):
                words = rng.choices(vocab, weights, k=rng.randint(4, 20))
                if i % 997 == 0:
                    words.append(rare)
                store.index_event_txn(txn, f"$e{i}", ROOM, f"@u{i % 50}:bench.local", "m.room.message", None,
                                      {"body": " ".join(words)}, 1_700_000_000_000 + i, i + 1, i + 1)

        t0 = time.perf_counter()
        db.run_sync("bench_fill", fill)
        if engine_name == "postgres":
            db.run_sync("analyze", lambda t: t.execute("ANALYZE event_search"))
        fill_s = time.perf_counter() - t0
        queries = {"common": common, "rare": rare, "two words": f"{common} {vocab[1]}", "prefix": vocab[2][:3]}
        results: dict[str, float] = {}
        for label, order in TERMS:
            term = queries[label]
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                hits, count = on_reactor(store.search, [RoomScope(ROOM)], term, ["content.body"], order, 10)
                times.append((time.perf_counter() - t) * 1000)
            results[f"{label}/{order}"] = statistics.median(times)
            print(f"  {engine_name:8s} {label + '/' + order:16s} median {statistics.median(times):6.2f} ms  "
                  f"p95 {sorted(times)[int(len(times) * 0.95) - 1]:6.2f} ms  matches={count}")
        print(f"  {engine_name:8s} indexed {n} messages in {fill_s:.1f}s")
        return results
    finally:
        db.close()
        drop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    engines = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    worst = 0.0
    for e in engines:
        print(f"{e}: {args.messages} messages")
        worst = max(worst, max(run(e, args.messages, args.repeats).values()))
    print(f"worst median: {worst:.2f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
