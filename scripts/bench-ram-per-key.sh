#!/usr/bin/env bash
# RAM per key and restart time (issue 14, DESIGN §9): N keys of 16 bytes ("key:" + 12
# digits) with 3-byte values, all of one tenant, so one shard holds them, written with
#   redis-benchmark -t set -n N -r 100000000 -P 64
# into keel (one shard, durability relaxed: the promise does not change what RAM holds)
# and into Redis (no persistence). Prints a markdown table: keys, RSS growth, bytes per
# key, and keel's restart time (SIGTERM, start, until PING answers) with N keys. keel's
# writes of values over inline_value_max (default 16 B; the 3-byte values here stay in the
# keydir) also fill its value cache (at most cache_bytes): its bytes per key are given
# without the cache (RSS growth − INFO cache_used_bytes) and with it; after the restart
# the cache is empty.
# Usage: scripts/bench-ram-per-key.sh [KEEL_BINARY] (default target/release/keel); N=…
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL=${1:-target/release/keel}
N=${N:-2000000}
KEEL_ARGS="--shards 1"
TESTS=set CLIENTS=50
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
shard_pid() { pgrep -P "$1" | head -1; }
fill() { redis-benchmark -p "$1" -t set -n "$N" -r 100000000 -P 64 -q >/dev/null 2>&1; }
dbsize() { redis-cli -p "$1" dbsize; }

info() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }

echo "| server | keys | idle RSS (MiB) | RSS with keys (MiB) | of which value cache (MiB) | keydir (INFO, MiB) | bytes per key without the cache | bytes per key, all | restart to ready (s) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"

start_keel relaxed
sleep 1
S=$(shard_pid "$KPID"); idle=$(rss_kib "$S")
fill "$KPORT"; sleep 2
keys=$(dbsize "$KPORT"); full=$(rss_kib "$S"); cache=$(info "$KPORT" cache_used_bytes); kd=$(info "$KPORT" used_memory_keydir)
stop "$KPID"
t0=$(date +%s.%N)
"$KEEL" --data-dir "$WORK/keel-relaxed" --resp-addr "127.0.0.1:$KPORT" --durability relaxed $KEEL_ARGS 2>"$WORK/keel-restart.log" &
PIDS+=($!); KPID=$!
until redis-cli -p "$KPORT" ping 2>/dev/null | grep -q PONG; do sleep 0.02; done
t1=$(date +%s.%N)
sleep 3 # recovery's temporary tables freed and purged (jemalloc: ~1 s)
S=$(shard_pid "$KPID"); again=$(rss_kib "$S"); keys2=$(dbsize "$KPORT"); cache2=$(info "$KPORT" cache_used_bytes); kd2=$(info "$KPORT" used_memory_keydir)
stop "$KPID"
python3 - "$keys" "$idle" "$full" "$t0" "$t1" "$again" "$keys2" "$cache" "$kd" "$cache2" "$kd2" <<'PY'
import sys
keys, idle, full, t0, t1, again, keys2, cache, kd, cache2, kd2 = sys.argv[1:]
keys, idle, full, again, keys2 = int(keys), int(idle) * 1024, int(full) * 1024, int(again) * 1024, int(keys2)
cache, kd, cache2, kd2 = int(cache), int(kd), int(cache2), int(kd2)
M = 1 << 20
print(f"| keel shard | {keys} | {idle/M:.1f} | {full/M:.1f} | {cache/M:.1f} | {kd/M:.1f} | {(full-idle-cache)/keys:.1f} | {(full-idle)/keys:.1f} | |")
print(f"| keel shard after restart | {keys2} | | {again/M:.1f} | {cache2/M:.1f} | {kd2/M:.1f} | {(again-idle-cache2)/keys2:.1f} | {(again-idle)/keys2:.1f} | {float(t1)-float(t0):.2f} |")
PY

start_redis none
sleep 1
idle=$(rss_kib "$RPID")
fill "$RPORT"; sleep 2
keys=$(dbsize "$RPORT"); full=$(rss_kib "$RPID")
stop "$RPID"
python3 - "$keys" "$idle" "$full" <<'PY'
import sys
keys, idle, full = map(int, sys.argv[1:])
print(f"| redis-server (no persistence) | {keys} | {idle/1024:.1f} | {full/1024:.1f} | | | | {(full-idle)*1024/keys:.1f} | |")
PY
