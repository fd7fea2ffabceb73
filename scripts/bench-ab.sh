#!/usr/bin/env bash
# A/B of two keel builds against Redis without persistence, at keel's `relaxed` tier, in
# one run: per round and pipeline depth, A, B and Redis run back to back on fresh servers.
#
#   scripts/bench-ab.sh KEEL_A KEEL_B [OUT]     (OUT defaults to stdout only)
#
# Env: N (requests per test, default 100000), ROUNDS (default 3), PS (pipeline depths,
# default "1 16"), CLIENTS (default 50), TESTS (default set,get,incr,mset), SPREAD=1 (also
# SET/GET with keys over many tenants, see bench-common.sh), ARGS_A and ARGS_B (extra
# keel flags per side). Prints every round, then the median over the rounds
# per test: A, B and Redis rps, B/A, A/Redis and B/Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: scripts/bench-ab.sh KEEL_A KEEL_B [OUT]" >&2; exit 2; }
A=$1; B=$2; OUT=${3:-}
N=${N:-100000}; ROUNDS=${ROUNDS:-3}; PS=${PS:-1 16}; CLIENTS=${CLIENTS:-50}; TESTS=${TESTS:-set,get,incr,mset}
KEEL=$A; KEEL_ARGS=
. scripts/bench-common.sh

ROWS=$WORK/rows.csv
for round in $(seq 1 "$ROUNDS"); do
  for P in $PS; do
    start_keel relaxed "$A" "${ARGS_A:-}"; run "$KPORT" "$P" | sed "s/^/$round,$P,A,/" >> "$ROWS"; stop "$KPID"
    start_keel relaxed "$B" "${ARGS_B:-}"; run "$KPORT" "$P" | sed "s/^/$round,$P,B,/" >> "$ROWS"; stop "$KPID"
    start_redis none; run "$RPORT" "$P" | sed "s/^/$round,$P,redis,/" >> "$ROWS"; stop "$RPID"
    echo "done: round $round -P $P" >&2
  done
done

report() {
  echo "# keel A/B against Redis (tier relaxed vs no persistence)"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, Linux $(uname -r); $(redis-server --version | awk '{print $1, $2, $3}')"
  echo "- A: \`$A${ARGS_A:+ $ARGS_A}\`; B: \`$B${ARGS_B:+ $ARGS_B}\`"
  echo "- command: \`scripts/bench-ab.sh $A $B${OUT:+ $OUT}\` (N=$N ROUNDS=$ROUNDS PS=\"$PS\" CLIENTS=$CLIENTS TESTS=$TESTS SPREAD=${SPREAD:-0}):"
  echo "  per round and depth, A, B and Redis back to back on fresh servers, each \`redis-benchmark -t $TESTS -n $N -c $CLIENTS -P {depth} -r 100000\`"
  [ "${SPREAD:-0}" = 1 ] && echo "  and SPREAD-SET / SPREAD-GET: \`redis-benchmark -n $N -c $CLIENTS -P {depth} -r 100000 SET t__rand_int__:k v\` (and \`GET t__rand_int__:k\`): keys over ~100000 tenants"
  echo
  python3 - "$ROWS" <<'PY'
import csv, statistics, sys
rows = list(csv.reader(open(sys.argv[1])))
by = {}
for rnd, p, side, test, rps, _p50 in rows:
    by.setdefault((int(p), test), {}).setdefault(side, []).append(float(rps))
print("| -P | test | A rps | B rps | Redis rps | B/A | A/Redis | B/Redis | rounds (A / B / Redis) |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
for (p, test), d in sorted(by.items()):
    a, b, r = (statistics.median(d.get(k, [0])) for k in ("A", "B", "redis"))
    each = " / ".join(",".join(f"{x/1000:.0f}k" for x in d.get(k, [])) for k in ("A", "B", "redis"))
    print(f"| {p} | {test} | {a:.0f} | {b:.0f} | {r:.0f} | {b/a:.2f} | {a/r:.2f} | {b/r:.2f} | {each} |")
PY
}
if [ -n "$OUT" ]; then report > "$OUT"; cat "$OUT"; else report; fi
