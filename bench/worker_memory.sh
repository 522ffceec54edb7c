#!/bin/bash
# A study's wall time and each local worker's peak resident memory (VmHWM):
#   bench/worker_memory.sh [BUILD_DIR] [SPEC] [WORKERS]
# defaults: build, experiments/specs/geron.yaml, 2. Prints one JSON line. Reads
# every worker's /proc status until it exits (VmHWM only grows, so the last
# reading is its peak), then checks the study wrote its results.
set -euo pipefail
build=$(readlink -f "${1:-build}")
repo=$(cd "$(dirname "$0")/.." && pwd)
spec=${2:-$repo/experiments/specs/geron.yaml}
workers=${3:-2}
work=$(mktemp -d /tmp/seedproof-worker-memory-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
start=$(date +%s.%N)
"$build/cli/seedproof" run "$spec" --out "$work/out" --workers "$workers" > "$work/run.log" 2>&1 &
run=$!
declare -A peak
while kill -0 "$run" 2>/dev/null; do
  for pid in $(pgrep -P "$run" || true); do
    kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n $kb ]] && (( kb > ${peak[$pid]:-0} )) && peak[$pid]=$kb
  done
  sleep 0.2
done
wait "$run" || { cat "$work/run.log"; exit 1; }
end=$(date +%s.%N)
[[ -s $work/out/results.jsonl ]] || { echo "no results" >&2; exit 1; }
max=0
list=""
for pid in "${!peak[@]}"; do
  list+="${list:+, }$((peak[$pid] / 1024))"
  (( peak[$pid] > max )) && max=${peak[$pid]}
done
printf '{"spec": "%s", "workers": %d, "wall_s": %.1f, "worker_peak_rss_mb": [%s], "max_mb": %d}\n' \
  "$(basename "$spec")" "$workers" "$(echo "$end - $start" | bc)" "$list" $((max / 1024))
