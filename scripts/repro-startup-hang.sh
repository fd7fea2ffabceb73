#!/usr/bin/env bash
# Hunts the startup hang (a shard process that logs nothing for a minute after it starts;
# seen under heavy load; cause: glommio parking with a task ready, see StartKicker in
# shard/src/process.rs): loops start keel → write a little → SIGKILL shard 0 → SIGTERM the
# group → start again at once. A keel not ready within 4 s is given 30 s more: if it gets
# ready, the round counts as slow; if not, the script prints the router's and the shards'
# kernel stacks, per-thread wait channels and gdb backtraces, then stops. shard_timeout
# is raised so the supervisor's startup progress check (which would restart the shard)
# stays out of the way. KEEL_LOG sets keel's log filter (e.g. keel_storage=debug).
#   scripts/repro-startup-hang.sh [KEEL_BINARY]    (ROUNDS=200 by default)
set -uo pipefail
B=${1:-target/debug/keel}
W=$(mktemp -d /tmp/keel-hang-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo 'shard_timeout = 3600000' > "$W/keel.toml"
for round in $(seq 1 "${ROUNDS:-200}"); do
  KEEL_LOG=${KEEL_LOG:-info} setsid "$B" --data-dir "$W/d" --resp-addr "127.0.0.1:$PORT" --shards 2 --router-threads 1 --config "$W/keel.toml" 2>"$W/log" &
  P=$!
  for _ in $(seq 1 200); do grep -q "serving RESP" "$W/log" 2>/dev/null && break; sleep 0.02; done
  if ! grep -q "serving RESP" "$W/log"; then
    echo "round $round: not ready after 4 s"; tail -5 "$W/log"
    # Slow (heavy load) or stuck? Give it 30 s more before looking.
    for _ in $(seq 1 300); do grep -q "serving RESP" "$W/log" 2>/dev/null && break; sleep 0.1; done
    if grep -q "serving RESP" "$W/log"; then
      echo "round $round: ready after all, within 34 s (slow, not stuck)"; slow=$((${slow:-0} + 1))
      redis-benchmark -p "$PORT" -t set -n 2000 -q >/dev/null 2>&1
      kill -9 "$(pgrep -P "$P" | head -1)"; sleep 0.1; kill -TERM -- -"$P"; wait "$P"
      continue
    fi
    echo "round $round: still not ready after 34 s"; tail -5 "$W/log"
    for s in "$P" $(pgrep -P "$P"); do
      echo "== shard pid $s wchan=$(cat "/proc/$s/wchan")"; cat "/proc/$s/stack" 2>/dev/null
      for t in /proc/"$s"/task/*; do echo "task $t $(cat "$t/comm") $(cat "$t/wchan") $(cut -d' ' -f3 "$t/stat")"; done
      gdb -p "$s" -batch -ex 'thread apply all bt 30' 2>/dev/null | grep -E "^#|^Thread" | grep -v "^#[0-9]* *0x[0-9a-f]* in \(std::\|core::\)" | head -400
    done
    kill -9 -- -"$P"; wait; exit 1
  fi
  redis-benchmark -p "$PORT" -t set -n 2000 -q >/dev/null 2>&1
  kill -9 "$(pgrep -P "$P" | head -1)"; sleep 0.1; kill -TERM -- -"$P"; wait "$P"
done
echo "no hang in ${ROUNDS:-200} rounds (${slow:-0} slower than 4 s)"; rm -rf "$W"
