#!/usr/bin/python3
"""A source model made elsewhere, as users bring one: PyTorch trains a small CNN
with batch normalisation on Fashion-MNIST's source task (the 8 classes other than
sandal and shirt, relabelled 0..7 in class order) and exports it with
torch.onnx.export, BatchNormalization nodes kept. experiments/specs/onnx-source.yaml
transfers from it to shirt vs sandal.

  train_fashion_cnn.py OUT.onnx [--epochs 2] [--train-size 48000] [--seed 0]

Reads Debian's dataset-fashion-mnist. Prints the held-out accuracy on the source
task's test images.
"""
import argparse
import gzip
import os
import struct
import sys

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

FASHION = "/usr/share/datasets/fashion-mnist"
TARGET_CLASSES = (5, 6)  # sandal, shirt: the target task's, left out of the source


def read_idx(name):
    path = os.path.join(FASHION, name)
    if not os.path.exists(path):
        sys.exit(f"train_fashion_cnn.py: {path} is missing (apt-get install dataset-fashion-mnist)")
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = struct.unpack(">" + "I" * data[3], data[4:4 + 4 * data[3]])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * data[3]).reshape(dims)


def source_task(split):
    images = read_idx(f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(f"{split}-labels-idx1-ubyte.gz")
    keep = ~np.isin(labels, TARGET_CLASSES)
    relabel = {c: i for i, c in enumerate(c for c in range(10) if c not in TARGET_CLASSES)}
    x = images[keep].astype(np.float32)[:, np.newaxis] / 255.0  # N, 1, 28, 28
    y = np.array([relabel[c] for c in labels[keep]], dtype=np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=48000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    x, y = source_task("train")
    x, y = x[:args.train_size], y[:args.train_size]
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 8))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            batch = order[start:start + 64]
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()
    x_test, y_test = source_task("t10k")
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    # PRESERVE keeps each BatchNormalization node (eval mode would fold it into
    # its Conv); seedproof reads both, and then reuses the units as they were built.
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), args.out, opset_version=14,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    print(f"{args.out}: {args.epochs} epochs on {len(x)} images, "
          f"source-task test accuracy {accuracy:.4f} on {len(x_test)}")


if __name__ == "__main__":
    main()
