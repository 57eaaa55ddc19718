#!/usr/bin/env python3
"""Runs a model compiled by `graphc optimize MODEL -o NAME.so` from Python (ctypes + numpy).

    python3 run_so.py NAME.so [--name NAME] [--threads N] [--output-dir DIR] INPUT.npy...

Inputs are .npy files in the model's input order (dtype and shape must match what the
library was compiled for; a string input takes an array of str); each output is written to DIR/output_<i>.npy with the shape the
run reports (an output whose shape the data decides, such as NonZero's, is allocated for the
bound the library declares and cut to the reported shape).
"""
import argparse
import ctypes
import os
import sys

import numpy as np

# ONNX TensorProto.DataType codes -> numpy dtypes.
DTYPES = {
    1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
    7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64,
}
STRING = 8


class TensorInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int32),
        ("rank", ctypes.c_int32),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("bytes", ctypes.c_size_t),
        ("bounded", ctypes.c_int32),
    ]


class Model:
    def __init__(self, path, name):
        self.lib = ctypes.CDLL(os.path.abspath(path))
        self.name = name
        f = self.fn
        f("num_inputs").restype = ctypes.c_size_t
        f("num_outputs").restype = ctypes.c_size_t
        for which in ("input_info", "output_info"):
            f(which).restype = ctypes.POINTER(TensorInfo)
            f(which).argtypes = [ctypes.c_size_t]
        f("run_with_shapes").restype = ctypes.c_int
        f("run_with_shapes").argtypes = [ctypes.c_void_p] * 4
        f("set_threads").argtypes = [ctypes.c_int]
        f("error_string").restype = ctypes.c_char_p
        f("error_string").argtypes = [ctypes.c_int]
        self.inputs = [self._info("input_info", i) for i in range(f("num_inputs")())]
        self.outputs = [self._info("output_info", i) for i in range(f("num_outputs")())]

    def fn(self, what):
        return getattr(self.lib, f"{self.name}_{what}")

    def _info(self, which, i):
        t = self.fn(which)(i).contents
        shape = tuple(t.shape[d] for d in range(t.rank))
        # A string input (code 8) is an array of C string pointers.
        dtype = np.str_ if t.dtype == STRING else DTYPES[t.dtype]
        return t.name.decode(), dtype, shape

    def set_threads(self, n):
        self.check(self.fn("set_threads")(n))

    def check(self, rc):
        if rc != 0:
            raise RuntimeError(f"{self.name}: {self.fn('error_string')(rc).decode()} (code {rc})")

    def run(self, arrays):
        if len(arrays) != len(self.inputs):
            raise ValueError(f"the model takes {len(self.inputs)} inputs, {len(arrays)} given")
        ins = []
        for a, (name, dtype, shape) in zip(arrays, self.inputs):
            if dtype is np.str_:
                if a.dtype.kind not in "USO" or a.shape != shape:
                    raise ValueError(f"input '{name}' must be strings{list(shape)}, "
                                     f"got {a.dtype}{list(a.shape)}")
                encoded = [str(v).encode() for v in a.reshape(-1)]
                ins.append((ctypes.c_char_p * max(1, len(encoded)))(*encoded))
                continue
            if a.dtype != dtype or a.shape != shape:
                raise ValueError(f"input '{name}' must be {np.dtype(dtype)}{list(shape)}, "
                                 f"got {a.dtype}{list(a.shape)}")
            ins.append(np.ascontiguousarray(a))
        # Flat buffers of the declared (for a bounded output: the bound's) size.
        outs = [np.empty(int(np.prod(shape)), dtype) for _, dtype, shape in self.outputs]
        shapes = [np.zeros(max(1, len(shape)), np.int64) for _, _, shape in self.outputs]
        in_ptrs = (ctypes.c_void_p * max(1, len(ins)))(
            *[ctypes.addressof(a) if isinstance(a, ctypes.Array) else a.ctypes.data for a in ins])
        out_ptrs = (ctypes.c_void_p * max(1, len(outs)))(*[a.ctypes.data for a in outs])
        shape_ptrs = (ctypes.c_void_p * max(1, len(shapes)))(*[s.ctypes.data for s in shapes])
        self.check(self.fn("run_with_shapes")(in_ptrs, out_ptrs, shape_ptrs, None))
        result = []
        for o, s, (_, _, shape) in zip(outs, shapes, self.outputs):
            dims = tuple(int(d) for d in s[:len(shape)])
            result.append(o[:int(np.prod(dims))].reshape(dims))
        return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("library")
    p.add_argument("inputs", nargs="*")
    p.add_argument("--name", help="the library's symbol prefix (default: its file name)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--output-dir", default=".")
    a = p.parse_args()
    name = a.name or os.path.splitext(os.path.basename(a.library))[0]
    m = Model(a.library, name)
    m.set_threads(a.threads)
    outs = m.run([np.load(f) for f in a.inputs])
    os.makedirs(a.output_dir, exist_ok=True)
    for i, (o, (oname, _, _)) in enumerate(zip(outs, m.outputs)):
        path = os.path.join(a.output_dir, f"output_{i}.npy")
        np.save(path, o)
        print(f"output {i} '{oname}': {o.dtype}{list(o.shape)} -> {path}")


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
