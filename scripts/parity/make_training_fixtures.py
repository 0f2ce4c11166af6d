#!/usr/bin/env python3
"""Generates the training fixtures (formats: docs/training.md, "Fixtures").

    /work/venv/bin/python scripts/parity/make_training_fixtures.py

- Tests/Fixtures/training-encoder/: backward through the frozen tiny-bert encoder (eval mode, eager attention,
  fp32) for the scalar loss L = sum(last_hidden_state * R) with a fixed random R: the gradient w.r.t. the input
  of every layer (hidden_states[k], k = 0..L-1) and w.r.t. every layer's two LayerNorm weights and biases.
- Tests/Fixtures/training-adamw/: a 10-step torch.optim.AdamW trajectory on three small parameters with
  gradient accumulation (2 micro-batches), clip_grad_norm_(max_norm=4.0), get_linear_schedule_with_warmup
  (3 warm-up steps of 10) and one parameter whose gradient is None on some steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    FIXTURES,
    check_versions,
    provenance,
    save_tensors,
    set_deterministic,
    write_checksums,
)
from _common import to_numpy as _shared_view  # noqa: E402


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A copy: _common.to_numpy shares memory with the tensor, and the optimizer/clipping mutate in place."""
    return _shared_view(t).copy()

SCRIPT = "scripts/parity/make_training_fixtures.py"
SEED = 20101918


def encoder_fixture(versions: dict[str, str]) -> None:
    from safetensors.numpy import load_file
    from transformers import BertModel

    set_deterministic(SEED)
    base = FIXTURES / "tiny-bert"
    model = BertModel.from_pretrained(str(base), attn_implementation="eager").float().eval()
    inputs = load_file(str(base / "expected.safetensors"))
    ids = torch.from_numpy(inputs["input_ids"])
    mask = torch.from_numpy(inputs["attention_mask"])
    types = torch.from_numpy(inputs["token_type_ids"])
    for p in model.parameters():
        p.requires_grad_(False)
    ln = {}
    for l, layer in enumerate(model.encoder.layer):
        for key, mod in (("attention", layer.attention.output.LayerNorm), ("output", layer.output.LayerNorm)):
            mod.weight.requires_grad_(True)
            mod.bias.requires_grad_(True)
            ln[f"layer{l}.{key}.weight"] = mod.weight
            ln[f"layer{l}.{key}.bias"] = mod.bias
    # Makes the embedding output part of the graph so that hidden_states[0] can retain its gradient
    # (its own gradient is not stored).
    model.embeddings.LayerNorm.weight.requires_grad_(True)
    out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    states = out.hidden_states
    for s in states:
        s.retain_grad()
    gen = torch.Generator().manual_seed(SEED)
    r = torch.randn(out.last_hidden_state.shape, generator=gen)
    loss = (out.last_hidden_state * r).sum()
    loss.backward()
    tensors = {
        "input_ids": inputs["input_ids"],
        "attention_mask": inputs["attention_mask"],
        "token_type_ids": inputs["token_type_ids"],
        "R": to_numpy(r),
        "loss": np.array([loss.item()], dtype=np.float32),
        "last_hidden_state": to_numpy(out.last_hidden_state),
    }
    for k in range(len(model.encoder.layer) + 1):
        tensors[f"hidden_states.{k}"] = to_numpy(states[k])
        tensors[f"grad.hidden_states.{k}"] = to_numpy(states[k].grad)
    for name, p in ln.items():
        tensors[f"grad.{name}"] = to_numpy(p.grad)
    folder = FIXTURES / "training-encoder"
    save_tensors(folder / "expected.safetensors", tensors,
                 provenance(SCRIPT, versions, seed=SEED, model="tiny-bert", attn_implementation="eager",
                            loss="sum(last_hidden_state * R)"))
    write_checksums(folder)
    print(f"wrote {folder}: loss {loss.item():.6f}")


def adamw_fixture(versions: dict[str, str]) -> None:
    from transformers import get_linear_schedule_with_warmup

    set_deterministic(SEED + 1)
    gen = torch.Generator().manual_seed(SEED + 1)
    shapes = {"a": (4, 3), "b": (5,), "c": (2, 2)}
    params = {k: torch.nn.Parameter(torch.randn(s, generator=gen)) for k, s in shapes.items()}
    steps, warmup, accumulation = 10, 3, 2
    lr, wd, max_norm = 0.1, 0.01, 4.0
    # "b" plays a bias: no weight decay (as HF Trainer does for biases and LayerNorm weights).
    opt = torch.optim.AdamW([{"params": [params["a"], params["c"]], "weight_decay": wd},
                             {"params": [params["b"]], "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.999), eps=1e-8)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=warmup, num_training_steps=steps)
    # "c" has no gradient (None) on these steps, like an adapter in a layer AdapterDrop skipped.
    c_skipped = {2, 5, 6}
    # Gradient scale per step: some steps clip (total norm > 1), some do not.
    scales = [3.0, 0.2, 1.5, 0.05, 4.0, 0.3, 2.0, 0.1, 0.8, 5.0]
    tensors = {f"initial.{k}": to_numpy(p) for k, p in params.items()}
    lrs, norms = [], []
    for s in range(steps):
        for m in range(accumulation):
            names = [k for k in params if not (k == "c" and s in c_skipped)]
            g = {k: scales[s] * torch.randn(shapes[k], generator=gen) for k in names}
            # loss = sum(G * p + 0.5 * p^2) / accumulation: grad = (G + p) / accumulation
            loss = sum(((g[k] * params[k]) + 0.5 * params[k] ** 2).sum() for k in names) / accumulation
            micro = torch.autograd.grad(loss, [params[k] for k in names], retain_graph=True)
            for k, d in zip(names, micro):
                tensors[f"step{s}.micro{m}.{k}"] = to_numpy(d)
            loss.backward()
        for k, p in params.items():
            if p.grad is not None:
                tensors[f"step{s}.accumulated.{k}"] = to_numpy(p.grad)
        lrs.append(opt.param_groups[0]["lr"])
        norm = torch.nn.utils.clip_grad_norm_([p for p in params.values() if p.grad is not None], max_norm)
        norms.append(float(norm))
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        for k, p in params.items():
            tensors[f"step{s}.param.{k}"] = to_numpy(p)
    tensors["lr"] = np.array(lrs, dtype=np.float32)
    tensors["total_norm"] = np.array(norms, dtype=np.float32)
    tensors["c_skipped"] = np.array([1 if s in c_skipped else 0 for s in range(steps)], dtype=np.int64)
    state_steps = {k: int(opt.state[p]["step"]) for k, p in params.items()}
    folder = FIXTURES / "training-adamw"
    save_tensors(folder / "expected.safetensors", tensors,
                 provenance(SCRIPT, versions, seed=SEED + 1, lr=lr, weight_decay=wd, betas="0.9,0.999", eps=1e-8,
                            max_norm=max_norm, warmup=warmup, steps=steps, accumulation=accumulation,
                            weight_decay_b=0.0, **{f"check.adamw_steps_{k}": v for k, v in state_steps.items()}))
    write_checksums(folder)
    print(f"wrote {folder}: lrs {lrs}, norms {[round(n, 4) for n in norms]}, steps {state_steps}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--allow-version-mismatch", action="store_true")
    args = ap.parse_args()
    versions = check_versions(args.allow_version_mismatch, ("torch", "transformers", "safetensors", "numpy"))
    encoder_fixture(versions)
    adamw_fixture(versions)


if __name__ == "__main__":
    main()
