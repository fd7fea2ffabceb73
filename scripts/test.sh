#!/usr/bin/env bash
# The test command (README; .ci/run runs exactly this):
#   1. installs what the tests need and a fresh machine lacks (redis-tools for redis-cli
#      and redis-benchmark; redis-server for the differential test server/tests/difftest.rs;
#      a Python venv with redis-py under target/),
#   2. runs the Rust tests of every crate (unit, property and integration tests; the
#      integration tests start the real `keel` binary on free loopback ports),
#   3. runs the real-client smoke tests (redis-cli, redis-benchmark, redis-py in RESP2
#      and RESP3) against a freshly started keel.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v redis-server >/dev/null || need_apt+=(redis-server)
python3 -c 'import venv' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]}" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

VENV=target/pyvenv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import redis' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'redis>=5,<6'
fi

cargo build --workspace --all-targets
cargo test --workspace 2>&1 | tee target/test-output.txt
# keel-index's tests on aarch64 under qemu (NEON paths), and a macOS arm64 check.
scripts/test-aarch64.sh 2>&1 | tee target/aarch64-output.txt
"$VENV/bin/python" scripts/client_smoke.py target/debug/keel | tee target/smoke-output.txt
# One closing line for the whole run (cargo's per-binary lines are above).
python3 - <<'PY'
import re
passed = failed = 0
for f in ("target/test-output.txt", "target/aarch64-output.txt", "target/smoke-output.txt"):
    for line in open(f):
        m = re.search(r"(\d+) passed; (\d+) failed", line) or re.fullmatch(r"smoke: (\d+) passed, (\d+) failed\n?", line)
        if m:
            passed += int(m.group(1)); failed += int(m.group(2))
print(f"total: {passed} passed, {failed} failed")
PY
