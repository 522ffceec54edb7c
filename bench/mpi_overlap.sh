#!/usr/bin/env bash
# Two ranks against one, with and without the gradients' sum overlapping the
# backward pass (issue 18, item 2). Géron's model A on all 43,986 task-A images,
# global batch 256, one thread per rank; each configuration runs ROUNDS times,
# interleaved (R=1, R=2 one sum after the pass, R=2 in buckets of BUCKET_KIB), so
# the VM's drift lands on all of them alike. Prints one line per run (the mean of
# epochs 2..EPOCHS: epoch 1 warms up) and then the medians.
# Usage: bench/mpi_overlap.sh [BUILD_DIR] [ROUNDS] [BUCKET_KIB]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rounds=${2:-3}
bucket=${3:-256}
epochs=3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# mpirun listens on every interface: a network namespace with only loopback.
isolate=(unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%F)" >&2
run() {
  local ranks=$1 bucket_kib=$2
  "${isolate[@]}" mpirun --bind-to none --mca btl self,vader -np "$ranks" \
    "$build/cli/seedproof" bench mpi --epochs "$epochs" --bucket-kib "$bucket_kib" |
    grep '"epoch"' | tee -a "$out" >&2
}
for _ in $(seq "$rounds"); do
  run 1 0
  run 2 0
  run 2 "$bucket"
done

/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
runs = {}
lines = [json.loads(l) for l in open(sys.argv[1])]
# Each run's epochs 2.. (epoch 1 warms up), in the order they ran.
current = []
for l in lines:
    if l["epoch"] == 1:
        current = []
    if l["epoch"] > 1:
        current.append(l)
    if l["epoch"] == max(x["epoch"] for x in lines):
        key = (l["ranks"], l["bucket_kib"] if l["ranks"] > 1 else 0)
        runs.setdefault(key, []).append((
            statistics.mean(x["samples_per_s"] for x in current),
            statistics.mean(x["allreduce_ms_per_step"] for x in current),
            statistics.mean(x["after_backward_ms_per_step"] for x in current),
            current[-1]["overlapped_share"]))
one = statistics.median(r[0] for r in runs[(1, 0)])
print("| ranks | bucket | samples/s, each run | median x one rank's median | reduction ms/step | "
      "of which after the backward pass | floats whose sum started during it |")
print("|---|---|---|---|---|---|---|")
for (ranks, bucket), rs in sorted(runs.items()):
    speed = statistics.median(r[0] for r in rs)
    print("| %d | %s | %s | %.2fx | %.2f | %.2f | %.0f%% |" % (
        ranks, "%d KiB" % bucket if bucket else "-", ", ".join("%.0f" % r[0] for r in rs),
        speed / one, statistics.median(r[1] for r in rs), statistics.median(r[2] for r in rs),
        100 * rs[-1][3]))
PY
