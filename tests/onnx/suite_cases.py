#!/usr/bin/python3
"""The ONNX backend test suite Debian ships (libonnx-testdata: data/node and
data/pytorch-converted), prepared for seedproof: every test whose operators are
among those seedproof reads and that uses at least one operator of the import
list (Gemm, MatMul, Conv, BatchNormalization, Relu, LeakyRelu, Selu, Elu, Tanh,
Sigmoid, Softmax, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape,
Dropout, Identity). The models and stored outputs are the suite's; what this
script changes, and says it changed, is only how they are handed over:

- Graph inputs after the first (a Conv's W, a Gemm's B and C, a BatchNormalization's
  statistics) become initializers with the test's values: seedproof reads weights
  as stored constants and the data as the one graph input.
- A graph of elementwise operators only (activations, Dropout, Identity) whose data
  is neither (N, F) nor (N, C, H, W) gets its data as (N, F): the same numbers.
- Input and expected output are written in seedproof's layout: (N, H, W, C) for
  images, (N, L, C) for sequences.

  suite_cases.py OUT   writes OUT/<source>/<test>/<set>/{model.onnx,x.f32,expected.f32}
                       and OUT/cases.json, a list of
                       {"name", "dir" (below OUT), "x_dims", "expected_dims", "note", "rtol", "atol"}
                       or, for a test that cannot even be handed over, {"name", "skip"}
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

SUITE = "/usr/share/libonnx-testdata/data"
LISTED = {"Gemm", "MatMul", "Conv", "BatchNormalization", "Relu", "LeakyRelu", "Selu", "Elu",
          "Tanh", "Sigmoid", "Softmax", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten",
          "Reshape", "Dropout", "Identity"}
READ = LISTED | {"Add", "Constant", "Pad", "Transpose", "LogSoftmax"}
ELEMENTWISE = {"Relu", "LeakyRelu", "Selu", "Elu", "Tanh", "Sigmoid", "Dropout", "Identity"}


def seedproof_layout(array):
    """(N, C, H, W) as (N, H, W, C); (N, C, L) as (N, L, C)."""
    if array.ndim == 4:
        return array.transpose(0, 2, 3, 1)
    if array.ndim == 3:
        return array.transpose(0, 2, 1)
    return array


def prepare(source, test, out):
    model = onnx.load(os.path.join(SUITE, source, test, "model.onnx"))
    ops = {n.op_type for n in model.graph.node}
    if not ops or not ops <= READ or not ops & LISTED:
        return []
    initialized = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialized]
    name = "%s/%s" % (source, test)
    not_tensors = [i.name for i in inputs if not i.type.HasField("tensor_type")]
    if not_tensors:
        return [{"name": name, "skip": "input %s is a %s, not a tensor" % (
            not_tensors[0], inputs[0].type.WhichOneof("value"))}]
    cases = []
    sets = sorted(d for d in os.listdir(os.path.join(SUITE, source, test))
                  if d.startswith("test_data_set_"))
    for data_set in sets:
        folder = os.path.join(SUITE, source, test, data_set)
        values = []
        for k in range(len(inputs)):
            tensor = onnx.TensorProto()
            with open(os.path.join(folder, "input_%d.pb" % k), "rb") as f:
                tensor.ParseFromString(f.read())
            values.append(numpy_helper.to_array(tensor))
        expected = onnx.TensorProto()
        with open(os.path.join(folder, "output_0.pb"), "rb") as f:
            expected.ParseFromString(f.read())
        expected = numpy_helper.to_array(expected)

        m = onnx.ModelProto()
        m.CopyFrom(model)
        notes = []
        keep = [i for i in m.graph.input if i.name in initialized or i.name == inputs[0].name]
        for info, value in zip(inputs[1:], values[1:]):
            m.graph.initializer.append(numpy_helper.from_array(value, info.name))
        if len(inputs) > 1:
            notes.append("inputs %s as initializers" % ", ".join(i.name for i in inputs[1:]))
        del m.graph.input[:]
        m.graph.input.extend(keep)
        x = values[0]
        if ops <= ELEMENTWISE and x.ndim not in (2, 4) and x.dtype == np.float32:
            flat = (x.shape[0] if x.ndim > 1 else 1, int(np.prod(x.shape[1:])) if x.ndim > 1
                    else x.shape[0])
            notes.append("data %s as %s" % (tuple(x.shape), flat))
            x = x.reshape(flat)
            expected = expected.reshape(flat)
            data = m.graph.input[[i.name for i in m.graph.input].index(inputs[0].name)]
            data.type.tensor_type.shape.ClearField("dim")
            for d in flat:
                data.type.tensor_type.shape.dim.add().dim_value = d
            for output in m.graph.output:
                output.type.tensor_type.shape.ClearField("dim")
                for d in flat:
                    output.type.tensor_type.shape.dim.add().dim_value = d
        del m.graph.value_info[:]
        where = os.path.join(out, source, test, data_set)
        os.makedirs(where, exist_ok=True)
        onnx.save(m, os.path.join(where, "model.onnx"))
        seedproof_layout(np.asarray(x)).astype(np.float32).tofile(os.path.join(where, "x.f32"))
        expected = seedproof_layout(np.asarray(expected))
        expected.astype(np.float32).tofile(os.path.join(where, "expected.f32"))
        cases.append({"name": "%s/%s" % (name, data_set), "dir": os.path.relpath(where, out),
                      "x_dims": list(seedproof_layout(np.asarray(x)).shape),
                      "expected_dims": list(expected.shape), "note": "; ".join(notes),
                      "rtol": 1e-3, "atol": 1e-7})
    return cases


def main():
    out = sys.argv[1]
    cases = []
    for source in ("node", "pytorch-converted"):
        for test in sorted(os.listdir(os.path.join(SUITE, source))):
            cases += prepare(source, test, out)
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main()
