#!/usr/bin/env python3
"""Writes reference-dtypes.safetensors with the Python reference writer (safetensors==0.8.0, numpy).

One tensor per dtype, shape [2, 3]: floats hold i / 2 (F32, F16, BF16, F64), integers hold i - 3 (I64, I32),
for i = 0..5; metadata {"format": "np"}. All values are exact in every dtype, so the Swift test compares
exactly. numpy has no bfloat16, so the BF16 tensor is written from its raw bits through safetensors'
TensorSpec API (bf16 of i / 2 is the upper 16 bits of the fp32 value).

Run manually (never in CI):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install safetensors==0.8.0 numpy
    /tmp/venv/bin/python Tests/Fixtures/checkpoint/make_reference_fixture.py
"""
import os

import numpy as np
import safetensors
from safetensors import TensorSpec, serialize

assert safetensors.__version__ == "0.8.0", safetensors.__version__

here = os.path.dirname(os.path.abspath(__file__))
floats = (np.arange(6, dtype=np.float64) / 2).reshape(2, 3)
ints = (np.arange(6) - 3).reshape(2, 3)
arrays = {
    "f32": np.ascontiguousarray(floats.astype(np.float32)),
    "f16": np.ascontiguousarray(floats.astype(np.float16)),
    "f64": np.ascontiguousarray(floats.astype(np.float64)),
    "i64": np.ascontiguousarray(ints.astype(np.int64)),
    "i32": np.ascontiguousarray(ints.astype(np.int32)),
    "bf16": np.ascontiguousarray((floats.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)),
}
names = {np.float32: "float32", np.float16: "float16", np.float64: "float64", np.int64: "int64", np.int32: "int32"}
specs = {}
for key, array in arrays.items():
    dtype = "bfloat16" if key == "bf16" else names[array.dtype.type]
    specs[key] = TensorSpec(dtype=dtype, shape=list(array.shape), data_ptr=array.ctypes.data, data_len=array.nbytes)
blob = serialize(specs, metadata={"format": "np"})
with open(os.path.join(here, "reference-dtypes.safetensors"), "wb") as f:
    f.write(blob)
print(f"wrote {len(blob)} bytes")
