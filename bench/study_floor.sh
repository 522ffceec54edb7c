#!/usr/bin/env bash
# A whole study against its compute floor, and per core against a plain PyTorch
# loop of the same protocol, in the same run.
#
#   bench/study_floor.sh [BUILD_DIR] [SEEDS] [PEER_SEEDS]
#
# The study: experiments/specs/geron.yaml with SEEDS seeds, each with its own
# source model (default 4), and Géron's schedule only (what the peer runs), by
# `seedproof run` on 2 single-thread workers. Its floor: the plan's arithmetic
# (`seedproof plan --json`: estimated_gflop, training only) at the FMA ceiling
# `bench peak` measures for 2 threads in the same run. The peer:
# bench/geron_loop_peer.py on PEER_SEEDS seeds (default 1), one thread, OpenBLAS
# at its best (peer_blas.py). Prints one JSON line for each, then the ratios.
set -euo pipefail
build=$(readlink -f "${1:-build}")
seeds=${2:-4}
peer_seeds=${3:-1}
repo=$(cd "$(dirname "$0")/.." && pwd)
seedproof=$build/cli/seedproof
work=$(mktemp -d /tmp/seedproof-study-floor-XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%F)" >&2
sed -e "s/^seeds: .*/seeds: {count: $seeds, source: $seeds}/" -e '/^    frozen: /d' \
  -e '/^    gentle: /d' "$repo/experiments/specs/geron.yaml" > "$work/spec.yaml"
gflop=$("$seedproof" plan "$work/spec.yaml" --json | /usr/bin/python3 -c \
  'import json, sys; print(json.load(sys.stdin)["estimated_gflop"])')
peak=$("$seedproof" bench peak --threads 2 | /usr/bin/python3 -c \
  'import json, sys; print(json.loads(sys.stdin.readline())["gflops"])')
start=$(date +%s.%N)
"$seedproof" run "$work/spec.yaml" --out "$work/run" --workers 2 > "$work/run.log" 2>&1
end=$(date +%s.%N)
trials=$(grep -c . "$work/run/results.jsonl" || true)
/usr/bin/python3 - "$gflop" "$peak" "$start" "$end" "$seeds" "$trials" > "$work/ours.json" <<'PY'
import json, sys
gflop, peak, start, end = map(float, sys.argv[1:5])
wall = end - start
print(json.dumps({"study": "geron, geron schedule", "seeds": int(sys.argv[5]),
                  "trials": int(sys.argv[6]), "gflop": round(gflop, 1),
                  "peak_gflops_2_threads": round(peak, 2), "floor_s": round(gflop / peak, 2),
                  "wall_s": round(wall, 2), "of_floor": round(wall / (gflop / peak), 3),
                  "core_seconds_per_seed": round(2 * wall / int(sys.argv[5]), 2)}))
PY
cat "$work/ours.json"

peer_env=$(/usr/bin/python3 "$repo/bench/peer_blas.py" choose)
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $peer_env OPENBLAS_NUM_THREADS=1 \
  /usr/bin/python3 "$repo/bench/geron_loop_peer.py" --seeds "$peer_seeds" | tee "$work/peer.json"
/usr/bin/python3 - "$work/ours.json" "$work/peer.json" <<'PY'
import json, sys
ours, peer = (json.load(open(p)) for p in sys.argv[1:3])
print(f'wall {ours["wall_s"]:.0f} s = {ours["of_floor"]:.2f}x the floor ({ours["floor_s"]:.0f} s); '
      f'per core and seed: seedproof {ours["core_seconds_per_seed"]:.1f} s, '
      f'PyTorch loop {peer["core_seconds_per_seed"]:.1f} s: '
      f'{peer["core_seconds_per_seed"] / ours["core_seconds_per_seed"]:.2f}x')
PY
