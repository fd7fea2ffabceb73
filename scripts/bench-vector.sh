#!/usr/bin/env bash
# Vector benchmark matrix: `keel bench` on flat indexes of every kind, one fresh keel per
# configuration (free loopback port, scratch data dir removed on exit), into one file.
#
#   scripts/bench-vector.sh [OUT]        (OUT defaults to bench-results/vector-flat.md)
#
# Rows: minilm-100k (cosine) f32, int8 (l_search $L_INT8), binary (l_search $L_BINARY and
# $L_BINARY2) at 1 and 8 clients with --kv-probe; bigann10k and fmnistsmall (l2) for
# each kind at 1 and 8 clients; filtered searches on minilm-100k (f32 and int8) at each
# selectivity of FILTERS (percent of the vectors; payload `bucket=<id % 100>`,
# `FILTER "bucket < P"`, recall against brute force over the matching vectors).
# Env: KEEL (binary, default target/release/keel, built if missing), KEEL_ARGS (extra keel
# flags), KEEL_DATA (data sets, default ~/.cache/keel-data; a missing set is made with
# ../shared/data/make-data, or MAKE_DATA), SETS (default "minilm-100k bigann10k
# fmnistsmall"), L_INT8 (100), L_BINARY (400), L_BINARY2 (1000), FILTERS ("10 1"; empty:
# none).
# Everything in OUT from the line `<!-- notes -->` on is kept when it is rewritten.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-results/vector-flat.md}
KEEL=${KEEL:-target/release/keel}
KEEL_ARGS=${KEEL_ARGS:-}
DATA=${KEEL_DATA:-$HOME/.cache/keel-data}
MAKE_DATA=${MAKE_DATA:-../shared/data/make-data}
SETS=${SETS:-minilm-100k bigann10k fmnistsmall}
L_INT8=${L_INT8:-100}
L_BINARY=${L_BINARY:-400}
L_BINARY2=${L_BINARY2:-1000}
FILTERS=${FILTERS-10 1}
TESTS= # bench-common.sh's redis-benchmark runs are not used here

. "$(dirname "$0")/bench-common.sh"
[ -x "$KEEL" ] || cargo build --release -p keel-server

dataset() { # name -> its directory, made with make-data when missing
  local dir="$DATA/$1"
  if [ ! -f "$dir/gt.ivecs" ] || [ ! -f "$dir/base.fvecs" ]; then
    echo "making data set $1 with $MAKE_DATA" >&2
    "$MAKE_DATA" "$1" "$dir" >&2
  fi
  echo "$dir"
}

SECTIONS=()
# bench TITLE SET KIND L [keel bench flags…]: a fresh keel, one `keel bench`, one section.
bench() {
  local title=$1 set=$2 kind=$3 l=$4; shift 4
  local dir n=${#SECTIONS[@]}; dir=$(dataset "$set")
  echo "== $title (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  start_keel kernel
  "$KEEL" bench --addr "127.0.0.1:$KPORT" --data "$dir" --kind "$kind" --l-search "$l" \
    --server-pid "$KPID" --out "$WORK/section-$n.md" "$@" >&2
  stop "$KPID"
  {
    echo "## $title"
    echo
    echo "Server: \`$KEEL --data-dir <fresh temp dir> --resp-addr 127.0.0.1:<free port> --durability kernel${KEEL_ARGS:+ $KEEL_ARGS}\`"
    echo
    tail -n +3 "$WORK/section-$n.md" # without the report's own title
    echo
  } > "$WORK/section-$n.final.md"
  SECTIONS+=("$WORK/section-$n.final.md")
}

for set in $SETS; do
  probe=(); [ "$set" = minilm-100k ] && probe=(--kv-probe)
  bench "$set f32" "$set" f32 100 "${probe[@]}"
  bench "$set int8, l_search $L_INT8" "$set" int8 "$L_INT8" "${probe[@]}"
  bench "$set binary, l_search $L_BINARY" "$set" binary "$L_BINARY" "${probe[@]}"
  [ "$set" = minilm-100k ] && bench "$set binary, l_search $L_BINARY2" "$set" binary "$L_BINARY2" "${probe[@]}"
  if [ "$set" = minilm-100k ]; then
    for p in $FILTERS; do
      bench "$set f32, FILTER $p%" "$set" f32 100 --filter-percent "$p"
      bench "$set int8, l_search $L_INT8, FILTER $p%" "$set" int8 "$L_INT8" --filter-percent "$p"
    done
  fi
done

NOTES=$(sed -n '/^<!-- notes -->$/,$p' "$OUT" 2>/dev/null || true)
{
  echo "# Vector benchmark: flat indexes (f32, int8, binary)"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB RAM, Linux $(uname -r)"
  echo "- keel $("$KEEL" --version | awk '{print $2}') ($(build_label "$OUT")), release build, default shards (= $(nproc)), durability \`kernel\`, flags: \`${KEEL_ARGS:-none}\`"
  echo "- command: \`${KEEL_ARGS:+KEEL_ARGS=\"$KEEL_ARGS\" }SETS=\"$SETS\" L_INT8=$L_INT8 L_BINARY=$L_BINARY L_BINARY2=$L_BINARY2 scripts/bench-vector.sh $OUT\`;"
  echo "  each section below is one fresh keel and one \`keel bench\` (its command line is in the section)."
  echo "- l_search: f32 is exact and ignores it; int8 and binary re-rank the best max(k, l_search) candidates with the f32 originals from the vLog."
  echo
  echo "## Summary"
  echo
  python3 - "${SECTIONS[@]}" <<'PY'
import re, sys
rows = []
for path in sys.argv[1:]:
    text = open(path).read()
    title = text.splitlines()[0][3:]
    rss = re.search(r"- Server RSS after load: ([\d.]+ MiB).*?PSS ([\d.]+ MiB)", text)
    end = re.search(r"- Server RSS at end: ([\d.]+ MiB)", text)
    settled = re.search(r"- Server RSS \d+ s after load[^:]*: ([\d.]+ MiB)", text)
    table = [l for l in text.splitlines() if re.match(r"\| \d", l)]
    for line in table:
        c = [x.strip() for x in line.strip("|").split("|")]
        probe = c[7].split("/")[1] if len(c) > 7 and c[7] != "-" else "-"
        probe_set = c[8].split("/")[1] if len(c) > 8 and c[8] != "-" else "-"
        mem = (rss.group(1), rss.group(2)) if rss else ("?", "?")
        rows.append((title, c[0], c[2], c[3], c[4], c[6], *mem, settled.group(1) if settled else "-", end.group(1) if end else "?", probe, probe_set))
print("| configuration | clients | QPS | p50 ms | p99 ms | recall@10 | RSS after load | PSS after load | RSS 2 s after load | RSS at end | KV GET p99 ms | KV SET p99 ms |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print("| " + " | ".join(r) + " |")
PY
  echo
  cat "${SECTIONS[@]}"
  if [ -n "$NOTES" ]; then echo "$NOTES"; fi
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
