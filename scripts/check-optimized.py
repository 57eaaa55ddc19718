#!/usr/bin/env python3
"""Checks `graphc optimize -o` against outside tools: for each model given, the optimized
model must pass onnx.checker (full check, with shape inference) and ONNX Runtime must load it
and compute what it computes on the original model (seeded random inputs, rtol 1e-4).

Needs a Python with onnx, onnxruntime and numpy (not dependencies of graphc):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install onnx==1.21.0 onnxruntime numpy
    /tmp/venv/bin/python scripts/check-optimized.py [--graphc PATH] MODEL.onnx...
Exit status 1 if any model fails.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

ort.set_default_logger_severity(3)

DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def inputs_for(sess, rng):
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        dt = DTYPES.get(i.type)
        if dt is None:
            raise ValueError(f"input {i.name}: type {i.type} not handled by this script")
        if dt == np.bool_:
            feeds[i.name] = rng.random(shape) > 0.5
        elif np.issubdtype(dt, np.integer):
            feeds[i.name] = rng.integers(0, 3, shape).astype(dt)
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(dt)
    return feeds


def session(path):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def check(graphc, model, tmp):
    out = os.path.join(tmp, os.path.basename(model))
    r = subprocess.run([graphc, "optimize", model, "-o", out], capture_output=True, text=True)
    if r.returncode != 0:
        return f"graphc optimize failed: {r.stderr.strip()}"
    onnx.checker.check_model(onnx.load(out), full_check=True)
    before, after = session(model), session(out)
    feeds = inputs_for(before, np.random.default_rng(0))
    # The optimized model keeps the graph inputs that have no initializer.
    names = {i.name for i in after.get_inputs()}
    ys = before.run(None, feeds)
    zs = after.run(None, {k: v for k, v in feeds.items() if k in names})
    for k, (y, z) in enumerate(zip(ys, zs)):
        if y.shape != z.shape:
            return f"output {k}: shape {z.shape} != {y.shape}"
        if not np.allclose(z, y, rtol=1e-4, atol=1e-5, equal_nan=True):
            return f"output {k}: max abs difference {np.max(np.abs(z.astype(np.float64) - y))}"
    n_before = len(onnx.load(model).graph.node)
    n_after = len(onnx.load(out).graph.node)
    return f"ok ({n_before} -> {n_after} nodes)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphc", default="target/release/graphc")
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.models:
            try:
                res = check(args.graphc, m, tmp)
            except Exception as e:  # a checker or ORT rejection is a failure to report
                res = f"rejected: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
            if not res.startswith("ok"):
                bad += 1
            print(f"{m}: {res}", flush=True)
    print(f"{len(args.models) - bad} of {len(args.models)} ok")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
