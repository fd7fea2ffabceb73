#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60), one after another, each on
# one core (libFuzzer -jobs=1 -workers=1), on the nightly toolchain (cargo-fuzz needs it:
# `cargo install cargo-fuzz --locked`). Not part of scripts/test.sh (too slow).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Targets: protocol/fuzz (resp_request, resp_reply, shard_frame, handoff), storage/fuzz
# (vlog_record).
# Corpora grow in <crate>/fuzz/corpus/<target>/ (seeded here when empty; not in git),
# crashes land in <crate>/fuzz/artifacts/<target>/, the libFuzzer log of each run in
# target/fuzz-logs/<target>.log. Prints, per target, the inputs tried, the corpus size,
# coverage (cov/ft of libFuzzer's last status line) and whether it crashed; exits 1 if
# any target crashed. Reproduce a crash with
#   (cd <crate>/fuzz && cargo +nightly fuzz run <target> artifacts/<target>/<file>)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

secs=${1:-60}
shift || true
all=(protocol:resp_request protocol:resp_reply protocol:shard_frame protocol:handoff storage:vlog_record)
if [ $# -gt 0 ]; then
  want=("$@")
else
  want=()
fi

command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 2; }

# A few hand-written valid inputs per target (each input's first byte is the target's
# mode byte; see the target's doc comment).
seed() {
  local dir=$1 name=$2 bytes=$3
  mkdir -p "$dir"
  printf "$bytes" > "$dir/$name"
}
seed_corpus() {
  local dir=$1 target=$2
  [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] && return
  case $target in
    resp_request)
      seed "$dir" multibulk '\x00*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n'
      seed "$dir" inline '\x00SET k "v\\x41\\n" '"'"'a b'"'"'\r\nPING\n'
      seed "$dir" small_limits '\x80\x08\x04\x20\x40\x00*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9\r\n123456789\r\n'
      ;;
    resp_reply)
      # mode 0 (default limits): RESP2 replies; RESP3 types; small limits (bulk 8, 4 elements, depth 2).
      seed "$dir" resp2 '\x00+OK\r\n-ERR x\r\n:-12\r\n$3\r\nfoo\r\n$-1\r\n*2\r\n$1\r\na\r\n*-1\r\n'
      seed "$dir" resp3 '\x00%%2\r\n+a\r\n,1.5\r\n$1\r\nb\r\n~1\r\n#t\r\n_\r\n=7\r\ntxt:abc\r\n(123\r\n!5\r\nERR x\r\n|1\r\n+k\r\n:1\r\n>1\r\n,inf\r\n'
      seed "$dir" small_limits '\x80\x08\x04\x02*2\r\n*1\r\n$8\r\n12345678\r\n:1\r\n'
      # One past each small limit (an error): bulk of 9, 5 elements, depth 3.
      seed "$dir" over_bulk '\x80\x08\x04\x02$9\r\n123456789\r\n'
      seed "$dir" over_count '\x80\x08\x04\x02*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n'
      seed "$dir" over_depth '\x80\x08\x04\x02*1\r\n*1\r\n*1\r\n:1\r\n'
      ;;
    shard_frame)
      # mode 0 (default limit); request frame GET k, the same in database 5; reply frame Bulk "v".
      seed "$dir" request '\x00\x19\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x02\x00\x00\x00\x03\x00\x00\x00GET\x01\x00\x00\x00k'
      seed "$dir" request_db '\x00\x1a\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03\x05\x02\x00\x00\x00\x03\x00\x00\x00GET\x01\x00\x00\x00k'
      seed "$dir" reply '\x00\x0f\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x04\x01\x00\x00\x00v'
      seed "$dir" reply_map '\x02\x1c\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x02\x09\x01\x00\x00\x00\x01\x02\x00\x00\x00OK\x08\x01\x00\x00\x00\x0b\x01'
      ;;
    handoff)
      # take (db 0), return (db 5) with unserved bytes.
      seed "$dir" take_return '\x13\x00\x00\x00\x01\x07\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x19\x00\x00\x00\x02\x07\x00\x00\x00\x00\x00\x00\x00\x02\x05\x00\x00\x00\x00\x00\x00\x00\x05PING\r\n'
      ;;
    vlog_record)
      # mode 1 (reseal): a put record key/value; mode 2: writer ops from bytes.
      seed "$dir" put '\x01\x00\x00\x00\x00\x08\x00\x00\x00\x01\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x05\x00\x00\x00keyvalue'
      seed "$dir" batch '\x01\x00\x00\x00\x00\x1b\x00\x00\x00\x03\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x01\x00\x01\x00\x00\x00\x01\x00\x00\x00a1\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00b'
      seed "$dir" ops '\x02\x00\x03\x05keyvalue\x01\x02\x00kk\x04\x01\x01ab'
      ;;
  esac
}

mkdir -p target/fuzz-logs
crashed=0
summary=()
for entry in "${all[@]}"; do
  crate=${entry%%:*} target=${entry#*:}
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $target "* ]]; then
    continue
  fi
  dir=$root/$crate/fuzz
  log=$root/target/fuzz-logs/$target.log
  seed_corpus "$dir/corpus/$target" "$target"
  echo "fuzz.sh: $target for ${secs}s" >&2
  rm -f "$dir/fuzz-0.log"
  status=0
  # -jobs=1 -workers=1: one worker process on one core; libFuzzer writes its output to
  # fuzz-0.log in the crate's fuzz dir.
  (cd "$dir" && cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -jobs=1 -workers=1) \
    > "$log.driver" 2>&1 || status=$?
  [ -f "$dir/fuzz-0.log" ] && mv "$dir/fuzz-0.log" "$log"
  [ -f "$log" ] || cp "$log.driver" "$log"
  stat=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  runs=$(sed -nE 's/^Done ([0-9]+) runs.*/\1/p' "$log" | tail -1)
  [ -n "$runs" ] || runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$stat")
  cov=$(sed -nE 's/.*(cov: [0-9]+ ft: [0-9]+).*/\1/p' <<<"$stat")
  corpus=$(ls "$dir/corpus/$target" | wc -l)
  if [ $status -ne 0 ] || grep -qE '^==[0-9]+==ERROR|ERROR: libFuzzer|panicked at' "$log"; then
    verdict="CRASHED (exit $status; see $log and $crate/fuzz/artifacts/$target/)"
    crashed=1
  else
    verdict="no crash"
  fi
  summary+=("$(printf '%-13s %12s inputs  corpus %5s  %-22s %s' "$target" "${runs:-?}" "$corpus" "$cov" "$verdict")")
done

echo
printf '%s\n' "${summary[@]}"
exit $crashed
