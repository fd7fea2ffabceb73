#!/usr/bin/env bash
# KV benchmark: keel against redis-server with redis-benchmark, at equal promises, in
# one run, interleaved (DEVELOPERS: keel `kernel` vs Redis `appendonly yes, appendfsync
# always`; keel `relaxed` vs Redis without persistence).
#
#   scripts/bench-kv.sh [-d SIZE] [OUT]   (OUT defaults to bench-results/kv.md)
#
# -d SIZE: value size in bytes (redis-benchmark's -d; default its own, 3 bytes).
# Env: N (requests per test, default 200000), CLIENTS (default 50), TESTS
# (default set,get,incr,mset; empty: only the SPREAD rows), KEYSPACE (redis-benchmark -r, default 100000), TIERS
# (pairs "keel-tier redis-persistence", comma-separated, default "kernel always,relaxed
# none"), PS (pipeline depths, default "1 16"), CACHE_BYTES (keel --cache-bytes per
# shard; default keel's), SPREAD=1 (also SET/GET with keys over many tenants, see
# bench-common.sh), KEEL (binary, default target/release/keel, built if missing),
# KEEL_ARGS (extra keel flags, e.g. "--router-threads 1"), APPEND=1 (also APPEND rows:
# `redis-benchmark … APPEND a:__rand_int__ <value>` with a value of -d SIZE bytes (default
# 3) over APPEND_KEYS keys (-r, default 100), so each key grows by N/APPEND_KEYS appends),
# APPEND_BIG=1 (also, once per tier pair on fresh servers: 200 APPENDs of 1 MiB to one key
# on one connection, seconds, by scripts/append_big.py; needs redis-py).
# After each run it reads INFO: keel's cache hit rate (cache_hits / (hits + misses),
# every GET that found its key) and both servers' RSS (used_memory_rss:
# keel's router and shards together).
# Installs redis-server/redis-tools with apt-get when missing. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
VALUE_SIZE=
while getopts "d:" opt; do
  case $opt in
    d) VALUE_SIZE=$OPTARG ;;
    *) echo "usage: scripts/bench-kv.sh [-d SIZE] [OUT]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
OUT=${1:-bench-results/kv.md}
TIERS=${TIERS:-kernel always,relaxed none}
PS=${PS:-1 16}
N=${N:-200000}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS-set,get,incr,mset}
KEEL=${KEEL:-target/release/keel}
KEEL_ARGS=${KEEL_ARGS:-}
if [ -n "${CACHE_BYTES:-}" ]; then KEEL_ARGS="$KEEL_ARGS --cache-bytes $CACHE_BYTES"; fi

. "$(dirname "$0")/bench-common.sh"
[ -x "$KEEL" ] || cargo build --release -p keel-server

declare -A R
# After a run on PORT: "hit rate,RSS MiB" (hit rate "-" when nothing was read from
# the cache or the server has no cache).
memo() {
  local hits misses rss
  hits=$(info_field "$1" stats cache_hits); misses=$(info_field "$1" stats cache_misses)
  rss=$(info_field "$1" memory used_memory_rss)
  python3 -c "h, m, r = '$hits', '$misses', '$rss'
rate = f'{int(h) / (int(h) + int(m)):.2f}' if h and m and int(h) + int(m) else '-'
print(f'{rate},{int(r or 0) / 2**20:.0f}')"
}
IFS=, read -ra PAIRS <<< "$TIERS"
for pair in "${PAIRS[@]}"; do
  set -- $pair; tier=$1; rp=$2
  for P in $PS; do
    # Interleave: keel, redis, keel, redis — fresh servers each time; keep the better of two.
    for round in 1 2; do
      start_keel "$tier"; while IFS=, read -r t rps p50; do R["keel,$tier,$P,$t,$round"]="$rps,$p50"; done < <(run "$KPORT" "$P")
      R["keel,$tier,$P,mem,$round"]=$(memo "$KPORT"); stop "$KPID"
      start_redis "$rp"; while IFS=, read -r t rps p50; do R["redis,$rp,$P,$t,$round"]="$rps,$p50"; done < <(run "$RPORT" "$P")
      R["redis,$rp,$P,mem,$round"]=$(memo "$RPORT"); stop "$RPID"
      echo "done: $tier/$rp -P $P round $round" >&2
    done
  done
  if [ "${APPEND_BIG:-0}" = 1 ]; then
    start_keel "$tier"; R["keel,$tier,appendbig"]=$(python3 scripts/append_big.py "$KPORT"); stop "$KPID"
    start_redis "$rp"; R["redis,$rp,appendbig"]=$(python3 scripts/append_big.py "$RPORT"); stop "$RPID"
    echo "done: $tier/$rp APPEND 200 × 1 MiB" >&2
  fi
done

best() { # key-prefix -> "rps,p50" of the round with the higher rps
  local a=${R["$1,1"]:-0,0} b=${R["$1,2"]:-0,0}
  if [ "${a%%,*}" -ge "${b%%,*}" ]; then echo "$a"; else echo "$b"; fi
}

{
  echo "# KV benchmark: keel vs Redis (redis-benchmark${VALUE_SIZE:+, $VALUE_SIZE-byte values})"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB RAM, Linux $(uname -r)"
  echo "- keel $("$KEEL" --version | awk '{print $2}') ($(build_label "$OUT")), default shards (= $(nproc)), flags: \`${KEEL_ARGS:-none}\`, binary \`$KEEL\`; $(redis-server --version | awk '{print $1, $2, $3}')"
  echo "- command: \`${CACHE_BYTES:+CACHE_BYTES=$CACHE_BYTES }scripts/bench-kv.sh ${VALUE_SIZE:+-d $VALUE_SIZE }$OUT\` (N=$N CLIENTS=$CLIENTS TESTS=$TESTS KEYSPACE=${KEYSPACE:-100000}${SPREAD:+ SPREAD=$SPREAD}; keel flags: \`${KEEL_ARGS:-none}\`): per row \`redis-benchmark -t $TESTS -n $N -c $CLIENTS -P {$(echo $PS | tr ' ' ,)} -r ${KEYSPACE:-100000}${VALUE_SIZE:+ -d $VALUE_SIZE} --csv\`,"
  echo "  fresh servers, keel and Redis interleaved, two rounds each, the better round reported."
  [ "${APPEND:-0}" = 1 ] && echo "- APPEND rows: \`redis-benchmark -n $N -c $CLIENTS -P {$(echo $PS | tr ' ' ,)} -r ${APPEND_KEYS:-100} --csv APPEND a:__rand_int__ <${VALUE_SIZE:-3} bytes>\`: each of ${APPEND_KEYS:-100} keys grows by about $N/${APPEND_KEYS:-100} appends."
  [ "${APPEND_BIG:-0}" = 1 ] && echo "- APPEND 200 × 1 MiB: \`scripts/append_big.py PORT\` (redis-py, one connection, one key; fresh servers, one run each), seconds."
  [ "${SPREAD:-0}" = 1 ] && echo "- SPREAD-SET / SPREAD-GET rows: \`redis-benchmark -n $N -c $CLIENTS -P {$(echo $PS | tr ' ' ,)} -r ${KEYSPACE:-100000} --csv SET t__rand_int__:k v\` (and \`GET t__rand_int__:k\`): keys over many tenants, so over every shard."
  echo "- hit rate: keel's INFO cache_hits / (cache_hits + cache_misses) at the end of the run (every GET that found its key; a SET reads nothing and puts its value in the cache; values of at most inline_value_max bytes live in the keydir and are neither cached nor counted);"
  echo "  RSS: INFO used_memory_rss at the end of the run (keel: router + shards), MiB; both from the better round."
  echo "- equal promises: keel \`--durability kernel\` (ack after fdatasync) vs Redis \`appendonly yes, appendfsync always\`;"
  echo "  keel \`--durability relaxed\` (ack after the batch's O_DIRECT write completed, fdatasync every 100 ms) vs Redis without persistence."
  echo
  for pair in "${PAIRS[@]}"; do
    set -- $pair; tier=$1; rp=$2
    for P in $PS; do
      echo "## keel $tier vs Redis appendfsync=$rp, -P $P"
      echo
      # The memory figures of the better round by the first test's rps.
      first=$(echo "$TESTS" | cut -d, -f1 | tr a-z A-Z); [ -z "$first" ] && [ "${APPEND:-0}" = 1 ] && first=APPEND; first=${first:-SPREAD-SET}
      kr=1; [ "$(best "keel,$tier,$P,$first")" = "${R["keel,$tier,$P,$first,1"]:-}" ] || kr=2
      rr=1; [ "$(best "redis,$rp,$P,$first")" = "${R["redis,$rp,$P,$first,1"]:-}" ] || rr=2
      km=${R["keel,$tier,$P,mem,$kr"]:--,0}; rm_=${R["redis,$rp,$P,mem,$rr"]:--,0}
      echo "keel cache hit rate ${km%%,*}, keel RSS ${km##*,} MiB, Redis RSS ${rm_##*,} MiB"
      echo
      echo "| test | keel rps | redis rps | keel/redis | keel p50 ms | redis p50 ms |"
      echo "|---|---:|---:|---:|---:|---:|"
      tests=$(echo "$TESTS" | tr , ' ' | tr a-z A-Z); [ "${SPREAD:-0}" = 1 ] && tests="$tests SPREAD-SET SPREAD-GET"
      [ "${APPEND:-0}" = 1 ] && tests="$tests APPEND"
      for T in $tests; do
        k=$(best "keel,$tier,$P,$T"); r=$(best "redis,$rp,$P,$T")
        ratio=$(python3 -c "k=float('${k%%,*}'); r=float('${r%%,*}'); print(f'{k/r:.2f}' if r else 'n/a')")
        echo "| $T | ${k%%,*} | ${r%%,*} | $ratio | ${k##*,} | ${r##*,} |"
      done
      echo
    done
    if [ "${APPEND_BIG:-0}" = 1 ]; then
      echo "## 200 APPENDs of 1 MiB to one key: keel $tier vs Redis appendfsync=$rp"
      echo
      echo "| keel s | redis s |"
      echo "|---:|---:|"
      echo "| ${R["keel,$tier,appendbig"]} | ${R["redis,$rp,appendbig"]} |"
      echo
    fi
  done
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
