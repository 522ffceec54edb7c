#!/usr/bin/python3
"""Models made elsewhere, for the ONNX importer's tests: PyTorch 1.13 trains a
small MLP and a small CNN with BatchNorm on Fashion-MNIST task A (the 8 classes
other than sandal and shirt, relabelled 0..7) and exports them with
torch.onnx.export, in both forms users send (eval mode, where each BatchNorm is
folded into its Conv, and training=PRESERVE, which keeps the BatchNormalization
nodes); a model of every other supported operator; and a graph in tf2onnx's
layout (NHWC input, Transpose nodes), written with onnx.helper. For each model,
PyTorch's outputs on the first 1,000 test images of task A.

  OUT/x.f32              1000 x 28 x 28 x 1 float32 (pixels / 255), seedproof's layout
  OUT/<model>.onnx       the exported model
  OUT/<model>.out.f32    PyTorch's probabilities on x (the softmax of a model that
                         ends in logits): 1000 x classes float32
  OUT/manifest.json      {"<model>": {"outputs": classes, "opset": n}, ...}

  torch_models.py OUT
"""
import gzip
import json
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import torch
from torch import nn
import torch.nn.functional as F

FASHION = "/usr/share/datasets/fashion-mnist"


def read_idx(name):
    with gzip.open(os.path.join(FASHION, name), "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def task_a(images, labels):
    """Task A: drop sandals (5) and shirts (6), relabel the rest by position."""
    keep = (labels != 5) & (labels != 6)
    mapping = {c: i for i, c in enumerate(c for c in range(10) if c not in (5, 6))}
    x = images[keep].astype(np.float32) / 255.0
    y = np.array([mapping[c] for c in labels[keep]], dtype=np.int64)
    return x[:, np.newaxis, :, :], y  # NCHW


def train(model, x, y, epochs, lr, ends_in_softmax=False):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            batch = order[start:start + 64]
            optimizer.zero_grad()
            out = model(x[batch])
            loss = (F.nll_loss(torch.log(out), y[batch]) if ends_in_softmax
                    else F.cross_entropy(out, y[batch]))
            loss.backward()
            optimizer.step()
    model.eval()


def export(model, path, opset, preserve=False):
    kwargs = {}
    if preserve:
        kwargs = dict(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, opset_version=opset,
                      input_names=["image"], output_names=["out"],
                      dynamic_axes={"image": {0: "batch"}, "out": {0: "batch"}}, **kwargs)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(),
                                  nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 8))

    def forward(self, x):
        return self.body(x)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(64, 8))

    def forward(self, x):
        return self.body(x)


class Zoo(nn.Module):
    """Every other operator the importer reads, as PyTorch writes it: LeakyRelu,
    AveragePool (and its Pad), a strided Conv, Elu, GlobalAveragePool, MatMul (a
    Linear without bias), Selu, Tanh, Sigmoid, and a Softmax output."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.LeakyReLU(0.2), nn.AvgPool2d(2, padding=1),
            nn.Conv2d(6, 12, 3, stride=2), nn.ELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(12, 20, bias=False), nn.SELU(), nn.Linear(20, 16), nn.Tanh(),
            nn.Linear(16, 16), nn.Sigmoid(), nn.Linear(16, 8), nn.Softmax(dim=1))

    def forward(self, x):
        return self.body(x)


class Binary(nn.Module):
    """One sigmoid unit: sandal-like or not."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.Tanh(), nn.Linear(32, 1),
                                  nn.Sigmoid())

    def forward(self, x):
        return self.body(x)


def nhwc_model(path, generator):
    """A graph as tf2onnx writes a Keras model: (N, H, W, C) input transposed to
    NCHW, a 'same' strided Conv (padding one more at the bottom and right),
    transposed back to NHWC before a Reshape, then MatMul + Add and Softmax.
    Returns a function computing the same with torch."""
    w = torch.randn(8, 1, 3, 3, generator=generator) * 0.3
    b = torch.randn(8, generator=generator) * 0.1
    dense = torch.randn(14 * 14 * 8, 8, generator=generator) * 0.05
    dense_b = torch.randn(8, generator=generator) * 0.1
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Conv", ["nchw", "conv_w", "conv_b"], ["conv"], name="conv2d",
                         auto_pad="SAME_UPPER", strides=[2, 2], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["conv"], ["relu"], name="conv2d_relu"),
        helper.make_node("Transpose", ["relu"], ["nhwc"], perm=[0, 2, 3, 1], name="to_nhwc"),
        helper.make_node("Reshape", ["nhwc", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "dense_w"], ["logits0"], name="dense"),
        helper.make_node("Add", ["logits0", "dense_b"], ["logits"], name="dense_bias"),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    initializers = [
        numpy_helper.from_array(w.numpy(), "conv_w"),
        numpy_helper.from_array(b.numpy(), "conv_b"),
        numpy_helper.from_array(np.array([-1, 14 * 14 * 8], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(dense.numpy(), "dense_w"),
        numpy_helper.from_array(dense_b.numpy(), "dense_b"),
    ]
    graph = helper.make_graph(
        nodes, "keras_like", [helper.make_tensor_value_info("input_1", TensorProto.FLOAT,
                                                           ["unk__1", 28, 28, 1])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["unk__1", 8])], initializers)
    model = helper.make_model(graph, producer_name="tf2onnx", producer_version="1.9.3",
                              opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, path)

    def run(x_nchw):
        y = F.conv2d(F.pad(x_nchw, (0, 1, 0, 1)), w, b, stride=2).relu()
        flat = y.permute(0, 2, 3, 1).reshape(len(x_nchw), -1)
        return torch.softmax(flat @ dense + dense_b, dim=1)

    return run


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x_train, y_train = task_a(read_idx("train-images-idx3-ubyte.gz")[:8000],
                              read_idx("train-labels-idx1-ubyte.gz")[:8000])
    x_test, _ = task_a(read_idx("t10k-images-idx3-ubyte.gz")[:1400],
                       read_idx("t10k-labels-idx1-ubyte.gz")[:1400])
    x_test = x_test[:1000]
    assert len(x_test) == 1000
    x_train, y_train, x_test_t = torch.from_numpy(x_train), torch.from_numpy(y_train), \
        torch.from_numpy(x_test)
    x_test.transpose(0, 2, 3, 1).astype(np.float32).tofile(os.path.join(out, "x.f32"))

    mlp = Mlp()
    train(mlp, x_train, y_train, epochs=2, lr=1e-3)
    cnn = Cnn()
    train(cnn, x_train[:4000], y_train[:4000], epochs=1, lr=1e-3)
    zoo = Zoo()  # trained a little, so its outputs are far from uniform
    train(zoo, x_train[:4000], y_train[:4000], epochs=3, lr=1e-2, ends_in_softmax=True)
    binary = Binary()  # as initialised
    models = {  # name: (model, opset, preserve)
        "mlp": (mlp, 14, False),
        "mlp_opset9": (mlp, 9, False),
        "cnn": (cnn, 14, False),
        "cnn_bn": (cnn, 14, True),
        "cnn_bn_opset17": (cnn, 17, True),
        "cnn_opset9": (cnn, 9, False),
        "zoo": (zoo, 14, False),
        "binary": (binary, 13, False),
    }
    manifest = {}
    with torch.no_grad():
        for name, (model, opset, preserve) in models.items():
            export(model, os.path.join(out, name + ".onnx"), opset, preserve)
            y = model(x_test_t)
            if name.startswith(("mlp", "cnn")):
                y = torch.softmax(y, dim=1)
            y = y.numpy().astype(np.float32)
            y.tofile(os.path.join(out, name + ".out.f32"))
            manifest[name] = {"outputs": int(y.shape[1]), "opset": opset}
        run = nhwc_model(os.path.join(out, "nhwc.onnx"), torch.Generator().manual_seed(1))
        y = run(x_test_t).numpy().astype(np.float32)
        y.tofile(os.path.join(out, "nhwc.out.f32"))
        manifest["nhwc"] = {"outputs": 8, "opset": 13}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
