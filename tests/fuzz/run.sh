#!/usr/bin/env bash
# Runs every fuzz target over its corpus: the seeds (seeds.py), the regression
# corpus (regressions/<target>, read only) and what earlier runs found in WORK.
#
#   tests/fuzz/run.sh FUZZ_BUILD BUILD SECONDS [WORK]
#
# FUZZ_BUILD holds the libFuzzer binaries (`ninja fuzzers`, -DSEEDPROOF_FUZZ=ON);
# BUILD the ordinary build, whose seedproof makes the model and results seeds.
# Each target runs SECONDS; `make test` gives each a few, `make fuzz` a long run.
# A crash, leak, timeout or sanitizer report fails the run: the input is kept as
# WORK/crashes/<target>-..., and belongs, once fixed, in regressions/<target>.
# Prints each target's executions, coverage and corpus size.
set -euo pipefail
fuzz_build=$(realpath "$1") build=$(realpath "$2") seconds=$3
here=$(dirname "$(realpath "$0")")
work=${4:-$(mktemp -d /tmp/seedproof-fuzz-XXXXXX)}
mkdir -p "$work/crashes"
if [[ ! -d $work/seeds ]]; then
  /usr/bin/python3 "$here/seeds.py" "$build/cli/seedproof" "$work/seeds" >/dev/null
fi
failed=0
for binary in "$fuzz_build"/tests/fuzz/*_fuzz; do
  name=$(basename "$binary" _fuzz)
  corpus=$work/corpus/$name
  mkdir -p "$corpus"
  log=$work/$name.log
  status=0
  # -rss_limit_mb: a reader that wants gigabytes for a few bytes is a finding.
  "$binary" "$corpus" "$work/seeds/$name" "$here/regressions/$name" \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=1048576 \
    -print_final_stats=1 -artifact_prefix="$work/crashes/$name-" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  printf '%-13s %10s execs  cov %6s  corpus %5d  ' "$name" "${execs:-?}" "${cov:-?}" \
    "$(find "$corpus" -type f | wc -l)"
  if [[ $status -ne 0 ]]; then
    failed=1
    echo "FAILED (exit $status): $log"
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -8 | sed 's/^/    /'
  else
    echo ok
  fi
done
exit $failed
