"""Which BLAS a Python peer runs on, said on stderr before it is measured.

A peer must run at its best: this machine's environment may set OPENBLAS_CORETYPE
and OPENBLAS_L2_SIZE (workarounds for old OpenBLAS bugs) that force slower
kernels. The bench scripts unset both for the peer's command alone; this says
what the peer then loaded, so every figure names the kernels behind it."""
import os
import sys


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
          f"OPENBLAS_* forcing kernels: {forced or 'none'}", file=sys.stderr, flush=True)
