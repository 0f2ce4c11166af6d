"""Shared helpers for the parity fixture generators (run with the pinned venv, see docs/fixtures.md).

Everything here is deterministic: fixed seeds, one CPU thread, fp32, eval mode, eager attention.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "Tests" / "Fixtures"

# Versions the fixtures were generated with; a mismatch is an error (pass --allow-version-mismatch to override).
PINNED = {
    "torch": "2.15.0",
    "transformers": "4.57.6",
    "adapters": "1.3.0",
    "tokenizers": "0.22.2",
    "safetensors": "0.8.0",
    "numpy": "2.4.6",
}


def check_versions(allow_mismatch: bool, modules: tuple[str, ...]) -> dict[str, str]:
    """Returns {package: version} for `modules`; exits if one differs from PINNED unless allowed."""
    found = {}
    for name in modules:
        mod = __import__(name)
        version = mod.__version__.split("+")[0]
        found[name] = version
        if version != PINNED[name]:
            msg = f"{name} {version} is installed, fixtures are pinned to {PINNED[name]}"
            if not allow_mismatch:
                sys.exit(f"error: {msg} (see scripts/requirements-parity.txt)")
            print(f"warning: {msg}", file=sys.stderr)
    return found


def set_deterministic(seed: int) -> None:
    """One thread, deterministic kernels, seeded RNGs."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    np.random.seed(seed)


def provenance(script: str, versions: dict[str, str], **extra: str) -> dict[str, str]:
    """safetensors metadata (str -> str) naming the generator and the library versions."""
    meta = {"generator": script, "python": platform.python_version()}
    meta.update({f"version.{k}": v for k, v in versions.items()})
    meta.update({k: str(v) for k, v in extra.items()})
    return meta


@torch.no_grad()
def redraw_parameters(model: torch.nn.Module, seed: int) -> None:
    """Replaces every parameter with values drawn from a generator seeded with `seed`, in sorted-name order
    (independent of module construction order), so that every weight visibly matters:

    - Linear weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2): activations keep unit scale, so softmax rows are
      far from uniform and GELU inputs span [-3, 3] (gelu vs gelu_new differ by ~1e-3 there).
    - Embedding tables ~ N(0, 0.5^2) (including the padding rows, which HF would zero).
    - LayerNorm weight ~ 1 + N(0, 0.2^2), bias ~ N(0, 0.1^2), so gamma/beta are tested.
    """
    gen = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    for name in sorted(params):
        p = params[name]
        leaf = name.rsplit(".", 2)
        if "LayerNorm" in name or "layer_norm" in name.lower():
            base = 1.0 if name.endswith("weight") else 0.0
            scale = 0.2 if name.endswith("weight") else 0.1
            p.copy_(base + scale * torch.randn(p.shape, generator=gen))
        elif "embeddings" in name and p.dim() == 2:
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
        elif p.dim() == 2:
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
        elif p.dim() == 1:
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        else:
            raise ValueError(f"unexpected parameter {name} {tuple(p.shape)} ({leaf})")


def to_numpy(t: torch.Tensor) -> np.ndarray:
    arr = t.detach().cpu().numpy()
    return np.ascontiguousarray(arr)


def save_tensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Writes a safetensors file with a byte-reproducible layout (the safetensors package serialises its
    metadata from a hash map, so its header order changes between runs): header keys sorted, tensors stored in
    name order, header padded with spaces to a multiple of 8 bytes. Int tensors are stored as int64 (I64),
    float tensors as float32 (F32), little-endian. The result is read back with the safetensors package."""
    from safetensors.numpy import load_file

    arrays = {}
    for k in sorted(tensors):
        v = np.asarray(tensors[k])
        if v.dtype.kind in "iub":
            arrays[k] = (np.ascontiguousarray(v.astype("<i8")), "I64")
        elif v.dtype.kind == "f":
            arrays[k] = (np.ascontiguousarray(v.astype("<f4")), "F32")
        else:
            raise TypeError(f"{k}: unsupported dtype {v.dtype}")
    header = {"__metadata__": {k: str(metadata[k]) for k in sorted(metadata)}}
    offset = 0
    for k, (arr, dtype) in arrays.items():
        header[k] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    blob = json.dumps(header, separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode()
    blob += b" " * (-len(blob) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for arr, _ in arrays.values():
            f.write(arr.tobytes())
    path.chmod(0o644)
    back = load_file(str(path))
    assert sorted(back) == sorted(arrays) and all(np.array_equal(back[k], a) for k, (a, _) in arrays.items())


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False, ensure_ascii=False)
        f.write("\n")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checksums(folder: Path) -> None:
    """Writes folder/SHA256SUMS (sha256sum format) over every other file below folder, sorted by path."""
    lines = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "SHA256SUMS":
            lines.append(f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}\n")
    (folder / "SHA256SUMS").write_text("".join(lines))


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def env_note() -> str:
    return f"{platform.machine()} {os.cpu_count()} cpus, torch threads {torch.get_num_threads()}"
