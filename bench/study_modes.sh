#!/bin/bash
# Whole-study wall time, Géron's spec on 10 seeds, three ways on this machine:
# two single-rank workers; one 2-rank worker group with small trials one per rank
# (the default); one 2-rank group running every trial data parallel.
#   bench/study_modes.sh [BUILD_DIR]     (prints one JSON line per way)
# Runs in a network namespace with only loopback (mpirun listens on every
# interface), like the tests.
set -euo pipefail
build=$(readlink -f "${1:-build}")
repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ "${SEEDPROOF_IN_NETNS:-}" != 1 ]]; then
  exec env SEEDPROOF_IN_NETNS=1 unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh \
    "$0" "$build"
fi
seedproof=$build/cli/seedproof
work=$(mktemp -d /tmp/seedproof-study-modes-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
sed 's/^seeds: {count: 20, source: 20}$/seeds: 10/' "$repo/experiments/specs/geron.yaml" > "$work/spec.yaml"
echo "study-modes-bench-token-0123456789" > "$work/token"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_oob_tcp_if_include=lo \
  OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mpi_yield_when_idle=1

run_mode() {  # name, then the command that runs the workers (COORD in it)
  local name=$1; shift
  local dir=$work/$name
  mkdir -p "$dir"
  "$seedproof" coordinator --listen 127.0.0.1:0 --db "$dir/db" --token-file "$work/token" \
    --port-file "$dir/ports" --metrics-listen "" > "$dir/coordinator.log" 2>&1 &
  local coordinator=$!
  for _ in $(seq 100); do [[ -s $dir/ports ]] && break; sleep 0.05; done
  local address=127.0.0.1:$(head -1 "$dir/ports")
  local sweep
  sweep=$("$seedproof" submit "$work/spec.yaml" --coordinator "$address" --token-file "$work/token")
  local start=$(date +%s.%N)
  COORD=$address "$@"
  local end=$(date +%s.%N)
  local status
  status=$("$seedproof" status "$sweep" --coordinator "$address" --token-file "$work/token")
  kill $coordinator; wait $coordinator 2>/dev/null || true
  printf '{"mode":"%s","seconds":%.2f,"status":"%s"}\n' "$name" "$(awk "BEGIN {print $end - $start}")" \
    "$(echo "$status" | grep -o '[0-9]*/[0-9]* finished')"
}

workers() {
  local args=(worker --coordinator "$COORD" --token-file "$work/token" --exit-when-idle
              --metrics-listen "")
  "$seedproof" "${args[@]}" --id a > /dev/null 2>&1 &
  local a=$!
  "$seedproof" "${args[@]}" --id b > /dev/null 2>&1
  wait $a
}
group() {  # extra worker arguments
  mpirun --bind-to none -np 2 "$seedproof" worker --coordinator "$COORD" \
    --token-file "$work/token" --exit-when-idle --metrics-listen "" "$@" > /dev/null 2>&1
}
run_mode two-single-rank-workers workers
run_mode group-one-trial-per-rank group
run_mode group-all-data-parallel group --split-min-examples 0
