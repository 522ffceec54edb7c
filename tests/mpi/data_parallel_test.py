#!/usr/bin/python3
"""Data parallelism across MPI ranks gives the single-process answer.

Usage: data_parallel_test.py PATH/TO/seedproof

Runs `mpirun -np R seedproof bench mpi` for R = 1, 2 and 4 (4 oversubscribes this
2-core machine) on the first 4,096 task-A images, 2 epochs at global batch 256:
the same global batches split across the ranks, gradients summed with
MPI_Allreduce. Then R = 2 with 2 threads per rank: each rank splits its share
again across its threads, which sum in-process before the MPI_Allreduce. Then R = 2
and 4 with the sums overlapping the backward pass (--bucket-kib 64: each bucket of
final gradients starts an MPI_Iallreduce while the pass goes on), which must start
most of the floats' sums before the pass ends, and give the same bits when run
again; and R = 2 with 2 threads each at a global batch of 31, where one rank's
part is split across its threads and the other's is not. Requires per-epoch training losses within 1e-5 relative of R = 1 and test
accuracies within one test example. Ranks talk over shared memory only
(btl self,vader) inside a network namespace that has only loopback."""
import json, os, subprocess, sys

SEEDPROOF = sys.argv[1]
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_oob_tcp_if_include="lo")
# mpirun's PMIx server listens on every interface whatever it is told (Open MPI
# 4.1); in a network namespace of its own, with only loopback up, nothing outside
# can reach it.
ISOLATE = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "mpirun"]


def run(ranks, threads=1, bucket_kib=0, batch=256):
    command = ISOLATE + ["mpirun", "--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader",
               "-np", str(ranks), SEEDPROOF, "bench", "mpi", "--examples", "4096", "--epochs",
               "2", "--batch", str(batch), "--threads", str(threads), "--bucket-kib",
               str(bucket_kib)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    if done.returncode != 0:
        sys.exit("R=%d failed (exit %d):\n%s%s" % (ranks, done.returncode, done.stdout,
                                                   done.stderr))
    lines = [json.loads(l) for l in done.stdout.splitlines() if l.startswith("{")]
    epochs = [l for l in lines if "epoch" in l]
    test = [l for l in lines if "test_correct" in l]
    if len(epochs) != 2 or len(test) != 1 or any(l["ranks"] != ranks for l in lines):
        sys.exit("R=%d: expected 2 epoch lines and 1 test line from rank 0, got:\n%s" %
                 (ranks, done.stdout))
    # The bare reduction's line: the flat buffer of model A's 276,158 parameters,
    # and a bound below R (one rank's step plus any reduction time).
    bare = [l for l in lines if "bare_allreduce_ms" in l]
    if len(bare) != (1 if ranks > 1 else 0) or any(
            l["bytes"] != 4 * 276158 or not 0 < l["bare_allreduce_ms"] or
            not 0 < l["speedup_bound"] < ranks for l in bare):
        sys.exit("R=%d: expected %d bare allreduce line(s) for 1,104,632 bytes, got:\n%s" %
                 (ranks, ranks > 1, done.stdout))
    # Overlapped: most floats' sums start during the pass (the last bucket may
    # wait for Reduce); otherwise none.
    for l in epochs:
        early = l["overlapped_share"]
        if l["bucket_kib"] != bucket_kib or not (early > 0.5 if bucket_kib and ranks > 1 else
                                                 early == 0):
            sys.exit("R=%d, bucket %d KiB: overlapped share %r" % (ranks, bucket_kib, early))
    return epochs, test[0]


failures = 0
reference_epochs, reference_test = run(1)
overlapped = {}
for ranks, threads, bucket_kib in ((2, 1, 0), (4, 1, 0), (2, 2, 0), (2, 1, 64), (4, 1, 64)):
    epochs, test = run(ranks, threads, bucket_kib)
    if bucket_kib:
        overlapped[ranks] = epochs
    for ref, got in zip(reference_epochs, epochs):
        relative = abs(got["train_loss"] - ref["train_loss"]) / abs(ref["train_loss"])
        ok = relative <= 1e-5
        failures += not ok
        print("%-6s R=%d T=%d B=%dK epoch %d train_loss %.9f vs %.9f (relative %.1e)" %
              ("ok" if ok else "DIFFER", ranks, threads, bucket_kib, got["epoch"],
               got["train_loss"], ref["train_loss"], relative))
    gap = abs(test["test_correct"] - reference_test["test_correct"])
    ok = gap <= 1
    failures += not ok
    print("%-6s R=%d T=%d B=%dK test correct %d vs %d of %d" %
          ("ok" if ok else "DIFFER", ranks, threads, bucket_kib, test["test_correct"],
           reference_test["test_correct"], test["test_examples"]))
# Global batch 31 on 2 ranks of 2 threads: one rank's 15 rows run whole and hand
# buckets over during the pass, the other's 16 split across its threads and hand
# nothing over; both must still make the same MPI calls.
reference_31, _ = run(1, batch=31)
uneven, _ = run(2, 2, 64, batch=31)
for ref, got in zip(reference_31, uneven):
    relative = abs(got["train_loss"] - ref["train_loss"]) / abs(ref["train_loss"])
    ok = relative <= 1e-5
    failures += not ok
    print("%-6s R=2 T=2 B=64K batch 31 (15 and 16 rows) epoch %d train_loss %.9f vs %.9f" %
          ("ok" if ok else "DIFFER", got["epoch"], got["train_loss"], ref["train_loss"]))
# Determinism: the same ranks and bucket size give the same bits.
again, _ = run(2, 1, 64)
for first, second in zip(overlapped[2], again):
    ok = first["train_loss"] == second["train_loss"]
    failures += not ok
    print("%-6s R=2 bucket 64 KiB epoch %d run twice: %r and %r" %
          ("ok" if ok else "DIFFER", first["epoch"], first["train_loss"], second["train_loss"]))
print("%d mismatches" % failures)
sys.exit(1 if failures else 0)
