#!/usr/bin/env python3
"""Builds the four benchmark models of issue 4 with seeded random weights (needs onnx, numpy,
onnxruntime):

    python3 scripts/make-bench-models.py [OUTDIR]      # default .cache/bench-models/

- resnet18.onnx     ResNet-18 (Conv+BatchNormalization+Relu, MaxPool, basic blocks with residual
                    Add, GlobalAveragePool, Flatten, Gemm to 1000) on a 1x3x224x224 image;
- mobilenetv2.onnx  MobileNet-V2, width 1.0, 224x224: inverted residual blocks, depthwise Conv
                    (group = channels), BatchNormalization, Clip(min 0, max 6 as inputs) as ReLU6,
                    residual Adds, GlobalAveragePool, Flatten, Gemm to 1000;
- bert.onnx         a BERT-base-style encoder, 4 layers (hidden 768, 12 heads, FFN 3072), inputs
                    float32 embeddings [1,128,768] and an additive attention mask [1,1,1,128],
                    written with the standard ops exporters produce (MatMul+Add projections,
                    Reshape/Transpose heads, Div by sqrt(64), Softmax, the ReduceMean/Sub/Pow/
                    ReduceMean/Add/Sqrt/Div/Mul/Add LayerNorm chain, GELU in its Erf form);
- mlp.onnx          [64,784] -> MatMul+Add+Relu 2048 -> 2048 -> 2048 -> MatMul+Add 10.

All at opset 17, checked with onnx.checker and strict shape inference. Next to each model the
script writes its seeded input(s) as <model>_input_<i>.npy (in graph-input order, so
`graphc run MODEL --input A --input B` binds them) and ONNX Runtime's outputs on them as
expected_<model>_output_<i>.npy (CPU provider, graph optimizations disabled, 1 thread).
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class Builder:
    """Collects nodes and initializers of one graph; every name is unique."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.counts = {}

    def fresh(self, prefix):
        n = self.counts.get(prefix, 0)
        self.counts[prefix] = n + 1
        return f"{prefix}_{n}"

    def const(self, prefix, array):
        name = self.fresh(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def normal(self, prefix, shape, std):
        return self.const(prefix, (self.rng.standard_normal(shape) * std).astype(np.float32))

    def op(self, op_type, inputs, prefix=None, **attrs):
        out = self.fresh(prefix or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    # --- CNN pieces -------------------------------------------------------------------------
    def conv(self, x, cin, cout, k, stride=1, group=1, bias=False):
        fan_in = (cin // group) * k * k
        w = self.normal("conv_w", (cout, cin // group, k, k), math.sqrt(2.0 / fan_in))
        inputs = [x, w]
        if bias:
            inputs.append(self.normal("conv_b", (cout,), 0.01))
        p = k // 2
        return self.op("Conv", inputs, "conv", kernel_shape=[k, k], strides=[stride, stride],
                       pads=[p, p, p, p], group=group, dilations=[1, 1])

    def bn(self, x, c, gamma=1.0):
        r = self.rng
        scale = self.const("bn_scale", (gamma * (1 + 0.1 * r.standard_normal(c))).astype(np.float32))
        bias = self.const("bn_bias", (0.05 * r.standard_normal(c)).astype(np.float32))
        mean = self.const("bn_mean", (0.05 * r.standard_normal(c)).astype(np.float32))
        var = self.const("bn_var", (1 + 0.1 * r.random(c)).astype(np.float32))
        return self.op("BatchNormalization", [x, scale, bias, mean, var], "bn", epsilon=1e-5,
                       momentum=0.9)

    def gemm_head(self, x, cin, cout):
        x = self.op("GlobalAveragePool", [x], "gap")
        x = self.op("Flatten", [x], "flatten", axis=1)
        w = self.normal("fc_w", (cout, cin), math.sqrt(1.0 / cin))
        b = self.normal("fc_b", (cout,), 0.01)
        return self.op("Gemm", [x, w, b], "fc", alpha=1.0, beta=1.0, transB=1)

    # --- transformer pieces -----------------------------------------------------------------
    def linear(self, x, din, dout, std=0.02):
        w = self.normal("w", (din, dout), std)
        b = self.normal("b", (dout,), 0.02)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x, d, eps=1e-12):
        mean = self.op("ReduceMean", [x], "ln_mean", axes=[-1], keepdims=1)
        diff = self.op("Sub", [x, mean], "ln_sub")
        sq = self.op("Pow", [diff, self.const("two", np.float32(2.0))], "ln_pow")
        var = self.op("ReduceMean", [sq], "ln_var", axes=[-1], keepdims=1)
        std = self.op("Sqrt", [self.op("Add", [var, self.const("eps", np.float32(eps))], "ln_add")],
                      "ln_sqrt")
        norm = self.op("Div", [diff, std], "ln_div")
        gamma = self.const("ln_gamma", (1 + 0.05 * self.rng.standard_normal(d)).astype(np.float32))
        beta = self.const("ln_beta", (0.05 * self.rng.standard_normal(d)).astype(np.float32))
        return self.op("Add", [self.op("Mul", [norm, gamma], "ln_mul"), beta], "ln_out")

    def gelu(self, x):
        e = self.op("Erf", [self.op("Div", [x, self.const("sqrt2", np.float32(math.sqrt(2.0)))],
                                    "gelu_div")], "gelu_erf")
        one_plus = self.op("Add", [e, self.const("one", np.float32(1.0))], "gelu_add")
        return self.op("Mul", [self.op("Mul", [x, one_plus], "gelu_mul"),
                               self.const("half", np.float32(0.5))], "gelu_out")

    def model(self, name, inputs, outputs):
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="graphc scripts/make-bench-models.py")
        m.ir_version = 8
        return m


def resnet18():
    b = Builder(18)
    x = b.conv("image", 3, 64, 7, stride=2)
    x = b.op("Relu", [b.bn(x, 64)])
    x = b.op("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            s = stride if block == 0 else 1
            y = b.op("Relu", [b.bn(b.conv(x, cin, cout, 3, stride=s), cout)])
            # A smaller gamma on the block's last BN keeps the residual sum from growing.
            y = b.bn(b.conv(y, cout, cout, 3), cout, gamma=0.5)
            shortcut = x
            if s != 1 or cin != cout:
                shortcut = b.bn(b.conv(x, cin, cout, 1, stride=s), cout)
            x = b.op("Relu", [b.op("Add", [y, shortcut], "residual")])
            cin = cout
    logits = b.gemm_head(x, 512, 1000)
    b.nodes[-1].output[0] = "logits"
    return b.model("resnet18",
                   [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 224, 224])],
                   [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])])


def mobilenetv2():
    b = Builder(2)
    lo = b.const("clip_min", np.float32(0.0))
    hi = b.const("clip_max", np.float32(6.0))

    def relu6(x):
        return b.op("Clip", [x, lo, hi], "relu6")

    x = relu6(b.bn(b.conv("image", 3, 32, 3, stride=2), 32))
    cin = 32
    # (expansion t, output channels c, repeats n, first stride s), width multiplier 1.0
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = x
            if t != 1:
                y = relu6(b.bn(b.conv(y, cin, hidden, 1), hidden))
            y = relu6(b.bn(b.conv(y, hidden, hidden, 3, stride=stride, group=hidden), hidden))
            y = b.bn(b.conv(y, hidden, c, 1), c, gamma=0.5)
            if stride == 1 and cin == c:
                y = b.op("Add", [x, y], "residual")
            x = y
            cin = c
    x = relu6(b.bn(b.conv(x, cin, 1280, 1), 1280))
    b.gemm_head(x, 1280, 1000)
    b.nodes[-1].output[0] = "logits"
    return b.model("mobilenetv2",
                   [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 224, 224])],
                   [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])])


def bert(layers=4, seq=128, hidden=768, heads=12, ffn=3072):
    b = Builder(768)
    dh = hidden // heads
    split_shape = b.const("shape_heads", np.array([1, seq, heads, dh], dtype=np.int64))
    merge_shape = b.const("shape_merge", np.array([1, seq, hidden], dtype=np.int64))
    scale = b.const("sqrt_dh", np.float32(math.sqrt(dh)))
    x = "embeddings"
    for _ in range(layers):
        q = b.op("Transpose", [b.op("Reshape", [b.linear(x, hidden, hidden), split_shape])],
                 perm=[0, 2, 1, 3])
        k = b.op("Transpose", [b.op("Reshape", [b.linear(x, hidden, hidden), split_shape])],
                 perm=[0, 2, 3, 1])
        v = b.op("Transpose", [b.op("Reshape", [b.linear(x, hidden, hidden), split_shape])],
                 perm=[0, 2, 1, 3])
        scores = b.op("Div", [b.op("MatMul", [q, k], "scores"), scale])
        probs = b.op("Softmax", [b.op("Add", [scores, "attention_mask"], "masked")], axis=-1)
        ctx = b.op("MatMul", [probs, v], "context")
        ctx = b.op("Reshape", [b.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        attn = b.linear(ctx, hidden, hidden)
        x = b.layer_norm(b.op("Add", [attn, x], "residual"), hidden)
        h = b.gelu(b.linear(x, hidden, ffn))
        x = b.layer_norm(b.op("Add", [b.linear(h, ffn, hidden), x], "residual"), hidden)
    b.nodes[-1].output[0] = "last_hidden_state"
    return b.model("bert_encoder",
                   [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, [1, seq, hidden]),
                    helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, [1, 1, 1, seq])],
                   [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                                  [1, seq, hidden])])


def mlp(batch=64, dims=(784, 2048, 2048, 2048, 10)):
    b = Builder(784)
    x = "input"
    for i in range(len(dims) - 1):
        w = b.normal("w", (dims[i], dims[i + 1]), math.sqrt(2.0 / dims[i]))
        bias = b.normal("b", (dims[i + 1],), 0.01)
        x = b.op("Add", [b.op("MatMul", [x, w]), bias])
        if i + 2 < len(dims):
            x = b.op("Relu", [x])
    b.nodes[-1].output[0] = "logits"
    return b.model("mlp",
                   [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, dims[0]])],
                   [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, dims[-1]])])


def make_inputs(name, rng):
    if name == "bert":
        emb = rng.standard_normal((1, 128, 768)).astype(np.float32)
        mask = np.zeros((1, 1, 1, 128), dtype=np.float32)
        mask[..., 100:] = -10000.0  # the last 28 positions are padding
        return [emb, mask]
    if name == "mlp":
        return [rng.random((64, 784)).astype(np.float32)]
    return [rng.standard_normal((1, 3, 224, 224)).astype(np.float32)]


def check(model):
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                                 data_prop=True)
    known = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in model.graph.output:
        got = [d.dim_value for d in known[out.name].type.tensor_type.shape.dim]
        want = [d.dim_value for d in out.type.tensor_type.shape.dim]
        assert got == want, f"{out.name}: inferred {got}, declared {want}"
    # Every intermediate value must have a fully inferred static shape.
    for vi in inferred.graph.value_info:
        dims = vi.type.tensor_type.shape.dim
        assert all(d.HasField("dim_value") for d in dims), f"{vi.name} has unknown dims"


def run_ort(path, inputs, level):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feeds = {i.name: a for i, a in zip(sess.get_inputs(), inputs)}
    return sess.run(None, feeds)


def main():
    import onnxruntime as ort
    out_dir = os.path.normpath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", ".cache", "bench-models"))
    os.makedirs(out_dir, exist_ok=True)
    for name, build in [("resnet18", resnet18), ("mobilenetv2", mobilenetv2), ("bert", bert),
                        ("mlp", mlp)]:
        model = build()
        check(model)
        path = os.path.join(out_dir, f"{name}.onnx")
        onnx.save(model, path)
        inputs = make_inputs(name, np.random.default_rng(1000 + len(name)))
        for i, a in enumerate(inputs):
            np.save(os.path.join(out_dir, f"{name}_input_{i}.npy"), a)
        outs = run_ort(path, inputs, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        fused = run_ort(path, inputs, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        for i, o in enumerate(outs):
            assert np.all(np.isfinite(o)), f"{name}: output {i} is not finite"
            np.save(os.path.join(out_dir, f"expected_{name}_output_{i}.npy"), o)
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(outs, fused))
        n_params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
        print(f"{path}: {len(model.graph.node)} nodes, {n_params / 1e6:.1f}M params, "
              f"output {outs[0].shape} |max| {float(np.max(np.abs(outs[0]))):.3g} "
              f"std {float(np.std(outs[0])):.3g}; ORT all-optimizations vs none max diff {diff:.2e}")


if __name__ == "__main__":
    main()
