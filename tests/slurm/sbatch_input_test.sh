#!/bin/bash
# The sbatch scripts refuse bad settings with a message naming the variable and a
# non-zero exit, before they start anything. Run directly with bash (as Slurm's
# batch step would), no cluster needed; the coordinator's bad listen address
# reaches the real binary, which refuses it before binding. In a network
# namespace with only loopback, so a check that regressed (and let mpirun or the
# coordinator start) still binds nothing outside.
#   tests/slurm/sbatch_input_test.sh PATH/TO/seedproof
set -uo pipefail
seedproof=$(readlink -f "$1")
if [[ "${SEEDPROOF_IN_NETNS:-}" != 1 ]]; then
  exec env SEEDPROOF_IN_NETNS=1 unshare --net -- sh -c 'ip link set lo up && exec "$@"' \
    sh "$0" "$seedproof"
fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/seedproof-sbatch-XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "sbatch-input-token-0123456789" > "$work/token"
failures=0

# expect SCRIPT "WANTED STDERR" VAR=VALUE...: the script, run with only these
# settings (and PATH, HOME), exits non-zero and says WANTED.
expect() {
  local script=$1 wanted=$2
  shift 2
  local err code
  err=$(env -i PATH="$PATH" HOME="$work" "$@" bash "$repo/deploy/slurm/$script" 2>&1 >/dev/null)
  code=$?
  if [[ $code -ne 0 && $err == *"$wanted"* ]]; then
    echo "ok      $script $* -> exit $code: $wanted"
  else
    echo "FAILED  $script $*: exit $code, stderr: $err (wanted: $wanted)" >&2
    failures=$((failures + 1))
  fi
}

coordinator=SEEDPROOF_COORDINATOR=127.0.0.1:50051
token=SEEDPROOF_TOKEN_FILE=$work/token
expect workers.sbatch "SEEDPROOF_COORDINATOR: set SEEDPROOF_COORDINATOR" "$token"
expect workers.sbatch "SEEDPROOF_TOKEN_FILE: set SEEDPROOF_TOKEN_FILE" "$coordinator"
expect workers.sbatch "SEEDPROOF_TOKEN_FILE: cannot read $work/missing" "$coordinator" \
  SEEDPROOF_TOKEN_FILE="$work/missing"
expect workers.sbatch "SEEDPROOF_LAUNCHER: expected mpirun or srun, got 'mpiexec'" \
  "$coordinator" "$token" SEEDPROOF_LAUNCHER=mpiexec
expect workers.sbatch "SEEDPROOF_EXIT_IDLE: expected 0 or 1, got 'yes'" \
  "$coordinator" "$token" SEEDPROOF_EXIT_IDLE=yes

expect coordinator.sbatch "SEEDPROOF_TOKEN_FILE: set SEEDPROOF_TOKEN_FILE"
expect coordinator.sbatch "SEEDPROOF_TOKEN_FILE: cannot read $work/missing" \
  SEEDPROOF_TOKEN_FILE="$work/missing"
expect coordinator.sbatch "--listen: expected HOST:PORT like 127.0.0.1:9464, got '0.0.0:50051'" \
  "$token" SEEDPROOF_BIN="$seedproof" SEEDPROOF_DB="$work/db" SEEDPROOF_LISTEN=0.0.0:50051
expect coordinator.sbatch "--metrics-listen: expected HOST:PORT" \
  "$token" SEEDPROOF_BIN="$seedproof" SEEDPROOF_DB="$work/db" SEEDPROOF_LISTEN=127.0.0.1:0 \
  SEEDPROOF_METRICS=nowhere
[[ ! -e $work/db ]] || { echo "FAILED  a refused coordinator created its database" >&2; failures=$((failures + 1)); }

[[ $failures -eq 0 ]] || { echo "$failures failed" >&2; exit 1; }
