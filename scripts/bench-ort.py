#!/usr/bin/env python3
"""Measures an ONNX model's latency in ONNX Runtime, as the baseline graphc is compared with
(ONNX Runtime is not a dependency of graphc; this script only measures it).

    python3 scripts/bench-ort.py MODEL [--threads N] [--runs N] [--warmup N] [--json]
                                 [--input NAME=file.npy]... [--seed S] [--dump-optimized OUT.onnx]

The session uses the CPUExecutionProvider with graph optimizations ORT_ENABLE_ALL,
intra_op_num_threads=N, inter_op_num_threads=1 and sequential execution. Inputs not given with
--input are seeded random (floats standard normal, integers in [0, 2), bools random; symbolic
dims set to 1). After the warm-up runs it times each of the --runs runs with perf_counter and
reports the median and p90 latency in ms. With --json the last stdout line is one JSON object:
{"model", "engine": "onnxruntime", "version", "threads", "runs", "median_ms", "p90_ms"}.
--dump-optimized writes the graph as ORT optimized it (to see which fusions it applied).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

NUMPY_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
}


def random_input(meta, rng):
    shape = [d if isinstance(d, int) and d >= 0 else 1 for d in meta.shape]
    dtype = NUMPY_DTYPES.get(meta.type)
    if dtype is None:
        sys.exit(f"input {meta.name}: unsupported type {meta.type}; give it with --input")
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(0, 2, size=shape).astype(dtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--input", action="append", default=[], metavar="NAME=file.npy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dump-optimized", metavar="OUT.onnx")
    args = ap.parse_args()
    if args.runs < 1 or args.threads < 1 or args.warmup < 0:
        sys.exit("--runs and --threads must be at least 1, --warmup at least 0")

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if args.dump_optimized:
        so.optimized_model_filepath = args.dump_optimized
    t0 = time.perf_counter()
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3

    metas = sess.get_inputs()
    given = {}
    for spec in args.input:
        name, sep, path = spec.partition("=")
        if not sep:
            sys.exit(f"--input {spec}: expected NAME=file.npy")
        if name not in {m.name for m in metas}:
            sys.exit(f"--input {spec}: the model has no input named {name!r} (inputs: "
                     f"{', '.join(m.name for m in metas)})")
        try:
            given[name] = np.load(path)
        except OSError as e:
            sys.exit(f"--input {spec}: {e}")
    rng = np.random.default_rng(args.seed)
    feeds = {m.name: given[m.name] if m.name in given else random_input(m, rng) for m in metas}

    for _ in range(args.warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e3)
    times = np.array(times)
    median = float(np.median(times))
    p90 = float(np.percentile(times, 90))

    name = os.path.basename(args.model)
    print(f"{name}: onnxruntime {ort.__version__}, {args.threads} thread(s), session load "
          f"{load_ms:.0f} ms, {args.warmup} warm-up + {args.runs} runs: median {median:.3f} ms, "
          f"p90 {p90:.3f} ms, min {times.min():.3f} ms")
    if args.json:
        print(json.dumps({"model": name, "engine": "onnxruntime", "version": ort.__version__,
                          "threads": args.threads, "runs": args.runs,
                          "median_ms": round(median, 4), "p90_ms": round(p90, 4)}))


if __name__ == "__main__":
    main()
