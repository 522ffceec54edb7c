#!/usr/bin/env python3
"""The peer for `seedproof bench engine`: Géron's model A in PyTorch (Debian's
python3-torch), trained on the same real Fashion-MNIST task-A training set with
the same batch sizes, thread counts and frozen case. Prints the same JSON lines.

    bench/pytorch_peer.py [--batch 32 --batch 256] [--threads 1 --threads 2] [--epochs 1]
"""
import argparse
import gzip
import json
import struct
import time

import numpy as np
import torch

from peer_blas import report as report_blas

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndims = raw[3]
    dims = struct.unpack(">" + "I" * ndims, raw[4:4 + 4 * ndims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def task_a(data_dir):
    x = read_idx(f"{data_dir}/train-images-idx3-ubyte.gz")[5000:].astype(np.float32) / 255.0
    y = read_idx(f"{data_dir}/train-labels-idx1-ubyte.gz")[5000:].astype(np.int64)
    keep = (y != 5) & (y != 6)
    x, y = x[keep], y[keep]
    y = np.where(y > 6, y - 2, y)
    return torch.from_numpy(x.reshape(len(x), 784).copy()), torch.from_numpy(y.copy())


def model_a():
    layers, width = [], 784
    for units in (300, 100, 50, 50, 50):
        dense = torch.nn.Linear(width, units)
        torch.nn.init.xavier_uniform_(dense.weight)
        torch.nn.init.zeros_(dense.bias)
        layers += [dense, torch.nn.SELU()]
        width = units
    head = torch.nn.Linear(width, 8)
    torch.nn.init.xavier_uniform_(head.weight)
    torch.nn.init.zeros_(head.bias)
    return torch.nn.Sequential(*layers, head)


def flops_per_example(frozen):
    sizes = [(784, 300), (300, 100), (100, 50), (50, 50), (50, 50), (50, 8)]
    total = 0
    lowest = len(sizes) - 1 if frozen else 0
    for i, (a, b) in enumerate(sizes):
        total += 2 * a * b  # forward
        if i >= lowest:
            total += 2 * a * b  # weight gradient
        if i > lowest:
            total += 2 * a * b  # input gradient
    return total


def epoch(model, opt, x, y, batch, seed):
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for first in range(0, len(x), batch):
        idx = order[first:first + batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, action="append")
    p.add_argument("--threads", type=int, action="append")
    p.add_argument("--frozen", action="store_true")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--data", default=DATA)
    a = p.parse_args()
    report_blas(f"pytorch-{torch.__version__}")
    x, y = task_a(a.data)
    frozen_cases = [True] if a.frozen else ([False] if (a.batch or a.threads) else [False, True])
    for threads in a.threads or [1, 2]:
        torch.set_num_threads(threads)
        for frozen in frozen_cases:
            for batch in a.batch or [32, 256]:
                torch.manual_seed(42)
                model = model_a()
                if frozen:
                    for param in list(model.parameters())[:-2]:
                        param.requires_grad_(False)
                params = [q for q in model.parameters() if q.requires_grad]
                opt = torch.optim.SGD(params, lr=1e-3)
                epoch(model, opt, x[:20 * batch], y[:20 * batch], batch, 1)  # warm-up
                seconds = sum(epoch(model, opt, x, y, batch, 100 + e) for e in range(a.epochs))
                samples = len(x) * a.epochs
                print(json.dumps({
                    "model": "geron_a", "backend": f"pytorch-{torch.__version__}",
                    "batch": batch, "threads": threads, "frozen": frozen,
                    "samples": samples, "seconds": seconds,
                    "samples_per_s": samples / seconds,
                    "gflops": samples / seconds * flops_per_example(frozen) / 1e9,
                }), flush=True)


if __name__ == "__main__":
    main()
