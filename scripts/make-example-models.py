"""Builds the small example models shipped in examples/models (needs `pip install onnx numpy`).

tiny_cnn.onnx: Conv -> BatchNormalization -> Relu -> MaxPool -> Conv -> Relu ->
GlobalAveragePool -> Flatten -> Gemm -> Softmax on a 1x3x32x32 image, seeded random weights.
"""
import os
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

rng = np.random.default_rng(0)
out_dir = os.path.join(os.path.dirname(__file__), "..", "examples", "models")


def init(name, shape, scale=0.2):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


inits = [
    init("conv1_w", (8, 3, 3, 3)), init("conv1_b", (8,)),
    numpy_helper.from_array((1 + 0.1 * rng.standard_normal(8)).astype(np.float32), "bn_scale"),
    init("bn_bias", (8,)), init("bn_mean", (8,)),
    numpy_helper.from_array((0.5 + rng.random(8)).astype(np.float32), "bn_var"),
    init("conv2_w", (16, 8, 3, 3)), init("conv2_b", (16,)),
    init("fc_w", (10, 16)), init("fc_b", (10,)),
]
nodes = [
    helper.make_node("Conv", ["image", "conv1_w", "conv1_b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
    helper.make_node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn1"], name="bn1"),
    helper.make_node("Relu", ["bn1"], ["r1"], name="relu1"),
    helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Conv", ["p1", "conv2_w", "conv2_b"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
    helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
    helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
    helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
    helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
]
graph = helper.make_graph(
    nodes, "tiny_cnn",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])],
    [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 10])],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="graphc-examples")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(out_dir, "tiny_cnn.onnx"))
np.save(os.path.join(out_dir, "tiny_cnn_image.npy"), rng.random((1, 3, 32, 32), dtype=np.float32))
print("wrote", out_dir)

# The expected output, computed by the onnx package's own reference evaluator (an oracle
# independent of graphc); tests/it/cli.rs checks `graphc run` against it.
from onnx.reference import ReferenceEvaluator

image = np.load(os.path.join(out_dir, "tiny_cnn_image.npy"))
(probs,) = ReferenceEvaluator(model).run(None, {"image": image})
np.save(os.path.join(out_dir, "tiny_cnn_expected.npy"), probs)
