#!/usr/bin/python3
"""`mpirun -np 2 seedproof worker` is one worker group that runs a sweep.

Usage: worker_group_test.py PATH/TO/seedproof

In a network namespace of its own with only loopback up (mpirun's runtime
listens on every interface): a coordinator, a sweep, and one 2-rank worker group
(`--exit-when-idle`). Rank 0 leases and reports; both ranks train every trial on
their halves of each batch. Requires: the sweep done with every trial completed
and stored once, and every per-epoch training loss within 1e-4 relative of the same study run by
`seedproof run` in one process (the sums differ only in order)."""
import json, os, pathlib, subprocess, sys, tempfile, time

SEEDPROOF = sys.argv[1]
if os.environ.get("SEEDPROOF_IN_NETNS") != "1":
    command = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
               sys.executable, __file__, SEEDPROOF]
    sys.exit(subprocess.run(command, env=dict(os.environ, SEEDPROOF_IN_NETNS="1")).returncode)

SPEC = """name: group-study
source: {classes: [0, 1, 2, 3, 4, 7, 8, 9], train_size: 1000}
target: {positive: [6], negative: [5], train_size: 100}
model: {input: [28, 28, 1], layers: [{dense: 32}, {dense: 16}], activation: selu}
pretrain: {lr: 0.01, epochs: 2}
transfer:
  reuse: [1, 2]
  schedules:
    frozen: [{epochs: 2, train: head, lr: 1.0e-2}]
    geron: [{epochs: 1, train: head, lr: 1.0e-2}, {epochs: 2, train: all, lr: 1.0e-3}]
baseline: {scratch: {epochs: 2, lr: 1.0e-2}}
seeds: 2
"""
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_oob_tcp_if_include="lo",
           OMPI_MCA_mpi_yield_when_idle="1")
work = pathlib.Path(tempfile.mkdtemp(prefix="seedproof-group-"))
(work / "spec.yaml").write_text(SPEC)
(work / "token").write_text("worker-group-test-token-0123456789\n")
token = ["--token-file", str(work / "token")]
failures = []


def check(ok, what):
    print(("ok      " if ok else "FAILED  ") + what, flush=True)
    if not ok:
        failures.append(what)


def losses(results_file):
    lines = [json.loads(l) for l in results_file.read_text().splitlines()[1:]]
    return {l["trial_id"]: (l["outcome"], [e["train_loss"] for e in l["epochs"]]) for l in lines}


coordinator = subprocess.Popen(
    [SEEDPROOF, "coordinator", "--listen", "127.0.0.1:0", "--db", str(work / "db"),
     "--port-file", str(work / "ports"), "--metrics-listen", ""] + token,
    stdout=open(work / "coordinator.log", "w"), stderr=subprocess.STDOUT)
try:
    for _ in range(200):
        if (work / "ports").exists() and (work / "ports").read_text().strip():
            break
        time.sleep(0.05)
    address = "127.0.0.1:" + (work / "ports").read_text().split()[0]
    client = ["--coordinator", address] + token
    sweep = subprocess.run([SEEDPROOF, "submit", str(work / "spec.yaml")] + client,
                           capture_output=True, text=True, check=True).stdout.strip()
    group = subprocess.run(
        ["mpirun", "--bind-to", "none", "--mca", "btl", "self,vader", "-np", "2", SEEDPROOF,
         "worker", "--id", "group", "--exit-when-idle", "--metrics-listen", ""] + client,
        capture_output=True, text=True, env=env, timeout=300)
    check(group.returncode == 0, "the 2-rank group exits 0 when idle " +
          (group.stdout + group.stderr if group.returncode else ""))
    status = subprocess.run([SEEDPROOF, "status", sweep] + client, capture_output=True,
                            text=True).stdout
    check(" done " in status and "failed 0" in status, "sweep done, nothing failed: " + status)
    subprocess.run([SEEDPROOF, "results", sweep, "--out", str(work / "group.jsonl")] + client,
                   check=True)
    subprocess.run([SEEDPROOF, "run", str(work / "spec.yaml"), "--out", str(work / "local"),
                    "--workers", "1"], capture_output=True, check=True)
    grouped, local = losses(work / "group.jsonl"), losses(work / "local" / "results.jsonl")
    check(sorted(grouped) == sorted(local) and len(grouped) == 11,
          "the same %d trials, each stored once" % len(grouped))
    worst = 0.0
    for trial_id, (outcome, trial_losses) in local.items():
        g_outcome, g_losses = grouped.get(trial_id, ("missing", []))
        check(g_outcome == outcome == "completed" and len(g_losses) == len(trial_losses),
              "trial %s completed with %d epochs" % (trial_id[:8], len(trial_losses)))
        for a, b in zip(g_losses, trial_losses):
            worst = max(worst, abs(a - b) / abs(b))
    check(worst <= 1e-4, "per-epoch training losses within 1e-4 relative (worst %.1e)" % worst)
finally:
    coordinator.terminate()
    coordinator.wait(10)
print("%d failures" % len(failures))
sys.exit(1 if failures else 0)
