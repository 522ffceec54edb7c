#!/usr/bin/env python3
"""The BLAS a Python peer runs on: chosen at its best, and said before it is measured.

A peer must run at its best. OpenBLAS picks its kernels from the CPU it sees, and
gets that wrong both ways: this machine's environment may set OPENBLAS_CORETYPE
and OPENBLAS_L2_SIZE (workarounds for old OpenBLAS bugs on some CPUs) that force
slower kernels, and on a CPU newer than Debian's OpenBLAS 0.3.21 knows (an
Emerald Rapids Xeon, say) it falls back to its oldest ones (Prescott: SSE3).

    bench/peer_blas.py choose     times float32 GEMM at model A's first-layer
                                  shape (256x784 by 784x300, one thread) with
                                  OpenBLAS' own choice and with every kernel set
                                  this CPU can run, says the table on stderr and
                                  prints the winner as an environment assignment
                                  for `env` ("OPENBLAS_CORETYPE=SkylakeX"; nothing
                                  when OpenBLAS' own choice wins)

The bench scripts run the peer's command alone with that assignment and without
the inherited OPENBLAS_* variables; tests and CI keep the environment as it is.
`report(peer)` (imported by the peers) says on stderr which BLAS and kernels the
peer then loaded, so every figure names the kernels behind it."""
import os
import subprocess
import sys

# OpenBLAS 0.3.21's x86-64 kernel sets worth trying on a CPU of the last decade.
CANDIDATES = ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"]
PROBE = r"""
import time, numpy as np
from threadpoolctl import threadpool_info
a = np.random.default_rng(0).random((256, 784), dtype=np.float32)
b = np.random.default_rng(1).random((784, 300), dtype=np.float32)
for _ in range(20): a @ b
best = 0.0
for _ in range(5):
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.2:
        a @ b; n += 1
    best = max(best, n * 2 * 256 * 784 * 300 / (time.perf_counter() - start) / 1e9)
kernels = [i.get("architecture") for i in threadpool_info() if i.get("user_api") == "blas"]
print(best, kernels[0] if kernels else "?")
"""


def probe(coretype):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["OPENBLAS_NUM_THREADS"] = "1"
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    run = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=120)
    if run.returncode != 0:
        return None  # a kernel set this CPU cannot run (SIGILL), or no numpy
    gflops, kernels = run.stdout.split()
    return float(gflops), kernels


def choose():
    rows = [("(OpenBLAS' own choice)", None, probe(None))]
    rows += [(c, c, probe(c)) for c in CANDIDATES]
    ran = [(name, coretype, result) for name, coretype, result in rows if result]
    if not ran:
        sys.exit("peer_blas: numpy and threadpoolctl are needed (deploy/install-deps.sh --bench)")
    best = max(ran, key=lambda r: r[2][0])
    table = ", ".join("%s -> %s kernels %.0f GFLOP/s" % (name, result[1], result[0])
                      for name, _, result in ran)
    print("# peer BLAS probe (sgemm 256x784x300, 1 thread): %s; chosen: %s" %
          (table, best[0]), file=sys.stderr, flush=True)
    print("OPENBLAS_CORETYPE=%s" % best[1] if best[1] else "")


def report(peer):
    forced = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    try:
        from threadpoolctl import threadpool_info
        libraries = [f'{i.get("internal_api")} {i.get("version")} '
                     f'({i.get("architecture") or "?"} kernels, {i.get("num_threads")} threads, '
                     f'{i.get("filepath")})' for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        libraries = ["unknown (python3-threadpoolctl is not installed)"]
    print(f"# {peer} BLAS: {'; '.join(libraries) or 'none loaded'}; "
          f"OPENBLAS_* set: {forced or 'none'}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    if sys.argv[1:] != ["choose"]:
        sys.exit(__doc__)
    choose()
