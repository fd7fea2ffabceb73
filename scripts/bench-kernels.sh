#!/usr/bin/env bash
# Distance-kernel micro-benchmark (index/bench/benches/kernels.rs): every *_rows kernel
# on every path this CPU has, and simsimd for the same metrics, at dims
# 128/384/768/1024, over 64 MiB of rows (larger than L2) and over 256 KiB (in L2).
# Rewrites the part of bench-results/kernels.md below its marker line with the CPU,
# its flags, the load, this command and the numbers. Takes a few minutes; run it on a
# quiet machine.
#   scripts/bench-kernels.sh
# Environment: KERNELS_BENCH_BIG_KIB (65536), KERNELS_BENCH_SMALL_KIB (256),
# KERNELS_BENCH_MIN_MS (250, minimum time per measurement).
set -euo pipefail
cd "$(dirname "$0")/.."
# The bench crate is a workspace of its own (simsimd stays out of keel's builds); its
# build goes under keel's ignored target/.
export CARGO_TARGET_DIR=target/kernel-bench
export KERNELS_BENCH_COMMAND="scripts/bench-kernels.sh${KERNELS_BENCH_BIG_KIB:+ (KERNELS_BENCH_BIG_KIB=$KERNELS_BENCH_BIG_KIB)}${KERNELS_BENCH_SMALL_KIB:+ (KERNELS_BENCH_SMALL_KIB=$KERNELS_BENCH_SMALL_KIB)}${KERNELS_BENCH_MIN_MS:+ (KERNELS_BENCH_MIN_MS=$KERNELS_BENCH_MIN_MS)}, i.e. cargo bench --manifest-path index/bench/Cargo.toml --bench kernels -- --out bench-results/kernels.md"
cargo bench --manifest-path index/bench/Cargo.toml --bench kernels -- --out "$PWD/bench-results/kernels.md"
