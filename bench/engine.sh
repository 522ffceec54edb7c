#!/usr/bin/env bash
# The engine benchmark and its PyTorch peer in the same run, then the ratio per
# configuration: Géron's model A (batch 32 and 256, 1 and 2 threads, frozen or
# not) and the CNN of experiments/specs/geron-cnn.yaml (batch 64, 1 and 2 threads,
# the first CNN_EXAMPLES task-A images).
# Usage: bench/engine.sh [BUILD_DIR] [extra args for model A's runs, e.g. --batch 32]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
cnn_examples=${CNN_EXAMPLES:-8192}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%F)" >&2
# The arithmetic ceiling first: the engine's GFLOP/s are read against it.
"$build/cli/seedproof" bench peak | tee "$out/peak.jsonl"
"$build/cli/seedproof" bench engine --epochs 2 "$@" | tee "$out/seedproof.jsonl"
"$build/cli/seedproof" bench engine --spec experiments/specs/geron-cnn.yaml \
  --examples "$cnn_examples" --batch 64 --threads 1 --threads 2 | tee -a "$out/seedproof.jsonl"
# Debian's interpreter: its python3-torch is the peer (a pyenv python3 may come first on PATH).
# At its best: with the OpenBLAS kernels that are fastest on this CPU (peer_blas.py
# times each) and none of the inherited OPENBLAS_* workarounds, for this command
# only (tests and CI keep the environment as it is). It says on stderr which BLAS
# and kernels it loaded. torch.set_num_threads does not reach OpenBLAS, whose
# threads are its own: a two-thread row runs with one OpenBLAS thread and with
# two, and the CNN in both of PyTorch's layouts; the fastest is the peer's figure.
peer_env=$(/usr/bin/python3 bench/peer_blas.py choose)
peer() {
  local threads=$1 blas_threads=$2
  shift 2
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $peer_env OPENBLAS_NUM_THREADS="$blas_threads" \
    /usr/bin/python3 bench/pytorch_peer.py --threads "$threads" "$@" | tee -a "$out/pytorch.jsonl"
}
for threads in 1 2; do
  for blas_threads in $(seq 1 "$threads"); do
    peer "$threads" "$blas_threads" --epochs 2 "$@"
    for layout in "" --channels-last; do
      peer "$threads" "$blas_threads" --model geron-cnn --examples "$cnn_examples" --batch 64 $layout
    done
  done
done

python3 - "$out/seedproof.jsonl" "$out/pytorch.jsonl" "$out/peak.jsonl" <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
peer = {}
for r in map(json.loads, open(sys.argv[2])):
    key = (r["model"], r["batch"], r["threads"], r["frozen"])
    if key not in peer or r["samples_per_s"] > peer[key]["samples_per_s"]:
        peer[key] = r
peak = {r["threads"]: r["gflops"] for r in map(json.loads, open(sys.argv[3]))}
print("| model | batch | threads | frozen | seedproof samples/s | GFLOP/s | of FMA peak | PyTorch samples/s | ratio |")
print("|---|---|---|---|---|---|---|---|---|")
for r in ours:
    p = peer.get((r["model"], r["batch"], r["threads"], r["frozen"]))
    how = f'{p["layout"]}, ' if r["model"] != "geron_a" else ""
    ps = f'{p["samples_per_s"]:,.0f} ({how}{p["blas_threads"]} BLAS)' if p else "-"
    ratio = f'{r["samples_per_s"] / p["samples_per_s"]:.2f}x' if p else "-"
    of_peak = f'{r["gflops"] / peak[r["threads"]]:.0%}' if r["threads"] in peak else "-"
    print(f'| {r["model"]} | {r["batch"]} | {r["threads"]} | {str(r["frozen"]).lower()} | '
          f'{r["samples_per_s"]:,.0f} | {r["gflops"]:.0f} | {of_peak} | {ps} | {ratio} |')
PY
