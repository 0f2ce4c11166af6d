#!/usr/bin/env python3
"""Loads adapters, a fusion and heads saved by AdapterDrop for Swift into adapters 1.3.0 and compares the logits.

    D=$(mktemp -d) && ADAPTERDROP_EXPORT_DIR=$D swift test --filter AdapterExportForPythonCheck \
        && /work/venv/bin/python scripts/parity/check_swift_saved_adapters.py $D

The Swift test writes a/ (seq_bn rf 4), b/ (houlsby rf 8 with ln_before and gating), c/ (seq_bn rf 8, gelu),
fusion/ (dynamic "a,c"), each adapter with its head, and swift_logits.safetensors. This script loads them with
the library's own loaders (use_safetensors=True) into BertAdapterModel(tiny-bert, eager) and checks every
logits tensor within 1e-5 abs + 1e-5 rel. Exit status 1 on a mismatch.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    folder = Path(sys.argv[1])
    from adapters import BertAdapterModel
    from adapters.composition import Fuse, Stack

    model = BertAdapterModel.from_pretrained(ROOT / "Tests/Fixtures/tiny-bert", attn_implementation="eager").eval()
    for name in ["a", "b", "c"]:
        model.load_adapter(str(folder / name), use_safetensors=True)
    model.load_adapter_fusion(str(folder / "fusion"), use_safetensors=True)
    e = load_file(str(ROOT / "Tests/Fixtures/tiny-bert/expected.safetensors"))
    swift = load_file(str(folder / "swift_logits.safetensors"))
    setups = {"a": ("a", "a", None), "b": ("b", "b", None), "stack": (Stack("a", "c"), "c", None),
              "fuse": (Fuse("a", "c"), "c", None), "skip_0.b": ("b", "b", [0])}
    worst = 0.0
    ok = True
    for key, (setup, head, skip) in setups.items():
        model.set_active_adapters(setup, skip_layers=skip)
        with torch.no_grad():
            out = model(input_ids=e["input_ids"], attention_mask=e["attention_mask"],
                        token_type_ids=e["token_type_ids"], head=head)
        ref = out.logits.numpy()
        ours = swift[f"{key}.logits"].numpy()
        err = np.abs(ours - ref)
        worst = max(worst, float(err.max()))
        good = bool((err <= 1e-5 + 1e-5 * np.abs(ref)).all())
        ok &= good
        print(f"{key}: max abs diff {err.max():.3e} {'ok' if good else 'MISMATCH'}")
    print(f"worst {worst:.3e}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
