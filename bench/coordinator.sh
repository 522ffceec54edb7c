#!/usr/bin/env bash
# The coordinator benchmark and its Optuna peer in the same run, then both side
# by side. Usage: bench/coordinator.sh [BUILD_DIR] [WORKERS (200)] [TRIALS (20000)] [PEER_TRIALS (1000)]
# The peer gets fewer trials: at its rate 20,000 would take a quarter of an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
workers=${2:-200}
trials=${3:-20000}
peer_trials=${4:-1000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%F)" >&2
"$build/cli/seedproof" bench coordinator --workers "$workers" --trials "$trials" | tee "$out/seedproof.jsonl"
# Debian's interpreter: its python3-optuna is the peer (a pyenv python3 may come first on PATH).
# At its best, as engine.sh's peer: the fastest OpenBLAS kernels here, none of
# the inherited OPENBLAS_* workarounds (Optuna's ask/tell does little BLAS work).
peer_env=$(/usr/bin/python3 bench/peer_blas.py choose)
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $peer_env \
  /usr/bin/python3 bench/optuna_peer.py --workers "$workers" --trials "$peer_trials" | tee "$out/optuna.jsonl"

/usr/bin/python3 - "$out/seedproof.jsonl" "$out/optuna.jsonl" <<'PY'
import json, sys
rows = [("seedproof", json.loads(open(sys.argv[1]).read()))]
peer = json.loads(open(sys.argv[2]).read())
rows.append((peer["peer"], peer))
print("| system | workers | trials | trials/s | lease p50 | lease p99 |")
print("|---|---|---|---|---|---|")
for name, r in rows:
    print(f'| {name} | {r["workers"]} | {r["trials"]:,} | {r["trials_per_s"]:,.0f} | '
          f'{r["lease_p50_ms"]:.1f} ms | {r["lease_p99_ms"]:.1f} ms |')
print(f'seedproof / peer trials/s: {rows[0][1]["trials_per_s"] / peer["trials_per_s"]:.0f}x')
PY
