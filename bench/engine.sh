#!/usr/bin/env bash
# The engine benchmark and its PyTorch peer in the same run, then the ratio per
# configuration. Usage: bench/engine.sh [BUILD_DIR] [extra args for both, e.g. --batch 32]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%F)" >&2
# The arithmetic ceiling first: the engine's GFLOP/s are read against it.
"$build/cli/seedproof" bench peak | tee "$out/peak.jsonl"
"$build/cli/seedproof" bench engine --epochs 2 "$@" | tee "$out/seedproof.jsonl"
# Debian's interpreter: its python3-torch is the peer (a pyenv python3 may come first on PATH).
# At its best: with the OpenBLAS kernels that are fastest on this CPU (peer_blas.py
# times each) and none of the inherited OPENBLAS_* workarounds, for this command
# only (tests and CI keep the environment as it is). It says on stderr which BLAS
# and kernels it loaded.
peer_env=$(/usr/bin/python3 bench/peer_blas.py choose)
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $peer_env OPENBLAS_NUM_THREADS=1 \
  /usr/bin/python3 bench/pytorch_peer.py --epochs 2 "$@" | tee "$out/pytorch.jsonl"

python3 - "$out/seedproof.jsonl" "$out/pytorch.jsonl" "$out/peak.jsonl" <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
peer = {(r["batch"], r["threads"], r["frozen"]): r for r in map(json.loads, open(sys.argv[2]))}
peak = {r["threads"]: r["gflops"] for r in map(json.loads, open(sys.argv[3]))}
print("| batch | threads | frozen | seedproof samples/s | GFLOP/s | of FMA peak | PyTorch samples/s | ratio |")
print("|---|---|---|---|---|---|---|---|")
for r in ours:
    p = peer.get((r["batch"], r["threads"], r["frozen"]))
    ps = f'{p["samples_per_s"]:,.0f}' if p else "-"
    ratio = f'{r["samples_per_s"] / p["samples_per_s"]:.2f}x' if p else "-"
    of_peak = f'{r["gflops"] / peak[r["threads"]]:.0%}' if r["threads"] in peak else "-"
    print(f'| {r["batch"]} | {r["threads"]} | {str(r["frozen"]).lower()} | '
          f'{r["samples_per_s"]:,.0f} | {r["gflops"]:.0f} | {of_peak} | {ps} | {ratio} |')
PY
