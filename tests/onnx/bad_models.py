#!/usr/bin/python3
"""ONNX files seedproof must refuse, each with an error naming the node, its
operator and why (tests/onnx/onnx_bad_input_test.cc holds what each must say).
Written with onnx.helper; every one of them but the last few passes ONNX's own
checker, so the refusals are seedproof's.

  bad_models.py OUT     writes OUT/<case>.onnx
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)


def weights(name, *shape):
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def model(nodes, initializers, input_shape=("N", 1, 8, 8), output="out", opset=14,
          inputs=None, check=True, output_rank=2):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))]
    outputs = [helper.make_tensor_value_info(output, TensorProto.FLOAT,
                                             ["d%d" % i for i in range(output_rank)])]
    graph = helper.make_graph(nodes, "bad", inputs, outputs, initializers)
    m = helper.make_model(graph, producer_name="bad_models.py",
                          opset_imports=[helper.make_opsetid("", opset)])
    if check:
        onnx.checker.check_model(m)
    return m


def conv(name, x, out, filters=4, channels=1, **attrs):
    return (helper.make_node("Conv", [x, name + "_w", name + "_b"], [out], name=name,
                             kernel_shape=[3, 3], **attrs),
            [weights(name + "_w", filters, channels // attrs.get("group", 1), 3, 3),
             weights(name + "_b", filters)])


def head(x, features, name="fc"):
    return ([helper.make_node("Flatten", [x], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", name + "_w", name + "_b"], ["out"], name=name,
                              transB=1)],
            [weights(name + "_w", 3, features), weights(name + "_b", 3)])


def cases():
    c1, w1 = conv("conv1", "x", "c1")
    relu = helper.make_node("Relu", ["c1"], ["r1"], name="relu1")
    tail, wt = head("r1", 4 * 6 * 6)
    yield "unsupported_op", model([c1, helper.make_node("Cos", ["c1"], ["r1"], name="cosine")]
                                  + tail, w1 + wt)

    # A conv bias added as (C): it would broadcast along the width.
    c1n = helper.make_node("Conv", ["x", "conv1_w"], ["c0"], name="conv1", kernel_shape=[3, 3])
    bias = helper.make_node("Add", ["c0", "wide_b"], ["c1"], name="bias_add")
    tail, wt = head("r1", 4 * 6 * 6)
    yield "bias_along_width", model([c1n, bias, relu] + tail,
                                    [w1[0], weights("wide_b", 6)] + wt)

    # A residual block: conv2's output added back to relu1's.
    c2, w2 = conv("conv2", "r1", "c2", filters=4, channels=4, pads=[1, 1, 1, 1])
    add = helper.make_node("Add", ["c2", "r1"], ["sum"], name="residual_add")
    tail, wt = head("sum", 4 * 6 * 6)
    yield "residual", model([c1, relu, c2, add] + tail, w1 + w2 + wt)

    # Two heads reading the same features.
    tail, wt = head("r1", 4 * 6 * 6)
    side = helper.make_node("Sigmoid", ["r1"], ["side"], name="side_branch")
    yield "branch", model([c1, relu, side] + tail, w1 + wt)

    tail, wt = head("r1", 4 * 6 * 6)
    yield "opset18", model([c1, relu] + tail, w1 + wt, opset=18, check=False)

    # Height and width named, not numbers: a shape that depends on the data.
    tail, wt = head("r1", 4 * 6 * 6)
    yield "symbolic_height", model([c1, relu] + tail, w1 + wt, input_shape=("N", 1, "height", 8))

    # The Gemm's weight was made for another input size.
    tail, wt = head("r1", 4 * 5 * 5)
    yield "gemm_weight_size", model([c1, relu] + tail, w1 + wt, check=True)

    # A bias of 3 values for 4 filters (the checker does not look).
    c1b, w1b = conv("conv1", "x", "c1")
    w1b[1] = weights("conv1_b", 3)
    tail, wt = head("r1", 4 * 6 * 6)
    yield "conv_bias_size", model([c1b, relu] + tail, w1b + wt)

    # An initializer whose raw bytes are fewer than its dims say.
    tail, wt = head("r1", 4 * 6 * 6)
    short = TensorProto()
    short.CopyFrom(w1[0])
    short.raw_data = short.raw_data[:-4]
    yield "short_initializer", model([c1, relu] + tail, [short, w1[1]] + wt, check=False)

    # Weights kept in a file beside the model.
    tail, wt = head("r1", 4 * 6 * 6)
    external = TensorProto()
    external.CopyFrom(w1[0])
    external.ClearField("raw_data")
    external.data_location = TensorProto.EXTERNAL
    entry = external.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    yield "external_data", model([c1, relu] + tail, [external, w1[1]] + wt, check=False)

    c1g, w1g = conv("grouped", "x", "c1", filters=4, channels=2, group=2)
    tail, wt = head("r1", 4 * 6 * 6)
    yield "grouped_conv", model([c1g, relu] + tail, w1g + wt, input_shape=("N", 2, 8, 8))

    c1d, w1d = conv("dilated", "x", "c1", dilations=[2, 2])
    tail, wt = head("r1", 4 * 4 * 4)
    yield "dilated_conv", model([c1d, relu] + tail, w1d + wt)

    pool = helper.make_node("MaxPool", ["r1"], ["p1"], name="pool_ceil", kernel_shape=[2, 2],
                            strides=[2, 2], ceil_mode=1)
    tail, wt = head("p1", 4 * 3 * 3)
    yield "ceil_mode", model([c1, relu, pool] + tail, w1 + wt)

    # A Reshape that does not flatten: (N, 4, 36).
    shape = numpy_helper.from_array(np.array([0, 4, 36], dtype=np.int64), "shape")
    reshape = helper.make_node("Reshape", ["r1", "shape"], ["flat3"], name="reshape_3d")
    yield "reshape_not_flat", model([c1, relu, reshape], w1 + [shape], output="flat3",
                                   output_rank=3)

    # A Reshape whose target shape is computed from the data.
    shape_of = helper.make_node("Shape", ["r1"], ["dims"], name="shape_of")
    reshape = helper.make_node("Reshape", ["r1", "dims"], ["same"], name="reshape_dynamic")
    yield "data_dependent_reshape", model([c1, relu, shape_of, reshape], w1, output="same",
                                         output_rank=4)

    # Two data inputs.
    x2 = helper.make_tensor_value_info("x2", TensorProto.FLOAT, ["N", 1, 8, 8])
    x1 = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])
    tail, wt = head("r1", 4 * 6 * 6)
    yield "two_inputs", model([c1, relu] + tail, w1 + wt, inputs=[x1, x2])

    # Integer input.
    xi = helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 1, 8, 8])
    cast = helper.make_node("Cast", ["x"], ["xf"], name="cast", to=TensorProto.FLOAT)
    c1c, w1c = conv("conv1", "xf", "c1")
    tail, wt = head("r1", 4 * 6 * 6)
    yield "int_input", model([cast, c1c, relu] + tail, w1c + wt, inputs=[xi])

    # Batch normalisation as it trains (training_mode 1): its outputs are batch statistics.
    bn_w = [numpy_helper.from_array(np.ones(4, np.float32), n) for n in ("s", "b", "m", "v")]
    bn = helper.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], ["bn", "rm", "rv"],
                          name="bn_training", training_mode=1)
    relu_bn = helper.make_node("Relu", ["bn"], ["r1"], name="relu1")
    tail, wt = head("r1", 4 * 6 * 6)
    yield "bn_training", model([c1, bn, relu_bn] + tail, w1 + bn_w + wt, opset=15)

    # A rank-3 input into a 2-d conv: libonnx 1.12's shape inference read past its
    # buffers and crashed the process on this (found by tests/fuzz).
    tail, wt = head("r1", 4 * 6 * 6)
    yield "conv_on_rank3_input", model([c1, relu] + tail, w1 + wt, input_shape=("N", 1, 8))

    # A pool striding 0: libonnx 1.12's shape inference divided by it (SIGFPE).
    pool0 = helper.make_node("MaxPool", ["r1"], ["p1"], name="pool0", kernel_shape=[2, 2],
                             strides=[0, 2])
    tail, wt = head("p1", 4 * 3 * 3)
    yield "pool_stride_zero", model([c1, relu, pool0] + tail, w1 + wt, check=False)

    # Nothing seedproof computes: the input straight out.
    yield "identity_only", model([helper.make_node("Identity", ["x"], ["out"], name="copy")], [],
                                output_rank=4)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, m in cases():
        with open(os.path.join(out, name + ".onnx"), "wb") as f:
            f.write(m.SerializeToString())


if __name__ == "__main__":
    main()
