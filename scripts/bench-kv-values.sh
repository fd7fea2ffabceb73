#!/usr/bin/env bash
# Large values and the shard cache: keel against Redis at equal promises (keel `kernel`
# vs Redis `appendfsync always`), GET and SET at -d 1024 and -d 16384, -P 1 and -P 16,
# once with a cache larger than the working set and once with the default cache, each
# with keel's cache hit rate and both servers' RSS; then the spread-tenant rows
# (`SET t__rand_int__:k v`, `GET t__rand_int__:k`, at both tiers). One
# scripts/bench-kv.sh run per table, collected in OUT.
#
#   scripts/bench-kv-values.sh [OUT]     (OUT defaults to bench-results/kv-values.md)
#
# Env: SIZES (default "1024 16384"), N (requests per test, default 200000), KEYSPACE
# (redis-benchmark -r, default 100000: with 16 KiB values the working set is ~1.6 GiB,
# and so is the large cache and Redis's RSS), CLIENTS, KEEL, KEEL_ARGS (as bench-kv.sh),
# NOTE (a line put at the top, e.g. that the run is preliminary).
#
# redis-benchmark's keys (`key:NNNNNNNNNNNN`) all have the tenant `key`, so one shard
# holds the whole working set: the large cache is the working set's cost
# (KEYSPACE × (SIZE + 512 B of bookkeeping and size-class rounding), plus 10%) on every
# shard.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-results/kv-values.md}
SIZES=${SIZES:-1024 16384}
export N=${N:-200000} KEYSPACE=${KEYSPACE:-100000} CLIENTS=${CLIENTS:-50}
TMP=$(mktemp -d /tmp/keel-kv-values-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# Drops the per-run header (title, machine, command: bench-kv.sh's first lines up to the
# first "## "), demotes the "## " sections to "### ".
body() { awk '/^## /{on=1} on' "$1" | sed 's/^## /### /'; }

parts=()
for size in $SIZES; do
  large=$(python3 -c "print(max(1 << 20, int($KEYSPACE * ($size + 512) * 1.1) // (1 << 20) * (1 << 20) + (1 << 20)))")
  for cache in large default; do
    f=$TMP/$size-$cache.md
    if [ "$cache" = large ]; then
      CACHE_BYTES=$large TESTS=set,get TIERS="kernel always" scripts/bench-kv.sh -d "$size" "$f" >/dev/null
      parts+=("$f|-d $size, cache_bytes = $large per shard (larger than the working set)")
    else
      TESTS=set,get TIERS="kernel always" scripts/bench-kv.sh -d "$size" "$f" >/dev/null
      parts+=("$f|-d $size, default cache_bytes (32 MiB per shard)")
    fi
  done
done
f=$TMP/spread.md
TESTS= SPREAD=1 scripts/bench-kv.sh "$f" >/dev/null
parts+=("$f|keys spread over many tenants (3-byte values)")

{
  echo "# Large values and the shard cache: keel vs Redis (redis-benchmark)"
  echo
  [ -n "${NOTE:-}" ] && { echo "**$NOTE**"; echo; }
  first=${parts[0]%%|*}
  sed -n '3,/^$/p' "$first" | grep '^- \(date\|machine\|keel \)' | sed 's/, flags: `[^`]*`//'
  echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
  echo "- command: \`${NOTE:+NOTE=… }SIZES=\"$SIZES\" N=$N KEYSPACE=$KEYSPACE CLIENTS=$CLIENTS scripts/bench-kv-values.sh $OUT\`: one \`scripts/bench-kv.sh\` per section"
  echo "  (fresh servers, keel and Redis interleaved, two rounds each, the better round reported); keel \`--durability kernel\`"
  echo "  vs Redis \`appendonly yes, appendfsync always\`; the spread rows also keel \`relaxed\` vs Redis without persistence."
  echo "- hit rate: keel's INFO cache_hits / (cache_hits + cache_misses) at the end of the run; RSS: INFO used_memory_rss"
  echo "  at the end of the run (keel: router + every shard), MiB. A GET of a key SET never wrote (about $(python3 -c "import math; print(f'{math.exp(-$N / $KEYSPACE) * 100:.0f}')")% of the keyspace"
  echo "  after the SET run) reads nothing and counts neither."
  echo
  for p in "${parts[@]}"; do
    echo "## ${p#*|}"
    echo
    grep -m1 '^- command:' "${p%%|*}" | sed 's/^- command:/- run:/'
    echo
    body "${p%%|*}"
  done
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
