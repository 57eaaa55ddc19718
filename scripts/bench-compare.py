#!/usr/bin/env python3
"""graphc against ONNX Runtime, side by side in one run: for each model and thread count it
runs `graphc bench --json` and `scripts/bench-ort.py --json` back to back (graphc first, then
ORT, then the next pair), repeats the whole sweep --rounds times, and prints a Markdown table
of the per-round medians' median.

    python3 scripts/bench-compare.py [--graphc target/release/graphc] [--threads 1,2]
                                     [--rounds 3] [--runs 30] [--models a,b,...]

Models: the four built by scripts/make-bench-models.py (.cache/bench-models/, run on their
saved inputs) and the nine light models of the ONNX test data (.cache/onnx-1.21.0/light/, on
seeded random inputs). Needs a Python with onnxruntime and numpy (ONNX Runtime is only a
measuring tool; graphc does not depend on it).
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILT = ["resnet18", "mobilenetv2", "bert", "mlp"]
LIGHT = ["resnet50", "densenet121", "inception_v1", "inception_v2", "shufflenet",
         "squeezenet", "vgg19", "bvlc_alexnet", "zfnet512"]


def model_args(name):
    built = os.path.join(ROOT, ".cache/bench-models", f"{name}.onnx")
    if os.path.exists(built):
        inputs = sorted(glob.glob(os.path.join(ROOT, ".cache/bench-models", f"{name}_input_*.npy")))
        return built, inputs
    return os.path.join(ROOT, ".cache/onnx-1.21.0/light", f"light_{name}.onnx"), []


def last_json(out):
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no JSON line in:\n" + out)


def run_graphc(graphc, model, inputs, threads, runs):
    cmd = [graphc, "bench", model, "--json", "--threads", str(threads), "--runs", str(runs)]
    for i in inputs:
        cmd += ["--input", i]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return last_json(out)


def run_ort(model, inputs, threads, runs):
    import onnx  # noqa: F401  (only to fail early with a clear message if missing)
    cmd = [sys.executable, os.path.join(ROOT, "scripts/bench-ort.py"), model, "--json",
           "--threads", str(threads), "--runs", str(runs)]
    if inputs:
        import onnxruntime as ort
        names = [i.name for i in ort.InferenceSession(model).get_inputs()]
        for n, f in zip(names, inputs):
            cmd += ["--input", f"{n}={f}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return last_json(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graphc", default=os.path.join(ROOT, "target/release/graphc"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--models", default=",".join(BUILT + LIGHT))
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    models = a.models.split(",")
    res = {}
    for r in range(a.rounds):
        for m in models:
            path, inputs = model_args(m)
            runs = max(5, a.runs // 3) if m in ("vgg19", "zfnet512", "bvlc_alexnet") else a.runs
            for t in threads:
                g = run_graphc(a.graphc, path, inputs, t, runs)
                o = run_ort(path, inputs, t, runs)
                res.setdefault((m, t), []).append((g, o))
                print(f"round {r + 1} {m} x{t}: graphc {g['optimized']['median_ms']:.2f} ms, "
                      f"ORT {o['median_ms']:.2f} ms", file=sys.stderr)
    med = statistics.median
    print("| model | threads | graphc median ms | graphc p90 | ORT median ms | ORT p90 | "
          "graphc / ORT | unoptimized ms | passes speedup | arena |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in models:
        for t in threads:
            rs = res[(m, t)]
            gm = med(g["optimized"]["median_ms"] for g, _ in rs)
            gp = med(g["optimized"]["p90_ms"] for g, _ in rs)
            om = med(o["median_ms"] for _, o in rs)
            op = med(o["p90_ms"] for _, o in rs)
            um = med(g["unoptimized"]["median_ms"] for g, _ in rs)
            arena = rs[0][0]["arena_bytes"] / (1 << 20)
            print(f"| {m} | {t} | {gm:.2f} | {gp:.2f} | {om:.2f} | {op:.2f} | {gm / om:.2f} | "
                  f"{um:.2f} | {um / gm:.2f}x | {arena:.1f} MiB |")


if __name__ == "__main__":
    main()
