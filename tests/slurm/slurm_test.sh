#!/bin/bash
# A real single-node Slurm cluster runs a study through the project's sbatch
# scripts: munged, slurmctld and slurmd started here with their state in a
# temporary folder, a coordinator on loopback, and a job array of two 2-rank
# worker groups (deploy/slurm/workers.sbatch, ranks started by mpirun) that run a
# small study to the end; then one group whose ranks srun --mpi=pmix starts runs
# the study again, and killing a rank of an idle srun group must end its job.
# Everything runs in a network namespace of its own with only loopback up
# (slurmctld, slurmd and mpirun listen on every interface), and is stopped at the
# end, also on failure.
#   tests/slurm/slurm_test.sh PATH/TO/seedproof
set -euo pipefail
seedproof=$(readlink -f "$1")
repo=$(cd "$(dirname "$0")/../.." && pwd)
if [[ "${SEEDPROOF_IN_NETNS:-}" != 1 ]]; then
  # slurmd resolves its listen address with AI_ADDRCONFIG, which ignores 127/8:
  # a second address on lo (still nothing outside the namespace) satisfies it.
  exec env SEEDPROOF_IN_NETNS=1 unshare --net -- sh -c \
    'ip link set lo up && ip addr add 10.254.254.1/32 dev lo && exec "$@"' sh "$0" "$seedproof"
fi

work=$(mktemp -d /tmp/seedproof-slurm-XXXXXX)
pids=()
cleanup() {
  local code=$?
  local daemons=()
  for pid_file in "$work"/slurmd.pid "$work"/slurmctld.pid "$work"/munged.pid; do
    if [[ -f $pid_file ]]; then daemons+=("$(cat "$pid_file")"); fi
  done
  for pid in "${daemons[@]}"; do kill "$pid" 2>/dev/null || true; done
  [[ -n "${job:-}" ]] && timeout 5 scancel "$job" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Until the daemons and the coordinator are gone (at most 5 s each).
  for pid in "${daemons[@]}" "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done
  if [[ $code -ne 0 ]]; then
    echo "FAILED; logs in $work" >&2
    tail -n 20 "$work"/*.log "$work"/job-*.out 2>/dev/null >&2 || true
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
fail() { echo "FAILED  $*" >&2; exit 1; }
ok() { echo "ok      $*"; }
# gone JOB SECONDS: true once Slurm no longer lists the job, false after SECONDS.
gone() {
  for _ in $(seq $(($2 * 5))); do
    [[ -z "$(timeout 5 squeue -h -j "$1" 2>/dev/null)" ]] && return 0
    sleep 0.2
  done
  return 1
}
# finished SWEEP WHO: fails unless the sweep is done with all 13 trials and none failed.
finished() {
  local status
  status=$("$seedproof" status "$1" --coordinator "$address" --token-file "$work/token")
  echo "$status"
  [[ $status == *" done "* && $status == *"13/13 finished"* && $status == *"failed 0"* ]] ||
    fail "$2 did not finish the sweep: $status"
}

# MUNGE with a key and socket of its own.
mkdir -p "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --force --key-file "$work/munge/munge.key" --socket "$work/munge/munge.sock" \
  --pid-file "$work/munged.pid" --log-file "$work/munged.log" --seed-file "$work/munge/seed"

mkdir -p "$work/state" "$work/spool"
cat > "$work/slurm.conf" <<CONF
ClusterName=seedproof-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.sock
CredType=cred/munge
SlurmctldPort=$((20000 + RANDOM % 20000))
SlurmdPort=$((40000 + RANDOM % 20000))
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF=$work/slurm.conf
slurmctld -i
slurmd -N localhost
for _ in $(seq 100); do
  timeout 5 sinfo -h -o %T 2>/dev/null | grep -q idle && break
  sleep 0.2
done
timeout 5 sinfo -h -o %T | grep -q idle || fail "the node never became idle: $(timeout 5 sinfo 2>&1)"
ok "slurmctld and slurmd up, node idle"

# The coordinator on loopback, and a small study.
echo "slurm-test-token-0123456789abcdef" > "$work/token"
"$seedproof" coordinator --listen 127.0.0.1:0 --db "$work/db" --token-file "$work/token" \
  --port-file "$work/ports" --metrics-listen "" > "$work/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/ports ]] && break; sleep 0.05; done
address=127.0.0.1:$(head -1 "$work/ports")
cp "$repo/tests/testdata/tiny-study.yaml" "$work/spec.yaml"
sweep=$("$seedproof" submit "$work/spec.yaml" --coordinator "$address" --token-file "$work/token")
ok "sweep $sweep submitted to $address"

# Two worker groups of two ranks each, as a job array.
# (As root, in this namespace: mpirun must be allowed to run as root, and its
# runtime may use only lo; the ranks talk through shared memory.)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_oob_tcp_if_include=lo \
  OMPI_MCA_btl=self,vader
job=$(sbatch --parsable --array=0-1 --ntasks=2 --output="$work/job-%A_%a.out" \
  --export=ALL,SEEDPROOF_BIN="$seedproof",SEEDPROOF_COORDINATOR="$address",SEEDPROOF_TOKEN_FILE="$work/token",SEEDPROOF_EXIT_IDLE=1 \
  "$repo/deploy/slurm/workers.sbatch")
ok "job array $job submitted"
gone "$job" 120 || fail "the job array still runs after 120 s"
finished "$sweep" "the job array"
ok "the sweep finished: 13 trials, none failed"
outputs=("$work"/job-*.out)
[[ ${#outputs[@]} -eq 2 ]] || fail "expected 2 array task outputs, got ${#outputs[@]}"
for out in "${outputs[@]}"; do
  if grep -qi "error" "$out"; then fail "$(basename "$out"): $(cat "$out")"; fi
done
ok "both array tasks ran (2 outputs, no errors)"

# mpi_size_of WORKER_ID: the MPI group size the worker registered with (its rank 0
# registers for the group; a rank that failed to join would register alone).
mpi_size_of() {
  /usr/bin/python3 - "$work/db" "$1" <<'PY'
import json, sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT capabilities_json FROM workers WHERE id = ?", (sys.argv[2],)).fetchall()
print(",".join(str(json.loads(r[0])["mpi_size"]) for r in rows) or "unregistered")
PY
}
for task in 0 1; do
  size=$(mpi_size_of "slurm-$job-$task")
  [[ $size == 2 ]] || fail "array task $task's worker registered with MPI size $size, not one group of 2"
done
ok "each array task was one 2-rank MPI group"

# The same through srun --mpi=pmix: Slurm starts the ranks, PMIx wires them up.
sweep2=$("$seedproof" submit "$work/spec.yaml" --coordinator "$address" --token-file "$work/token")
job2=$(sbatch --parsable --ntasks=2 --output="$work/job-srun-%j.out" \
  --export=ALL,SEEDPROOF_BIN="$seedproof",SEEDPROOF_COORDINATOR="$address",SEEDPROOF_TOKEN_FILE="$work/token",SEEDPROOF_EXIT_IDLE=1,SEEDPROOF_LAUNCHER=srun \
  "$repo/deploy/slurm/workers.sbatch")
ok "srun job $job2 submitted for sweep $sweep2"
gone "$job2" 120 || fail "srun job $job2 still runs after 120 s"
finished "$sweep2" "the srun-launched group"
if grep -qi "error" "$work"/job-srun-*.out; then fail "$(cat "$work"/job-srun-*.out)"; fi
size=$(mpi_size_of "slurm-$job2-0")
[[ $size == 2 ]] || fail "the srun-launched worker registered with MPI size $size, not one group of 2"
ok "srun --mpi=pmix started one 2-rank group, which finished the sweep"

# A rank of an srun-started group dies: the group must not wait for it forever.
# (An idle group: rank 1 sits in a collective waiting for rank 0's next trial.)
job3=$(sbatch --parsable --ntasks=2 --output="$work/job-doomed-%j.out" \
  --export=ALL,SEEDPROOF_BIN="$seedproof",SEEDPROOF_COORDINATOR="$address",SEEDPROOF_TOKEN_FILE="$work/token",SEEDPROOF_LAUNCHER=srun \
  "$repo/deploy/slurm/workers.sbatch")
victim=""
for _ in $(seq 150); do
  # Rank 1 of this job: another test's group may run beside it (mpirun sets
  # PMIX_RANK too), so the job id must match as well.
  for pid in $(pgrep -f "$seedproof worker"); do
    environ=$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null) || continue
    if grep -qx "PMIX_RANK=1" <<< "$environ" && grep -qx "SLURM_JOB_ID=$job3" <<< "$environ"; then
      victim=$pid
    fi
  done
  [[ -n $victim && -n "$(mpi_size_of "slurm-$job3-0" | grep -x 2)" ]] && break
  sleep 0.2
done
[[ -n $victim ]] || fail "rank 1 of srun job $job3 never started"
kill -9 "$victim"
killed=$SECONDS
gone "$job3" 30 || fail "srun job $job3 still runs 30 s after its rank 1 was killed"
state=$(timeout 5 scontrol show job "$job3" | grep -o "JobState=[A-Z_]*")
[[ $state != "JobState=COMPLETED" ]] || fail "srun job $job3 ended as COMPLETED after losing a rank"
ok "killing rank 1 ended srun job $job3 within $((SECONDS - killed)) s ($state)"
