#!/usr/bin/env bash
# Installs every Debian package seedproof needs that this machine lacks.
# Idempotent: a machine that has everything runs no apt command at all.
#   deploy/install-deps.sh          build + test dependencies
#   deploy/install-deps.sh --test   also what the tests check against: scipy (the
#                                   statistics), numpy and PIL (datasets written in
#                                   every format), headless Chromium (the HTML report),
#                                   the Prometheus server (metrics, dashboard, alerts),
#                                   iproute2 (mpirun runs in a loopback-only namespace),
#                                   Slurm and MUNGE (a single-node cluster in a test),
#                                   python3-onnx, PyTorch and the ONNX backend test suite
#                                   (models made elsewhere, for the importer),
#                                   clang 14 with libFuzzer and the sanitizers (the
#                                   fuzz targets, tests/fuzz), Python's grpcio
#                                   (an independent client attacks the
#                                   coordinator, tests/attack), and
#                                   onnxruntime-node from the npm registry (the
#                                   exported models run in it), in
#                                   ~/.cache/seedproof/onnxruntime
#   deploy/install-deps.sh --bench  also the peers the benchmarks measure against
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkgconf git
  libabsl-dev libdnnl-dev ocl-icd-opencl-dev zlib1g-dev
  libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libssl-dev libsqlite3-dev
  protobuf-compiler libprotobuf-dev protobuf-compiler-grpc libgrpc++-dev
  prometheus-cpp-dev libcivetweb-dev libcurl4-openssl-dev
  libopenmpi-dev openmpi-bin
  openssl
  libpng-dev libjpeg62-turbo-dev libzip-dev libcsv-dev
  libonnx-dev
  dataset-fashion-mnist python3-sklearn
)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(python3 python3-scipy python3-numpy python3-pil chromium prometheus iproute2
             slurm-wlm munge
             python3-onnx libonnx-testdata python3-torch
             clang-14 libclang-rt-14-dev libomp-14-dev
             python3-grpcio python3-grpc-tools)
  # Node.js from Debian, unless a node and npm are here already (NodeSource's
  # nodejs bundles npm and conflicts with Debian's npm package).
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages+=(nodejs npm)
  fi
fi
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3 python3-torch python3-numpy libopenblas0-pthread python3-threadpoolctl python3-optuna)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if (( ${#missing[@]} > 0 )); then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# onnxruntime-node, CPU only: its install script would download GPU binaries from
# outside the npm registry, and the CPU ones are in the package (TOOLCHAIN.md).
if [[ "${1:-}" == "--test" ]]; then
  ort_dir="$HOME/.cache/seedproof/onnxruntime"
  if [[ ! -f "$ort_dir/node_modules/onnxruntime-node/package.json" ]]; then
    echo "install-deps: npm install onnxruntime-node@1.20.1 in $ort_dir" >&2
    mkdir -p "$ort_dir"
    [[ -f "$ort_dir/package.json" ]] || echo '{"private": true}' > "$ort_dir/package.json"
    (cd "$ort_dir" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error \
                        onnxruntime-node@1.20.1 >/dev/null)
  fi
fi
