#!/usr/bin/env bash
# Runs keel-index's tests (the distance kernels' NEON paths among them) on aarch64
# under qemu user-mode emulation, and checks that the crate builds for macOS on Apple
# silicon. scripts/test.sh calls it; it also runs alone:
#   scripts/test-aarch64.sh
#
# 1. installs what is missing: the rustup targets aarch64-unknown-linux-gnu and
#    aarch64-apple-darwin; Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and
#    qemu-user (as root, or with sudo),
# 2. cross-builds the keel-index test binary (the linker is set in this script's
#    environment only; normal builds are unchanged),
# 3. runs it under `qemu-aarch64 -L /usr/aarch64-linux-gnu` (the default CPU, `max`,
#    has NEON and DotProd, so both Arm paths are tested; `kernel_paths` fails if NEON
#    is not detected), then prints the paths tested by `kernel_paths` with `-cpu max`
#    and `-cpu cortex-a53` (no DotProd) and fails unless they are the expected ones,
# 4. `cargo check`s keel-index for aarch64-apple-darwin (no linking).
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu

installed_targets=$(rustup target list --installed)
for t in "$TARGET" aarch64-apple-darwin; do
  if ! grep -qx "$t" <<<"$installed_targets"; then
    echo "test-aarch64: rustup target add $t" >&2
    rustup target add "$t"
  fi
done

need_apt=()
command -v aarch64-linux-gnu-gcc >/dev/null || need_apt+=(gcc-aarch64-linux-gnu)
[ -e "$SYSROOT/lib/crt1.o" ] || need_apt+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need_apt+=(qemu-user)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test-aarch64: installing ${need_apt[*]}" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# Release: the emulated debug build of the 0..=1100 sweep is several times slower.
# Overflow checks stay on, so an i32 overflow in a kernel still fails a test.
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
bin=$(cargo test -p keel-index --release --target "$TARGET" --lib --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "keel_index":
        print(m["executable"])')
if [ -z "$bin" ]; then
  # Show cargo's errors.
  cargo test -p keel-index --release --target "$TARGET" --lib --no-run
  echo "test-aarch64: no test binary built" >&2
  exit 1
fi

echo "test-aarch64: running $bin under qemu-aarch64 (default CPU)"
qemu-aarch64 -L "$SYSROOT" "$bin" 2>&1 | tee target/test-aarch64-output.txt
status=${PIPESTATUS[0]}
if [ "$status" != 0 ] || ! grep -q "test result: ok" target/test-aarch64-output.txt; then
  echo "test-aarch64: FAILED (exit $status)" >&2
  exit 1
fi

# Which paths ran: the default CPU must run both Arm paths, cortex-a53 (no DotProd)
# exactly scalar and neon.
for cpu in max cortex-a53; do
  case $cpu in
    max) want="kernel paths tested: scalar, neon, neon+dotprod (best: neon+dotprod)" ;;
    cortex-a53) want="kernel paths tested: scalar, neon (best: neon)" ;;
  esac
  got=$(qemu-aarch64 -L "$SYSROOT" -cpu "$cpu" "$bin" --exact distance::tests::kernel_paths --nocapture 2>&1 | grep "kernel paths tested" || true)
  echo "test-aarch64: -cpu $cpu: ${got:-no kernel_paths output}"
  if [ "$got" != "$want" ]; then
    echo "test-aarch64: FAILED: -cpu $cpu should print: $want" >&2
    exit 1
  fi
done

echo "test-aarch64: cargo check -p keel-index --target aarch64-apple-darwin"
cargo check -q -p keel-index --target aarch64-apple-darwin
echo "test-aarch64: ok"
