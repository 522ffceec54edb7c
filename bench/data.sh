#!/usr/bin/env bash
# Reading datasets: `seedproof bench data` and its Python peer (numpy and PIL, as
# torchvision's datasets read) on the same files, in the same run, one core each.
# The files are the first N training and M test images of Fashion-MNIST written in
# every format by tests/data/write_formats.py.
#   bench/data.sh [BUILD_DIR] [N] [M]      defaults: build 20000 5000
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
train=${2:-20000}
test=${3:-5000}
dir=$(mktemp -d /tmp/seedproof-data-bench-XXXXXX)
trap 'rm -rf "$dir"' EXIT

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%F)" >&2
/usr/bin/python3 tests/data/write_formats.py "$dir/files" --train "$train" --test "$test"
taskset -c 0 "$build/cli/seedproof" bench data --dir "$dir/files" | tee "$dir/seedproof.jsonl"
taskset -c 0 /usr/bin/python3 bench/data_peer.py "$dir/files" | tee "$dir/peer.jsonl"
python3 - "$dir/seedproof.jsonl" "$dir/peer.jsonl" <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
peer = {r["format"]: r for r in map(json.loads, open(sys.argv[2]))}
print("| format | images | seedproof images/s (read, decode, hash) | of it hashing | numpy/PIL images/s | ratio |")
print("|---|---|---|---|---|---|")
for r in ours:
    p = peer.get(r["format"])
    print(f'| {r["format"]} | {r["images"]:,} | {r["images_per_s"]:,.0f} | '
          f'{r["hash_seconds"] / r["seconds"]:.0%} | '
          f'{p["images_per_s"]:,.0f} | {r["images_per_s"] / p["images_per_s"]:.2f}x |')
PY
