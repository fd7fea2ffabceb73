#!/usr/bin/env bash
# KV benchmark: keel against redis-server with redis-benchmark, at equal promises, in
# one run, interleaved (DEVELOPERS: keel `kernel` vs Redis `appendonly yes, appendfsync
# always`; keel `relaxed` vs Redis without persistence).
#
#   scripts/bench-kv.sh [OUT]        (OUT defaults to bench-results/kv.md)
#
# Env: N (requests per test, default 200000), CLIENTS (default 50), TESTS
# (default set,get,incr,mset), KEEL (binary, default target/release/keel, built if missing),
# KEEL_ARGS (extra keel flags, e.g. "--router-threads 1").
# Installs redis-server/redis-tools with apt-get when missing. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-results/kv.md}
N=${N:-200000}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-set,get,incr,mset}
KEEL=${KEEL:-target/release/keel}
KEEL_ARGS=${KEEL_ARGS:-}

. "$(dirname "$0")/bench-common.sh"
[ -x "$KEEL" ] || cargo build --release -p keel-server

declare -A R
for pair in "kernel always" "relaxed none"; do
  set -- $pair; tier=$1; rp=$2
  for P in 1 16; do
    # Interleave: keel, redis, keel, redis — fresh servers each time; keep the better of two.
    for round in 1 2; do
      start_keel "$tier"; while IFS=, read -r t rps p50; do R["keel,$tier,$P,$t,$round"]="$rps,$p50"; done < <(run "$KPORT" "$P"); stop "$KPID"
      start_redis "$rp"; while IFS=, read -r t rps p50; do R["redis,$rp,$P,$t,$round"]="$rps,$p50"; done < <(run "$RPORT" "$P"); stop "$RPID"
      echo "done: $tier/$rp -P $P round $round" >&2
    done
  done
done

best() { # key-prefix -> "rps,p50" of the round with the higher rps
  local a=${R["$1,1"]:-0,0} b=${R["$1,2"]:-0,0}
  if [ "${a%%,*}" -ge "${b%%,*}" ]; then echo "$a"; else echo "$b"; fi
}

{
  echo "# KV benchmark: keel vs Redis (redis-benchmark)"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB RAM, Linux $(uname -r)"
  echo "- keel $("$KEEL" --version | awk '{print $2}') ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), default shards (= $(nproc)), flags: \`${KEEL_ARGS:-none}\`, release build; $(redis-server --version | awk '{print $1, $2, $3}')"
  echo "- command: \`${KEEL_ARGS:+KEEL_ARGS=\"$KEEL_ARGS\" }scripts/bench-kv.sh $OUT\` (N=$N CLIENTS=$CLIENTS TESTS=$TESTS): per row \`redis-benchmark -t $TESTS -n $N -c $CLIENTS -P {1,16} -r 100000 --csv\`,"
  echo "  fresh servers, keel and Redis interleaved, two rounds each, the better round reported."
  echo "- equal promises: keel \`--durability kernel\` (ack after fdatasync) vs Redis \`appendonly yes, appendfsync always\`;"
  echo "  keel \`--durability relaxed\` (ack after the batch's O_DIRECT write completed, fdatasync every 100 ms) vs Redis without persistence."
  echo
  for pair in "kernel always" "relaxed none"; do
    set -- $pair; tier=$1; rp=$2
    for P in 1 16; do
      echo "## keel $tier vs Redis appendfsync=$rp, -P $P"
      echo
      echo "| test | keel rps | redis rps | keel/redis | keel p50 ms | redis p50 ms |"
      echo "|---|---:|---:|---:|---:|---:|"
      for t in $(echo "$TESTS" | tr , ' '); do
        T=$(echo "$t" | tr a-z A-Z)
        k=$(best "keel,$tier,$P,$T"); r=$(best "redis,$rp,$P,$T")
        ratio=$(python3 -c "k=float('${k%%,*}'); r=float('${r%%,*}'); print(f'{k/r:.2f}' if r else 'n/a')")
        echo "| $T | ${k%%,*} | ${r%%,*} | $ratio | ${k##*,} | ${r##*,} |"
      done
      echo
    done
  done
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
