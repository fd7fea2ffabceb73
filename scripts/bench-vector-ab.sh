#!/usr/bin/env bash
# A/B of two keel builds on one vector data set, interleaved: per round, for each kind,
# A then B, each a fresh keel and one `keel bench --clients $CLIENTS --kv-probe`.
#
#   scripts/bench-vector-ab.sh KEEL_A KEEL_B [OUT]     (OUT defaults to stdout only)
#
# Env: SET (data set, default minilm-100k), KINDS (default "f32 int8"), L (l_search of
# int8 and binary, default 100), CLIENTS (default "1,8"), ROUNDS (default 3), KEEL_DATA
# (data sets, default ~/.cache/keel-data). Prints QPS, p99 and recall@10 per round, then
# per build and client count the median QPS of each kind over the rounds and each
# kind's ratio to f32 (from the medians), with the INFO re-rank counters of the last
# round.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: scripts/bench-vector-ab.sh KEEL_A KEEL_B [OUT]" >&2; exit 2; }
A=$1; B=$2; OUT=${3:-}
SET=${SET:-minilm-100k}; KINDS=${KINDS:-f32 int8}; L=${L:-100}; CLIENTS=${CLIENTS:-1,8}; ROUNDS=${ROUNDS:-3}
DIR=${KEEL_DATA:-$HOME/.cache/keel-data}/$SET
[ -f "$DIR/gt.ivecs" ] || { echo "no data set in $DIR (make it with ../shared/data/make-data $SET $DIR)" >&2; exit 2; }
KEEL=$A; KEEL_ARGS=; TESTS=
. scripts/bench-common.sh

ROWS=$WORK/rows.csv
for round in $(seq 1 "$ROUNDS"); do
  for kind in $KINDS; do
    for side in A B; do
      bin=$A; [ "$side" = B ] && bin=$B
      start_keel kernel "$bin"
      echo "== round $round $kind $side (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
      "$bin" bench --addr "127.0.0.1:$KPORT" --data "$DIR" --kind "$kind" --l-search "$L" --clients "$CLIENTS" \
        --server-pid "$KPID" --kv-probe --out "$WORK/r.md" >/dev/null
      reads=$(info_field "$KPORT" stats vector_rerank_reads); skipped=$(info_field "$KPORT" stats vector_rerank_skipped)
      searches=$(info_field "$KPORT" stats vector_searches)
      stop "$KPID"
      # | clients | queries | QPS | p50 ms | p99 ms | recall@1 | recall@10 | KV GET | KV SET |
      grep -E '^\| [0-9]' "$WORK/r.md" | awk -F'|' -v r="$round" -v k="$kind" -v s="$side" -v rd="${reads:--}" -v sk="${skipped:--}" -v n="${searches:--}" \
        '{gsub(/ /,""); print r","k","s","$2","$4","$6","$8","$9","rd","sk","n}' >> "$ROWS"
    done
  done
done

report() {
  echo "A = \`$A\`, B = \`$B\`; data set $SET, l_search $L (int8, binary), durability \`kernel\`, $ROUNDS rounds interleaved (per round and kind: A, then B)."
  echo
  echo "| round | kind | build | clients | QPS | p99 ms | recall@10 | KV GET p50/p99/max ms |"
  echo "|---:|---|---|---:|---:|---:|---:|---|"
  awk -F, '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$ROWS"
  echo
  python3 - "$ROWS" <<'PY'
import csv, statistics, sys
rows = list(csv.reader(open(sys.argv[1])))
kinds = list(dict.fromkeys(r[1] for r in rows))
clients = list(dict.fromkeys(r[3] for r in rows))
med = {}
for k in kinds:
    for s in "AB":
        for c in clients:
            q = [float(r[4]) for r in rows if r[1] == k and r[2] == s and r[3] == c]
            if q:
                med[k, s, c] = statistics.median(q)
print("| kind | clients | A median QPS | B median QPS | B/A | A ratio to f32 | B ratio to f32 |")
print("|---|---:|---:|---:|---:|---:|---:|")
for k in kinds:
    for c in clients:
        a, b = med.get((k, "A", c)), med.get((k, "B", c))
        fa, fb = med.get(("f32", "A", c)), med.get(("f32", "B", c))
        ratio = lambda x, y: f"{x / y:.2f}" if x and y else "-"
        print(f"| {k} | {c} | {a:.0f} | {b:.0f} | {ratio(b, a)} | {ratio(a, fa)} | {ratio(b, fb)} |")
print()
print("INFO stats of the last round per kind and build (every client count's searches, recall runs included):")
print()
for k in kinds:
    for s in "AB":
        last = [r for r in rows if r[1] == k and r[2] == s][-1]
        print(f"- {k} {s}: vector_searches {last[10]}, vector_rerank_reads {last[8]}, vector_rerank_skipped {last[9]}")
PY
}
if [ -n "$OUT" ]; then report | tee -a "$OUT"; else report; fi
