#!/usr/bin/env bash
# The flake check: runs the process-level tests (cluster and RPC, run/resume and
# worker supervision, MPI groups, Slurm, Prometheus, headless Chromium) RUNS times
# in a row while a competing load keeps every core busy, and says how many runs
# failed. A test that passes only on an idle or fast machine fails here.
#   tests/flake_check.sh [BUILD_DIR] [RUNS]      (make flake: build/ and 5 runs)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
runs=${2:-5}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "flake_check: RUNS must be a positive integer, got '$runs'" >&2; exit 2; }
[[ -f $build/CTestTestfile.cmake ]] || { echo "flake_check: $build is not a configured build folder" >&2; exit 2; }
process_tests='^(Cluster\.|OnnxStudy\.|Rpc\.|SeedproofRun\.|SeedproofCluster\.|SeedproofCoordinator\.|SeedproofMetrics\.|SeedproofReport\.HtmlRenders|mpi_|slurm_|sbatch_|prometheus_|html_checker)'

# One busy loop per core, at the tests' own priority; gone when this script is.
load=()
stop_load() { for pid in "${load[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap stop_load EXIT
for _ in $(seq "$(nproc)"); do
  sh -c 'while :; do :; done' &
  load+=($!)
done

logs=$(mktemp -d /tmp/seedproof-flake-XXXXXX)
failed_runs=0
count=$(cd "$build" && ctest -N -R "$process_tests" | sed -n 's/^Total Tests: //p')
echo "flake check: $count process-level tests, $runs runs, ${#load[@]} busy loops on $(nproc) cores; logs in $logs"
for run in $(seq "$runs"); do
  start=$SECONDS
  if (cd "$build" && ctest -R "$process_tests" -j 2 --output-on-failure) > "$logs/run-$run.log" 2>&1; then
    echo "run $run: passed ($((SECONDS - start)) s)"
  else
    failed_runs=$((failed_runs + 1))
    echo "run $run: FAILED ($((SECONDS - start)) s):"
    sed -n '/The following tests FAILED/,$p' "$logs/run-$run.log" | grep -E '^\s+[0-9]+ - ' || true
  fi
done
echo "flake check: $((runs - failed_runs)) passed, $failed_runs failed"
((failed_runs == 0))
