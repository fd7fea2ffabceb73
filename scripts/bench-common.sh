# Shared by scripts/bench-kv.sh and scripts/bench-ab.sh (sourced, not run): installs
# redis-server/redis-tools when missing, starts keel and Redis on free loopback ports in a
# scratch dir removed on exit, and runs redis-benchmark. Callers set KEEL, KEEL_ARGS, N,
# CLIENTS and TESTS first, and may set VALUE_SIZE (redis-benchmark -d, bytes; default
# its own 3) and KEYSPACE (redis-benchmark -r, default 100000).
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "installing redis-server and redis-tools (apt-get)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d /tmp/keel-bench-XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

wait_ping() { for _ in $(seq 1 300); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done; echo "server on port $1 did not answer PING" >&2; return 1; }

start_keel() { # tier [binary [extra flags]] -> KPID, KPORT (fresh data dir)
  local port bin=${2:-$KEEL}; port=$(free_port)
  rm -rf "$WORK/keel-$1"
  "$bin" --data-dir "$WORK/keel-$1" --resp-addr "127.0.0.1:$port" --durability "$1" ${3-$KEEL_ARGS} 2>"$WORK/keel-$1.log" &
  PIDS+=($!); KPID=$!; KPORT=$port; wait_ping "$port"
}
start_redis() { # persistence: always|none
  local port; port=$(free_port)
  mkdir -p "$WORK/redis-$1"
  local opts=(--port "$port" --bind 127.0.0.1 --dir "$WORK/redis-$1" --save "" --daemonize no --logfile "$WORK/redis-$1.log")
  if [ "$1" = always ]; then opts+=(--appendonly yes --appendfsync always); else opts+=(--appendonly no); fi
  redis-server "${opts[@]}" &
  PIDS+=($!); RPID=$!; RPORT=$port; wait_ping "$port"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
info_field() { # PORT SECTION FIELD -> the value of FIELD in INFO SECTION (empty if none)
  redis-cli -p "$1" info "$2" 2>/dev/null | tr -d '\r' | awk -F: -v f="$3" '$1 == f {print $2}'
}

# Keys spread over many tenants (SPREAD=1): each request goes to a random shard, so no
# connection is bound to one shard (no hand-off).
SPREAD_CMDS=("SET t__rand_int__:k v" "GET t__rand_int__:k")

# run PORT P -> lines "test,rps,p50"; with SPREAD=1 also SPREAD-SET and SPREAD-GET
# (the commands in SPREAD_CMDS), with APPEND=1 also APPEND (see bench-kv.sh). TESTS may
# be empty to run only those.
run() {
  local csv='
import csv, sys
prefix = sys.argv[1]
for row in csv.reader(sys.stdin):
    if not row or row[0] == "test": continue
    name = prefix + row[0].split(" ")[0]
    print(f"{name},{float(row[1]):.0f},{float(row[4]) if len(row) > 4 else 0:.3f}")'
  if [ -n "$TESTS" ]; then
    redis-benchmark -p "$1" -t "$TESTS" -n "$N" -c "$CLIENTS" -P "$2" -r "${KEYSPACE:-100000}" ${VALUE_SIZE:+-d "$VALUE_SIZE"} --csv 2>/dev/null | python3 -c "$csv" ""
  fi
  if [ "${APPEND:-0}" = 1 ]; then
    # One tenant ("a"), APPEND_KEYS keys: each grows by N/APPEND_KEYS appends.
    redis-benchmark -p "$1" -n "$N" -c "$CLIENTS" -P "$2" -r "${APPEND_KEYS:-100}" --csv APPEND a:__rand_int__ "$(head -c "${VALUE_SIZE:-3}" /dev/zero | tr '\0' x)" 2>/dev/null | python3 -c "$csv" ""
  fi
  if [ "${SPREAD:-0}" = 1 ]; then
    local c
    for c in "${SPREAD_CMDS[@]}"; do
      # shellcheck disable=SC2086 # the command's words are separate arguments
      redis-benchmark -p "$1" -n "$N" -c "$CLIENTS" -P "$2" -r "${KEYSPACE:-100000}" --csv $c 2>/dev/null | python3 -c "$csv" "SPREAD-"
    done
  fi
}


# build_label OUT -> which build a results file measured: this checkout's commit, ",
# uncommitted changes" if the tree differs from it (OUT itself excluded when it lies in
# the repository), and a warning when $KEEL is not this checkout's target/release/keel
# (then the commit says nothing about the binary: name its build by hand).
build_label() {
  local out=$1 top dirty= other=
  top=$(git rev-parse --show-toplevel 2>/dev/null) || { echo '?'; return; }
  case "$(realpath -m "$out")" in
    "$top"/*) git diff --quiet HEAD -- "$top" ":(exclude)$(realpath -m "$out")" 2>/dev/null || dirty=', uncommitted changes' ;;
    *) git diff --quiet HEAD -- "$top" 2>/dev/null || dirty=', uncommitted changes' ;;
  esac
  [ "$(realpath -m "$KEEL")" = "$(realpath -m "$top/target/release/keel")" ] || other="; the binary is not this checkout's target/release/keel"
  echo "$(git rev-parse --short HEAD)$dirty$other"
}
