#!/usr/bin/env bash
# GET and MSET -P 16 of two keel builds on a loaded keyspace (scripts/bench-ab.sh starts
# each test on a fresh, empty server, so its GET rows measure misses only). Per round and
# build: a fresh keel (`--durability relaxed`), 1M SETs over 100k keys (-P 16), then
# `redis-benchmark -t get -n 2000000 -r 100000 -P 16 -c 50` and `-t mset -n 300000`;
# A and B interleaved. Prints one line per round and build: requests/s, and the CPU
# seconds (user + system) the keel processes spent on each run — the steadier number when
# other work shares the machine.
#   scripts/bench-ab-loaded.sh KEEL_A KEEL_B        (ROUNDS="1 2 3" by default)
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/bench-ab-loaded.sh KEEL_A KEEL_B" >&2; exit 2; }
A=$1; B=$2
pid=; d=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "$d" ] && rm -rf "$d"' EXIT
echo "# A = $A, B = $B; HEAD $(git -C "$(dirname "$0")" rev-parse --short HEAD)"
# CPU seconds (user + system) used so far by the keel process $1 and its children.
cpu_s() { local t=0; for p in $1 $(pgrep -P "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "scale=2; $t / $(getconf CLK_TCK)" | bc; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for round in ${ROUNDS:-1 2 3}; do
  for name in A B; do
    bin=${!name}; d=$(mktemp -d); port=$(free_port)
    "$bin" --data-dir "$d" --resp-addr "127.0.0.1:$port" --durability relaxed 2>/dev/null & pid=$!
    for _ in $(seq 1 300); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
    redis-benchmark -p "$port" -t set -n 1000000 -r 100000 -P 16 -c 50 -q >/dev/null 2>&1
    c0=$(cpu_s "$pid")
    g=$(redis-benchmark -p "$port" -t get -n 2000000 -r 100000 -P 16 -c 50 --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
    c1=$(cpu_s "$pid")
    m=$(redis-benchmark -p "$port" -t mset -n 300000 -r 100000 -P 16 -c 50 --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
    c2=$(cpu_s "$pid")
    echo "round $round $name ($bin): GET $g MSET $m; CPU s: GET $(echo "$c1 - $c0" | bc) MSET $(echo "$c2 - $c1" | bc)"
    kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$d"; pid=; d=
  done
done
