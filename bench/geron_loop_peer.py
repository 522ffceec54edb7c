#!/usr/bin/env python3
"""The peer for bench/study_floor.sh: Géron's protocol as a plain PyTorch loop
(Debian's python3-torch), one seed after another on one thread, the way a user
without seedproof would run the study of experiments/specs/geron.yaml:

  per seed: model A (Dense 300, 100, 50, 50, 50, SELU, Glorot) trained on task A
  (43,986 images, 20 epochs, batch 32, SGD lr 1e-3), then on task B (shirt vs
  sandal, the first 200 images, batch 32) a model from scratch (20 epochs) and
  five transfers, reusing 1 to 5 of model A's hidden layers (the layers above
  them new), each with Géron's schedule: 4 epochs with the reused layers frozen,
  then 16 with everything trained; every model evaluated on its test set.

Prints one JSON line: seeds, seconds, core_seconds_per_seed (one core).

    bench/geron_loop_peer.py [--seeds 2] [--data DIR]
"""
import argparse
import json
import time

import numpy as np
import torch

from peer_blas import report as report_blas
from pytorch_peer import DATA, read_idx

HIDDEN = (300, 100, 50, 50, 50)


def splits(data_dir):
    x = read_idx(f"{data_dir}/train-images-idx3-ubyte.gz").astype(np.float32).reshape(-1, 784) / 255
    y = read_idx(f"{data_dir}/train-labels-idx1-ubyte.gz").astype(np.int64)
    tx = read_idx(f"{data_dir}/t10k-images-idx3-ubyte.gz").astype(np.float32).reshape(-1, 784) / 255
    ty = read_idx(f"{data_dir}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    x, y = x[5000:], y[5000:]  # the first 5,000 are the validation split

    def task_a(x, y):
        keep = (y != 5) & (y != 6)
        return torch.from_numpy(x[keep]), torch.from_numpy(np.where(y[keep] > 6, y[keep] - 2, y[keep]))

    def task_b(x, y, first=None):
        keep = np.flatnonzero((y == 5) | (y == 6))[:first]
        return torch.from_numpy(x[keep]), torch.from_numpy((y[keep] == 6).astype(np.float32))

    return task_a(x, y), task_a(tx, ty), task_b(x, y, 200), task_b(tx, ty)


def dense(a, b):
    layer = torch.nn.Linear(a, b)
    torch.nn.init.xavier_uniform_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    return layer


def hidden_stack(layers=None):
    layers = layers or []
    width = 784
    for i, units in enumerate(HIDDEN):
        if i >= len(layers):
            layers.append(dense(width, units))
        width = units
    return layers


def network(hidden, head):
    parts = []
    for layer in hidden:
        parts += [layer, torch.nn.SELU()]
    return torch.nn.Sequential(*parts, head)


def fit(model, params, x, y, epochs, loss_fn, generator):
    opt = torch.optim.SGD(params, lr=1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for first in range(0, len(x), 32):
            idx = order[first:first + 32]
            opt.zero_grad(set_to_none=True)
            out = model(x[idx])
            loss_fn(out.squeeze(1) if out.shape[1] == 1 else out, y[idx]).backward()
            opt.step()


def evaluate(model, x, y):
    with torch.no_grad():
        out = model(x)
        guess = (out.squeeze(1) > 0).float() if out.shape[1] == 1 else out.argmax(1)
        return (guess == y).float().mean().item()


def one_seed(seed, data):
    (ax, ay), (atx, aty), (bx, by), (btx, bty) = data
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    hidden_a = hidden_stack()
    model_a = network(hidden_a, dense(50, 8))
    fit(model_a, model_a.parameters(), ax, ay, 20, torch.nn.CrossEntropyLoss(), g)
    evaluate(model_a, atx, aty)
    bce = torch.nn.BCEWithLogitsLoss()
    scratch = network(hidden_stack(), dense(50, 1))
    fit(scratch, scratch.parameters(), bx, by, 20, bce, g)
    evaluate(scratch, btx, bty)
    for reuse in range(1, 6):
        reused = [torch.nn.Linear(l.in_features, l.out_features) for l in hidden_a[:reuse]]
        for copy, original in zip(reused, hidden_a):
            copy.load_state_dict(original.state_dict())
        hidden = hidden_stack(reused)
        model = network(hidden, dense(50, 1))
        top = [p for layer in hidden[reuse:] for p in layer.parameters()] + list(model[-1].parameters())
        fit(model, top, bx, by, 4, bce, g)
        fit(model, model.parameters(), bx, by, 16, bce, g)
        evaluate(model, btx, bty)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--data", default=DATA)
    a = p.parse_args()
    report_blas(f"pytorch-{torch.__version__}")
    torch.set_num_threads(1)
    data = splits(a.data)
    start = time.perf_counter()
    for seed in range(a.seeds):
        one_seed(seed, data)
    seconds = time.perf_counter() - start
    print(json.dumps({"peer": f"pytorch-{torch.__version__}", "seeds": a.seeds,
                      "seconds": seconds, "core_seconds_per_seed": seconds / a.seeds}), flush=True)


if __name__ == "__main__":
    main()
