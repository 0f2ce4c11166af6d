#!/usr/bin/env python3
"""Converts AdapterHub PyTorch pickle weights to safetensors, which is all AdapterDrop for Swift reads.

    /work/venv/bin/python scripts/convert_bin_to_safetensors.py FOLDER [FOLDER ...] [--keep]

In each folder: pytorch_adapter.bin -> adapter.safetensors, pytorch_model_head.bin -> model_head.safetensors,
pytorch_model_adapter_fusion.bin -> model_adapter_fusion.safetensors (the names adapters 1.3.0 uses with
use_safetensors=True, adapters/utils.py L45-57). Tensors are loaded with torch.load(weights_only=True), so no
pickled code runs. Tensors that share memory (adapters 1.3.0 stores an ln_before LayerNorm under two names,
which makes its own safetensors saving fail) are cloned. The .bin files are removed unless --keep is given.
Needs torch and safetensors (e.g. the /work/venv environment).
"""

import argparse
import sys
from pathlib import Path

PAIRS = {
    "pytorch_adapter.bin": "adapter.safetensors",
    "pytorch_model_head.bin": "model_head.safetensors",
    "pytorch_model_adapter_fusion.bin": "model_adapter_fusion.safetensors",
}


def convert(folder: Path, keep: bool) -> int:
    import torch
    from safetensors.torch import save_file

    converted = 0
    for source, target in PAIRS.items():
        src = folder / source
        if not src.exists():
            continue
        state = torch.load(src, map_location="cpu", weights_only=True)
        tensors = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in state.items()}
        tmp = folder / (target + ".tmp")
        save_file(tensors, str(tmp), metadata={"format": "pt"})
        tmp.replace(folder / target)
        if not keep:
            src.unlink()
        print(f"{src} -> {folder / target} ({len(tensors)} tensors)")
        converted += 1
    return converted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the .bin files")
    args = ap.parse_args()
    total = sum(convert(f, args.keep) for f in args.folders)
    if total == 0:
        sys.exit("no pytorch_*.bin files found")


if __name__ == "__main__":
    main()
