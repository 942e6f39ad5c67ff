#!/usr/bin/env bash
# Instructions (valgrind callgrind, Ir) of a SUP server per operation: repeatable on a loaded machine, where CPU time
# per operation moves ±15 % from run to run. Counts only the server process (like the bench's server CPU figure).
# usage: bench/callgrind_ops.sh TREE OUTDIR [sqlite|postgres] [send|sync]
#   send: Ir per message = (Ir of `--send-messages 120` - Ir of `--send-messages 20`) / 1000  (10 senders; same set-up)
#   sync: Ir per initial sync = (Ir of `--sync-repeats 25` - Ir of `--sync-repeats 5`) / 20  (100 rooms x 20 messages)
# Compare trees with runs made side by side: the count per message moves a few per cent with the rate the machine
# allows (it sets the persister's batch sizes). Slow: ~5-15 minutes per run.
set -u
TREE=$1; OUT=$2; ENGINE=${3:-sqlite}; SCEN=${4:-send}
rm -rf "$OUT"; mkdir -p "$OUT"
BENCH_DIR=$(cd "$(dirname "$0")/.." && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')  # the interpreter itself: valgrind does not follow a shim's exec
cd "$TREE"
PORT=$((19000 + RANDOM % 500))
if [ "$ENGINE" = postgres ]; then
  EXTRA=(--engine postgres --dsn "dbname=sup_callgrind_$(basename "$OUT" | tr -c 'a-z0-9\n' '_') user=postgres host=127.0.0.1")
else EXTRA=(); fi
PYTHONPATH=$PWD timeout 3600 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/cg.%p" \
  "$PY" -m workers.cli bench-server "${EXTRA[@]}" --data-dir "$OUT/data" --port $PORT --fresh > "$OUT/server.log" 2>&1 &
SPID=$!
for t in $(seq 1 2000); do
  curl -fs http://127.0.0.1:$PORT/_matrix/client/versions >/dev/null 2>&1 && break
  kill -0 $SPID 2>/dev/null || { echo "server died: $OUT/server.log"; exit 1; }
  sleep 0.3
done
VPID=$(pgrep -P $SPID | head -1)
B=(timeout 2400 env PYTHONPATH="$BENCH_DIR" python3 -m bench --url http://127.0.0.1:$PORT --request-timeout 300)
if [ "$SCEN" = send ]; then
  "${B[@]}" --scenarios send --send-messages 20 --out "$OUT/warm.json" > "$OUT/warm.log" 2>&1
  SMALL=(--scenarios send --send-messages 20); LARGE=(--scenarios send --send-messages 120); DIV=1000
else
  "${B[@]}" --scenarios sync --sync-rooms 5 --sync-repeats 1 --sync-incremental-repeats 10 --out "$OUT/warm.json" > "$OUT/warm.log" 2>&1
  SMALL=(--scenarios sync --sync-repeats 5 --sync-incremental-repeats 10); LARGE=(--scenarios sync --sync-repeats 25 --sync-incremental-repeats 10); DIV=20
fi
callgrind_control -i on $VPID > /dev/null
for run in small large; do
  callgrind_control -z $VPID > /dev/null
  if [ $run = small ]; then ARGS=("${SMALL[@]}"); else ARGS=("${LARGE[@]}"); fi
  "${B[@]}" "${ARGS[@]}" --out "$OUT/$run.json" > "$OUT/$run.log" 2>&1
  callgrind_control -d $run $VPID > /dev/null
done
callgrind_control -i off $VPID > /dev/null
kill $VPID; sleep 3; kill -9 $VPID 2>/dev/null
python3 - "$OUT" $DIV "$SCEN" <<'PY'
import glob, re, sys
out, div, scen = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tot = {}
for f in glob.glob(out + "/cg.*"):
    t = open(f, errors="replace").read()
    m = re.search(r"^desc: Trigger: .*?\b(small|large)\b", t, re.M)
    s = re.search(r"^(?:totals|summary): (\d+)", t, re.M)
    if m and s:
        tot[m.group(1)] = tot.get(m.group(1), 0) + int(s.group(1))
if "small" in tot and "large" in tot:
    print("Ir per %s: %.0f" % ("message" if scen == "send" else "initial sync", (tot["large"] - tot["small"]) / div))
else:
    print("missing dumps:", tot)
PY
