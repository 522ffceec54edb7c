#!/usr/bin/env python3
"""The peer for `seedproof bench coordinator`: Optuna (Debian's python3-optuna)
with its relational storage on an SQLite file, N threads of one process each
asking for a trial and telling its value at once (an objective that computes
nothing), as `Study.optimize(n_jobs=N)` runs them. Prints one JSON line with
the same fields where they mean the same: trials/s, and the latency of `ask`
(Optuna's lease) at p50 and p99.

    bench/optuna_peer.py [--workers 200] [--trials 1000]
"""
import argparse
import json
import tempfile
import threading
import time

import optuna

from peer_blas import report as report_blas


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    if args.workers < 1 or args.trials < 1:
        parser.error("--workers and --trials must be at least 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    report_blas(f"optuna-{optuna.__version__}")
    with tempfile.TemporaryDirectory(prefix="seedproof-optuna-") as folder:
        # A long busy timeout: with many threads SQLite's writer lock is the queue.
        storage = optuna.storages.RDBStorage(
            "sqlite:///%s/optuna.db" % folder, engine_kwargs={"connect_args": {"timeout": 600}})
        optuna.create_study(storage=storage, study_name="peer")
        lock = threading.Lock()
        left = [args.trials]
        ask_ms = []

        def worker():
            study = optuna.load_study(study_name="peer", storage=storage)
            mine = []
            while True:
                with lock:
                    if left[0] == 0:
                        break
                    left[0] -= 1
                start = time.perf_counter()
                trial = study.ask()
                mine.append((time.perf_counter() - start) * 1000)
                study.tell(trial, 0.0)
            with lock:
                ask_ms.extend(mine)

        start = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - start
    ask_ms.sort()

    def percentile(p):
        return ask_ms[min(len(ask_ms) - 1, int(p * len(ask_ms)))]

    print(json.dumps({"peer": "optuna-%s-sqlite" % optuna.__version__, "workers": args.workers,
                      "trials": args.trials, "seconds": seconds,
                      "trials_per_s": args.trials / seconds, "lease_p50_ms": percentile(0.5),
                      "lease_p99_ms": percentile(0.99)}), flush=True)


if __name__ == "__main__":
    main()
