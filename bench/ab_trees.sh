#!/usr/bin/env bash
# A/B benchmark of two checkouts of SUP (BASE and LEAD, e.g. git worktrees of two commits), interleaved runs.
# usage: BASE=/path/to/old LEAD=/path/to/new bench/ab_trees.sh ENGINE RUNS SCENARIOS OUTDIR   (QUICK=--quick for small sizes)
# then: python3 -m bench.median OUTDIR/base-ENGINE-*.json ; python3 -m bench.median OUTDIR/lead-ENGINE-*.json
set -u
: "${BASE:?set BASE to the old checkout}" "${LEAD:?set LEAD to the new checkout}"
QUICK=${QUICK:-}
ENGINE=${1:-sqlite}; RUNS=${2:-1}; SCEN=${3:-send,fanout,sync,rooms}; OUT=${4:-/tmp/ab}
mkdir -p $OUT
# each tree writes its own config on first start: keep it per A/B (a config written by a newer tree can name
# options an older tree refuses)
DATA=${DATA:-$OUT/data}
for i in $(seq 1 $RUNS); do
  for side in base lead; do
    if [ $side = base ]; then cd "$BASE"; else cd "$LEAD"; fi
    PORT=$((18000 + RANDOM % 1000))
    if [ $ENGINE = postgres ]; then
      EXTRA=(--engine postgres --dsn "dbname=sup_ab_$side user=postgres host=127.0.0.1")
    else EXTRA=(); fi
    PYTHONPATH=$PWD python3 -m workers.cli bench-server "${EXTRA[@]}" --data-dir $DATA/$side-$ENGINE --port $PORT --fresh > $OUT/server-$side-$ENGINE-$i.log 2>&1 &
    SPID=$!
    # up to 5 minutes: with --fresh on PostgreSQL, DROP DATABASE waits for a checkpoint, which takes tens of
    # seconds on a machine whose disk other work keeps busy (the earlier 30 s bound ran the bench against nothing)
    for t in $(seq 1 1000); do
      curl -fs http://127.0.0.1:$PORT/_matrix/client/versions >/dev/null 2>&1 && break
      kill -0 $SPID 2>/dev/null || break
      sleep 0.3
    done
    PID=$SPID
    if ! curl -fs http://127.0.0.1:$PORT/_matrix/client/versions >/dev/null 2>&1; then
      echo "$side server did not start: see $OUT/server-$side-$ENGINE-$i.log"; kill $SPID 2>/dev/null; exit 1; fi
    PYTHONPATH="$LEAD" python3 -m bench --url http://127.0.0.1:$PORT --pid $PID --scenarios $SCEN $QUICK --out $OUT/$side-$ENGINE-$i.json --label $side > $OUT/bench-$side-$ENGINE-$i.log 2>&1
    kill $SPID 2>/dev/null; sleep 1; kill -9 $SPID 2>/dev/null
    wait $SPID 2>/dev/null
    echo "$side $ENGINE $i done: $(uptime)"
  done
done
