#!/usr/bin/env python3
"""Loads a safetensors file with the Python reference (safetensors, numpy) and prints it as JSON.

Usage: read_with_reference.py FILE
Output: {"metadata": {...}, "tensors": {name: {"dtype": ..., "shape": [...], "values": [...]}}}
Every tensor is loaded twice: through the Rust validator (`safetensors.deserialize`, which accepts every
dtype incl. BF16) and, for dtypes numpy knows, through `safe_open(framework="numpy")`; the two must agree.
BF16 values are widened to fp32 by shifting the raw bits. Float values print with repr() precision, and
non-finite values as the strings "nan", "inf", "-inf". Used by the Swift test
`CheckpointSafetensorsTests.pythonReferenceLoadsOutput` when ADAPTERDROP_PYTHON names a python with
safetensors and numpy installed.
"""
import json
import math
import sys

import numpy as np
import safetensors
from safetensors import safe_open

path = sys.argv[1]
with open(path, "rb") as f:
    raw = f.read()
decoded = dict(safetensors.deserialize(raw))
np_types = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


out = {"metadata": {}, "tensors": {}}
with safe_open(path, framework="numpy") as f:
    out["metadata"] = f.metadata() or {}
    for name, info in decoded.items():
        dtype = info["dtype"]
        if dtype == "BF16":
            bits = np.frombuffer(bytes(info["data"]), dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32)
        else:
            values = np.frombuffer(bytes(info["data"]), dtype=np.dtype(np_types[dtype]).newbyteorder("<"))
            via_numpy = f.get_tensor(name)
            assert list(via_numpy.shape) == list(info["shape"]), name
            assert np.array_equal(via_numpy.reshape(-1), values, equal_nan=dtype.startswith("F")), name
        floats = dtype.startswith("F") or dtype == "BF16"
        items = [clean(float(v)) if floats else int(v) for v in values.reshape(-1)]
        out["tensors"][name] = {"dtype": dtype, "shape": info["shape"], "values": items}
json.dump(out, sys.stdout)
