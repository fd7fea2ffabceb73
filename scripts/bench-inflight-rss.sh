#!/usr/bin/env bash
# RSS per process while a shard serves pipelined GETs of large values (issue 14's
# default-cache target: a shard's RSS under cache_bytes + keydir + 16 MiB), for one or
# more keel builds, interleaved, on fresh servers at the `relaxed` tier:
#
#   scripts/bench-inflight-rss.sh KEEL [KEEL …]
#
# Per round and build: start keel (default config unless KEEL_ARGS), write KEYS keys
# `key:%012d` (redis-benchmark's key names for -r KEYS) of SIZE bytes with redis-cli
# --pipe, then `redis-benchmark -t get -d SIZE -P P -c CLIENTS -n N -r KEYS` (one
# tenant: the connections are handed to one shard) while VmRSS of the router and of
# every shard is read from /proc every 100 ms. Prints per run: GET rps, the serving
# shard's RSS after the writes and its median and max during the GETs, the router's
# max, and the shard's INFO keydir, cache and inflight fields after the run.
# Env: SIZE (default 16384), KEYS (100000), N (200000), P (16), CLIENTS (50), ROUNDS
# (2), KEEL_ARGS (extra keel flags for every build).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/bench-inflight-rss.sh KEEL [KEEL …]" >&2; exit 2; }
SIZE=${SIZE:-16384}; KEYS=${KEYS:-100000}; N=${N:-200000}; P=${P:-16}; CLIENTS=${CLIENTS:-50}; ROUNDS=${ROUNDS:-2}
KEEL=$1; KEEL_ARGS=${KEEL_ARGS:-}; TESTS=
. scripts/bench-common.sh

rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
shard_pids() { pgrep -P "$1" | sort -n; }

fill() { # PORT: KEYS keys of SIZE bytes
  python3 - "$KEYS" "$SIZE" <<'PY' | redis-cli -p "$1" --pipe >/dev/null
import sys
keys, size = int(sys.argv[1]), int(sys.argv[2])
value = b"x" * size
out = sys.stdout.buffer
for i in range(keys):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, size, value))
PY
}

echo "| round | build | GET rps | shard RSS after writes (MiB) | shard RSS during GETs, median / max (MiB) | router RSS max (MiB) | keydir (MiB) | cache used (MiB) | inflight peak (MiB) |"
echo "|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  for bin in "$@"; do
    start_keel relaxed "$bin" "$KEEL_ARGS"
    fill "$KPORT"
    # The serving shard: the one with the highest RSS after the writes (it holds every key).
    best=; most=-1
    for pid in $(shard_pids "$KPID"); do
      r=$(rss_mib "$pid")
      if awk -v a="$r" -v b="$most" 'BEGIN {exit !(a > b)}'; then most=$r; best=$pid; fi
    done
    after_writes=$(rss_mib "$best")
    samples=$WORK/samples; : > "$samples"; rm -f "$WORK/stop"
    ( while [ ! -e "$WORK/stop" ] && [ -e "/proc/$best" ]; do echo "$(rss_mib "$best") $(rss_mib "$KPID")" >> "$samples"; sleep 0.1; done ) &
    sampler=$!
    rps=$(redis-benchmark -p "$KPORT" -t get -d "$SIZE" -P "$P" -c "$CLIENTS" -n "$N" -r "$KEYS" --csv 2>/dev/null \
      | awk -F, '$1 == "\"GET\"" {gsub(/"/, "", $2); printf "%.0f", $2}') || rps="failed: $(grep -c 'not responding' "$WORK/keel-relaxed.log") shard timeouts"
    touch "$WORK/stop"; wait "$sampler" 2>/dev/null || true
    med=$(awk '{print $1}' "$samples" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    max=$(awk '{print $1}' "$samples" | sort -n | tail -1)
    rmax=$(awk '{print $2}' "$samples" | sort -n | tail -1)
    mib() { awk -v b="$(info_field "$KPORT" memory "$1")" 'BEGIN {printf "%.1f", b / 1048576}'; }
    echo "| $round | \`$bin\` | $rps | $after_writes | $med / $max | $rmax | $(mib used_memory_keydir) | $(mib cache_used_bytes) | $( [ -n "$(info_field "$KPORT" memory inflight_peak_bytes)" ] && mib inflight_peak_bytes || echo -) |"
    stop "$KPID"
  done
done
