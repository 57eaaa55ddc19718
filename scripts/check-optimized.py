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
import onnx.numpy_helper
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


def stored_inputs(model, sess):
    """The inputs of a node test's first data set, when the model has one."""
    d = os.path.join(os.path.dirname(model), "test_data_set_0")
    if not os.path.isdir(d):
        return None
    feeds = {}
    for k, i in enumerate(sess.get_inputs()):
        p = os.path.join(d, f"input_{k}.pb")
        if not os.path.exists(p):
            return None
        t = onnx.TensorProto()
        with open(p, "rb") as f:
            t.ParseFromString(f.read())
        feeds[i.name] = onnx.numpy_helper.to_array(t)
    return feeds


class Skip(Exception):
    """ONNX Runtime cannot run the original model: nothing to compare with."""


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
    try:
        before = session(model)
        feeds = stored_inputs(model, before) or inputs_for(before, np.random.default_rng(0))
        ys = before.run(None, feeds)
    except Exception as e:
        raise Skip(str(e).splitlines()[0][:160]) from e
    after = session(out)
    # The optimized model keeps the graph inputs that have no initializer.
    names = {i.name for i in after.get_inputs()}
    zs = after.run(None, {k: v for k, v in feeds.items() if k in names})
    for k, (y, z) in enumerate(zip(ys, zs)):
        if y.shape != z.shape:
            return f"output {k}: shape {z.shape} != {y.shape}"
        # Half-precision results differ in their last bits when the order of operations
        # changes: compare them at half precision's resolution.
        tol = 1e-2 if y.dtype == np.float16 else 1e-4
        if not np.allclose(z, y, rtol=tol, atol=tol / 10, equal_nan=True):
            return f"output {k}: max abs difference {np.max(np.abs(z.astype(np.float64) - y))}"
    n_before = len(onnx.load(model).graph.node)
    n_after = len(onnx.load(out).graph.node)
    return f"ok ({n_before} -> {n_after} nodes)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphc", default="target/release/graphc")
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    bad = skipped = 0
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.models:
            try:
                res = check(args.graphc, m, tmp)
            except Skip as e:
                res = f"skipped: ONNX Runtime cannot run the original: {e}"
                skipped += 1
            except Exception as e:  # a checker or ORT rejection is a failure to report
                res = f"rejected: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
            if not res.startswith(("ok", "skipped")):
                bad += 1
            print(f"{m}: {res}", flush=True)
    ok = len(args.models) - bad - skipped
    print(f"{ok} ok, {bad} failed, {skipped} skipped (ONNX Runtime cannot run the original)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
