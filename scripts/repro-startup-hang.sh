#!/usr/bin/env bash
# Hunts the rare startup hang (a shard process that logs nothing for a minute after it
# starts; seen a few times in test runs under heavy load, never explained): loops start
# keel → write a little → SIGKILL shard 0 → SIGTERM the group → start again at once, and
# when a new keel is not ready within 4 s, prints the stuck shards' kernel stacks,
# per-thread wait channels and gdb backtraces, then stops. shard_timeout is raised so
# the supervisor's startup progress check (which would restart the shard) stays out of
# the way.
#   scripts/repro-startup-hang.sh [KEEL_BINARY]    (ROUNDS=200 by default)
set -uo pipefail
B=${1:-target/debug/keel}
W=$(mktemp -d /tmp/keel-hang-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo 'shard_timeout = 3600000' > "$W/keel.toml"
for round in $(seq 1 "${ROUNDS:-200}"); do
  setsid "$B" --data-dir "$W/d" --resp-addr "127.0.0.1:$PORT" --shards 2 --router-threads 1 --config "$W/keel.toml" 2>"$W/log" &
  P=$!
  for _ in $(seq 1 200); do grep -q "serving RESP" "$W/log" 2>/dev/null && break; sleep 0.02; done
  if ! grep -q "serving RESP" "$W/log"; then
    echo "round $round: not ready after 4 s"; tail -5 "$W/log"
    for s in $(pgrep -P "$P"); do
      echo "== shard pid $s wchan=$(cat "/proc/$s/wchan")"; cat "/proc/$s/stack" 2>/dev/null
      for t in /proc/"$s"/task/*; do echo "task $t $(cat "$t/comm") $(cat "$t/wchan") $(cut -d' ' -f3 "$t/stat")"; done
      gdb -p "$s" -batch -ex 'thread apply all bt 30' 2>/dev/null | grep -E "^#|^Thread" | head -60
    done
    kill -9 -- -"$P"; wait; exit 1
  fi
  redis-benchmark -p "$PORT" -t set -n 2000 -q >/dev/null 2>&1
  kill -9 "$(pgrep -P "$P" | head -1)"; sleep 0.1; kill -TERM -- -"$P"; wait "$P"
done
echo "no hang in ${ROUNDS:-200} rounds"; rm -rf "$W"
