#!/usr/bin/env python3
"""The peer for `seedproof bench engine`: Géron's model A in PyTorch (Debian's
python3-torch), trained on the same real Fashion-MNIST task-A training set with
the same batch sizes, thread counts and frozen case. Prints the same JSON lines.
With --model geron-cnn, the CNN of experiments/specs/geron-cnn.yaml (conv 32,
pool, conv 64, pool, dense 128, He-normal, ReLU; Adam lr 1e-3), as the engine
benchmark trains it with --spec; --channels-last runs it in PyTorch's NHWC layout
(oneDNN's preferred one) instead of NCHW.

    bench/pytorch_peer.py [--batch 32 --batch 256] [--threads 1 --threads 2] [--epochs 1]
                          [--model geron_a|geron-cnn] [--channels-last]
"""
import argparse
import gzip
import json
import os
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


def geron_cnn():
    def conv(cin, cout):
        c = torch.nn.Conv2d(cin, cout, 3, padding=1)
        torch.nn.init.trunc_normal_(c.weight, std=(2.0 / (9 * cin)) ** 0.5 / 0.8796256610342398,
                                    a=-2 * (2.0 / (9 * cin)) ** 0.5 / 0.8796256610342398,
                                    b=2 * (2.0 / (9 * cin)) ** 0.5 / 0.8796256610342398)
        torch.nn.init.zeros_(c.bias)
        return c
    dense = torch.nn.Linear(7 * 7 * 64, 128)
    head = torch.nn.Linear(128, 8)
    for d in (dense, head):
        torch.nn.init.kaiming_normal_(d.weight)
        torch.nn.init.zeros_(d.bias)
    return torch.nn.Sequential(conv(1, 32), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               conv(32, 64), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), dense, torch.nn.ReLU(), head)


def cnn_flops_per_example(frozen):
    # (multiply-adds of the layer, has an input gradient when trained above the lowest)
    convs = [28 * 28 * 32 * 9 * 1, 14 * 14 * 64 * 9 * 32]
    dense = [7 * 7 * 64 * 128, 128 * 8]
    sizes = convs + dense
    lowest = len(sizes) - 1 if frozen else 0
    total = 0
    for i, macs in enumerate(sizes):
        total += 2 * macs
        if i >= lowest:
            total += 2 * macs
        if i > lowest:
            total += 2 * macs
    return total


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


def epoch(model, opt, x, y, batch, seed, channels_last=False):
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for first in range(0, len(x), batch):
        idx = order[first:first + batch]
        opt.zero_grad(set_to_none=True)
        xb = x[idx]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        loss = loss_fn(model(xb), y[idx])
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
    p.add_argument("--model", default="geron_a", choices=["geron_a", "geron-cnn"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--examples", type=int, default=0, help="only the first N task-A images")
    a = p.parse_args()
    report_blas(f"pytorch-{torch.__version__}")
    x, y = task_a(a.data)
    if a.examples > 0:
        x, y = x[:a.examples], y[:a.examples]
    cnn = a.model == "geron-cnn"
    if cnn:
        x = x.reshape(len(x), 1, 28, 28)
    frozen_cases = [True] if a.frozen else ([False] if a.batch else [False, True])
    for threads in a.threads or [1, 2]:
        torch.set_num_threads(threads)
        for frozen in frozen_cases:
            for batch in a.batch or [32, 256]:
                torch.manual_seed(42)
                model = geron_cnn() if cnn else model_a()
                if a.channels_last:
                    model = model.to(memory_format=torch.channels_last)
                if frozen:
                    for param in list(model.parameters())[:-2]:
                        param.requires_grad_(False)
                params = [q for q in model.parameters() if q.requires_grad]
                if cnn:
                    opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7)
                else:
                    opt = torch.optim.SGD(params, lr=1e-3)
                cl = a.channels_last
                epoch(model, opt, x[:20 * batch], y[:20 * batch], batch, 1, cl)  # warm-up
                seconds = sum(epoch(model, opt, x, y, batch, 100 + e, cl) for e in range(a.epochs))
                samples = len(x) * a.epochs
                print(json.dumps({
                    "model": a.model, "backend": f"pytorch-{torch.__version__}",
                    "layout": "nhwc" if a.channels_last else "nchw",
                    "blas_threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0")),
                    "batch": batch, "threads": threads, "frozen": frozen,
                    "samples": samples, "seconds": seconds,
                    "samples_per_s": samples / seconds,
                    "gflops": samples / seconds * (cnn_flops_per_example(frozen) if cnn else
                                                   flops_per_example(frozen)) / 1e9,
                }), flush=True)


if __name__ == "__main__":
    main()
