#!/usr/bin/env python3
"""Generates the adapter parity fixtures under Tests/Fixtures/adapters/ (formats and cases: docs/fixtures.md).

    /work/venv/bin/python scripts/parity/make_adapter_fixtures.py

Base model: Tests/Fixtures/tiny-bert (run make_encoder_fixtures.py --only tiny first), loaded as the flex-head
`BertAdapterModel` of adapters 1.3.0 with eager attention, fp32, eval mode (case roberta_seq_bn: tiny-roberta,
`RobertaAdapterModel`). Adapters, fusion layers and heads
are created by the library, their weights are then redrawn from seeded generators (the library's
near-identity / N(0, 0.02) inits would make every case look like the base model), and they are saved with
the library's own `save_adapter` / `save_adapter_fusion` / `save_head`. The padded batch is the one in
tiny-bert/expected.safetensors (tiny-roberta/... for RoBERTa; batch 3, seq 12).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    FIXTURES,
    check_versions,
    max_abs_diff,
    provenance,
    save_tensors,
    set_deterministic,
    to_numpy,
    write_checksums,
)

SCRIPT = "scripts/parity/make_adapter_fixtures.py"
SEED = 20211107
BASES = {"bert": FIXTURES / "tiny-bert", "roberta": FIXTURES / "tiny-roberta"}
_base_kind = "bert"  # which tiny model the cases below build on; switched by use_base()


@contextlib.contextmanager
def use_base(kind: str):
    global _base_kind
    previous, _base_kind = _base_kind, kind
    try:
        yield
    finally:
        _base_kind = previous
OUT = FIXTURES / "adapters"
NUM_LABELS = 3
CASES = ("seq_bn", "double_seq_bn", "roberta_seq_bn", "parallel", "parallel_double_seq_bn", "stack", "fusion", "training", "fusion_training",
         "bn_variants", "compositions", "heads", "trajectory", "parallel_training")


def out_dir(*parts: str) -> str:
    """Creates Tests/Fixtures/adapters/<parts> (the library's save_* only creates the last level)."""
    path = OUT.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def load_inputs():
    from safetensors.torch import load_file

    e = load_file(str(BASES[_base_kind] / "expected.safetensors"))
    return e["input_ids"], e["attention_mask"], e["token_type_ids"], e["last_hidden_state"]


def new_model():
    """A fresh flex-head model (BertAdapterModel / RobertaAdapterModel) on the current tiny model; checks that
    the base weights loaded (the encoder output equals the tiny-bert / tiny-roberta fixture)."""
    from adapters import BertAdapterModel, RobertaAdapterModel

    cls = BertAdapterModel if _base_kind == "bert" else RobertaAdapterModel
    model = cls.from_pretrained(BASES[_base_kind], attn_implementation="eager").eval()
    assert model.config._attn_implementation == "eager"
    # Saved configs record this as "model_name"; keep it free of machine-specific absolute paths.
    model.config.name_or_path = BASES[_base_kind].name
    ids, mask, types, expected = load_inputs()
    with torch.no_grad():
        h = model.base_model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    assert max_abs_diff(h, expected) == 0.0, f"{cls.__name__} does not reproduce {BASES[_base_kind].name}"
    return model


@torch.no_grad()
def redraw(model: torch.nn.Module, contains: str, seed: int, qk_gain: float = 1.0) -> list[str]:
    """Redraws every parameter whose name contains `contains`, in sorted-name order:
    - Linear weights N(0, 1/fan_in) (adapter up-projections included, so adapters change the output by O(1));
    - biases N(0, 0.1^2);
    - fusion query/key weights N(0, qk_gain^2/fan_in) (fusion scores have no 1/sqrt(H) scaling);
    - fusion value weights I + N(0, 0.3^2/fan_in) (visibly different from the library's identity init).
    Returns the names redrawn."""
    gen = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    names = sorted(n for n in params if contains in n)
    assert names, f"no parameter contains {contains!r}"
    for name in names:
        p = params[name]
        if p.dim() == 2:
            w = torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1])
            if ".value." in name:
                w = torch.eye(p.shape[0]) + 0.3 * w
            elif ".query." in name or ".key." in name:
                w = qk_gain * w
            p.copy_(w)
        elif p.dim() == 1:
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        else:
            raise ValueError(f"unexpected parameter {name} {tuple(p.shape)}")
    return names


def run(model, setup, skip_layers=None, head=None, fusion_attentions=False):
    """Activates `setup` (with AdapterDrop `skip_layers`) and runs the padded batch.
    Returns (head output, last_hidden_state of the encoder under the same setup; [N*B, S, H] for Parallel)."""
    ids, mask, types, _ = load_inputs()
    model.set_active_adapters(setup, skip_layers=skip_layers)
    kwargs = {"head": head} if head else {}
    if fusion_attentions:
        kwargs["output_adapter_fusion_attentions"] = True
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, **kwargs)
        hidden = model.base_model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    return out, hidden


def base_tensors():
    ids, mask, types, _ = load_inputs()
    return {"input_ids": to_numpy(ids), "attention_mask": to_numpy(mask), "token_type_ids": to_numpy(types)}


def reload_logits(case: str, adapters: list[str], setup, skip_layers=None, head=None, fusion=None, head_dir=None):
    """Loads the saved files into a fresh model with the library's loaders (safetensors only) and runs `setup`.
    Returns the logits (a list of arrays for Parallel)."""
    model = new_model()
    for name in adapters:
        model.load_adapter(str(OUT / case / name), use_safetensors=True, with_head=head_dir is None)
    if fusion:
        model.load_adapter_fusion(str(OUT / case / fusion), use_safetensors=True)
    if head_dir:
        model.load_head(str(OUT / case / head_dir), use_safetensors=True)
    out, _ = run(model, setup, skip_layers=skip_layers, head=head)
    if hasattr(out, "logits") and not isinstance(out.logits, list) and not hasattr(out, "head_outputs"):
        return to_numpy(out.logits)
    return [to_numpy(o.logits) for o in out]


def finish_case(case: str, tensors: dict, checks: dict, versions: dict, extra: dict | None = None) -> None:
    meta = provenance(SCRIPT, versions, case=case, seed=SEED, attn_implementation="eager",
                      base_model=BASES[_base_kind].name,
                      **(extra or {}), **{f"check.{k}": f"{v:.3e}" for k, v in checks.items()})
    save_tensors(OUT / case / "expected.safetensors", tensors, meta)
    write_checksums(OUT / case)
    print(f"{case}: {checks}")


def single_adapter_case(case: str, name: str, config, seed: int, versions: dict) -> None:
    """One bottleneck adapter plus a 3-label classification head of the same name, with AdapterDrop variants."""
    set_deterministic(SEED)
    model = new_model()
    model.add_adapter(name, config=config)
    model.add_classification_head(name, num_labels=NUM_LABELS)  # Dropout, Linear(H,H), Tanh, Dropout, Linear
    redraw(model, f".adapters.{name}.", seed)
    redraw(model, f"heads.{name}.", seed + 1)
    model.save_adapter(out_dir(case, name), name, with_head=True, use_safetensors=True)

    tensors = base_tensors()
    checks = {}
    variants = {"": None, "skip_0.": [0], "skip_1.": [1], "skip_all.": [0, 1]}
    for prefix, skip in variants.items():
        out, hidden = run(model, name, skip_layers=skip)
        tensors[prefix + "logits"] = to_numpy(out.logits)
        tensors[prefix + "last_hidden_state"] = to_numpy(hidden)
    # The adapter must matter, and skipping every layer must give the base model (adapters doc 2.d).
    base, _ = run(model, None, head=name)
    checks["max_abs_diff_logits_adapter_vs_base"] = float(np.abs(tensors["logits"] - to_numpy(base.logits)).max())
    checks["max_abs_diff_skip_all_vs_base"] = float(np.abs(tensors["skip_all.logits"] - to_numpy(base.logits)).max())
    assert checks["max_abs_diff_logits_adapter_vs_base"] > 1e-2
    assert checks["max_abs_diff_skip_all_vs_base"] == 0.0
    tensors["base.logits"] = to_numpy(base.logits)
    reloaded = reload_logits(case, [name], name, skip_layers=[1])
    checks["reload_max_abs_diff_skip_1_logits"] = float(np.abs(reloaded - tensors["skip_1.logits"]).max())
    assert checks["reload_max_abs_diff_skip_1_logits"] == 0.0
    finish_case(case, tensors, checks, versions)


def parallel_case(case: str, config_class, seed: int, versions: dict) -> None:
    """Parallel(p1, p2): two adapters of `config_class` (rf 4 and 8), each with its own 3-label head."""
    from adapters.composition import Parallel

    set_deterministic(SEED)
    model = new_model()
    for i, (name, rf) in enumerate([("p1", 4), ("p2", 8)]):
        model.add_adapter(name, config=config_class(reduction_factor=rf))
        model.add_classification_head(name, num_labels=NUM_LABELS)
        redraw(model, f".adapters.{name}.", seed + 10 * i)
        redraw(model, f"heads.{name}.", seed + 1 + 10 * i)
        model.save_adapter(out_dir(case, name), name, with_head=True, use_safetensors=True)

    tensors = base_tensors()
    checks = {}
    for prefix, skip in {"": None, "skip_0.": [0]}.items():
        out, hidden = run(model, Parallel("p1", "p2"), skip_layers=skip)
        assert list(model.active_head) == ["p1", "p2"], model.active_head
        assert hidden.shape[0] == 6, hidden.shape
        for i, name in enumerate(["p1", "p2"]):
            tensors[f"{prefix}{name}.logits"] = to_numpy(out[i].logits)
            # Channel i of the replicated batch: rows [i*B, (i+1)*B) of the encoder output.
            tensors[f"{prefix}{name}.last_hidden_state"] = to_numpy(hidden[i * 3 : (i + 1) * 3])
            single, single_hidden = run(model, name, skip_layers=skip)
            checks[f"{prefix}max_abs_diff_{name}_logits_vs_single"] = float(
                np.abs(tensors[f"{prefix}{name}.logits"] - to_numpy(single.logits)).max())
            checks[f"{prefix}max_abs_diff_{name}_hidden_vs_single"] = max_abs_diff(
                hidden[i * 3 : (i + 1) * 3], single_hidden)
    reloaded = reload_logits(case, ["p1", "p2"], Parallel("p1", "p2"), skip_layers=[0])
    checks["reload_max_abs_diff_skip_0_logits"] = max(
        float(np.abs(reloaded[i] - tensors[f"skip_0.{n}.logits"]).max()) for i, n in enumerate(["p1", "p2"]))
    assert checks["reload_max_abs_diff_skip_0_logits"] == 0.0
    finish_case(case, tensors, checks, versions)


def stack_case(versions: dict) -> None:
    """Stack("s1", "s2"): two seq_bn adapters (rf 4 and 8); the head is named after the last one, "s2"."""
    from adapters import SeqBnConfig
    from adapters.composition import Stack

    case = "stack"
    set_deterministic(SEED)
    model = new_model()
    for i, (name, rf) in enumerate([("s1", 4), ("s2", 8)]):
        model.add_adapter(name, config=SeqBnConfig(reduction_factor=rf))
        redraw(model, f".adapters.{name}.", SEED + 500 + 10 * i)
    model.add_classification_head("s2", num_labels=NUM_LABELS)
    redraw(model, "heads.s2.", SEED + 520)
    model.save_adapter(out_dir(case, "s1"), "s1", with_head=False, use_safetensors=True)
    model.save_adapter(out_dir(case, "s2"), "s2", with_head=True, use_safetensors=True)

    tensors = base_tensors()
    checks = {}
    for prefix, skip in {"": None, "skip_0.": [0]}.items():
        out, hidden = run(model, Stack("s1", "s2"), skip_layers=skip)
        assert model.active_head == "s2", model.active_head
        tensors[prefix + "logits"] = to_numpy(out.logits)
        tensors[prefix + "last_hidden_state"] = to_numpy(hidden)
    only_s2, _ = run(model, "s2")
    checks["max_abs_diff_logits_stack_vs_s2_alone"] = float(np.abs(tensors["logits"] - to_numpy(only_s2.logits)).max())
    assert checks["max_abs_diff_logits_stack_vs_s2_alone"] > 1e-2
    reloaded = reload_logits(case, ["s1", "s2"], Stack("s1", "s2"), skip_layers=[0])
    checks["reload_max_abs_diff_skip_0_logits"] = float(np.abs(reloaded - tensors["skip_0.logits"]).max())
    assert checks["reload_max_abs_diff_skip_0_logits"] == 0.0
    finish_case(case, tensors, checks, versions)


def fusion_case(versions: dict) -> None:
    """Dynamic AdapterFusion over f1, f2 (seq_bn rf 4) and f3 (seq_bn rf 8), with a head named "fusion"."""
    from adapters import SeqBnConfig
    from adapters.composition import Fuse

    case = "fusion"
    set_deterministic(SEED)
    model = new_model()
    names = ["f1", "f2", "f3"]
    for i, (name, rf) in enumerate(zip(names, [4, 4, 8])):
        model.add_adapter(name, config=SeqBnConfig(reduction_factor=rf))
        redraw(model, f".adapters.{name}.", SEED + 400 + 10 * i)
    fusion_name = ",".join(names)
    model.add_adapter_fusion(Fuse(*names), "dynamic")
    model.add_classification_head("fusion", num_labels=NUM_LABELS)
    redraw(model, f"adapter_fusion_layer.{fusion_name}.", SEED + 450, qk_gain=0.5)
    redraw(model, "heads.fusion.", SEED + 451)
    for name in names:
        model.save_adapter(out_dir(case, name), name, with_head=False, use_safetensors=True)
    model.save_adapter_fusion(out_dir(case, "fusion"), fusion_name, use_safetensors=True)
    model.save_head(out_dir(case, "head"), "fusion", use_safetensors=True)

    tensors = base_tensors()
    checks = {}
    for prefix, skip in {"": None, "skip_0.": [0]}.items():
        out, hidden = run(model, Fuse(*names), skip_layers=skip, head="fusion", fusion_attentions=True)
        tensors[prefix + "logits"] = to_numpy(out.logits)
        tensors[prefix + "last_hidden_state"] = to_numpy(hidden)
        att = out.adapter_fusion_attentions[fusion_name]
        for layer in range(2):
            if layer in att:
                tensors[f"{prefix}fusion_attentions.layer{layer}"] = np.asarray(att[layer]["output_adapter"])
        if prefix == "":
            a = np.stack([np.asarray(att[layer]["output_adapter"]) for layer in range(2)])
            checks["fusion_attention_max"] = float(a.max())
            checks["fusion_attention_min"] = float(a.min())
    # Pruned fusion (adapters doc 2.b): the trained fusion layer "f1,f2,f3" over children f1 and f2 only.
    out, hidden = run(model, Fuse("f1", "f2", name=fusion_name), head="fusion", fusion_attentions=True)
    tensors["pruned_f1_f2.logits"] = to_numpy(out.logits)
    tensors["pruned_f1_f2.last_hidden_state"] = to_numpy(hidden)
    for layer in range(2):
        tensors[f"pruned_f1_f2.fusion_attentions.layer{layer}"] = np.asarray(
            out.adapter_fusion_attentions[fusion_name][layer]["output_adapter"])
    base, _ = run(model, None, head="fusion")
    checks["max_abs_diff_logits_fusion_vs_base"] = float(np.abs(tensors["logits"] - to_numpy(base.logits)).max())
    assert checks["max_abs_diff_logits_fusion_vs_base"] > 1e-2
    reloaded = reload_logits(case, names, Fuse(*names), skip_layers=[0], head="fusion", fusion="fusion",
                             head_dir="head")
    checks["reload_max_abs_diff_skip_0_logits"] = float(np.abs(reloaded - tensors["skip_0.logits"]).max())
    assert checks["reload_max_abs_diff_skip_0_logits"] == 0.0
    finish_case(case, tensors, checks, versions, {"fusion_name": fusion_name})


TRAIN_SCHEDULE = [None, [0], [0, 1], [1], None, [0]]  # skip_layers per optimizer step
TRAIN_LABELS = [0, 2, 1]
TRAIN_ADAMW = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)


def training_case(versions: dict) -> None:
    """Adapter training with AdapterDrop: seq_bn adapter "t" (rf 4) + head "t", `train_adapter("t")` (base
    frozen), dropout off (eval mode), mean cross-entropy on the padded batch with labels TRAIN_LABELS, plain
    torch AdamW (TRAIN_ADAMW, constant lr, no clipping), one optimizer step per entry of TRAIN_SCHEDULE with
    that entry as skip_layers. Gradients are zeroed with set_to_none=True (what HF Trainer does)."""
    from adapters import SeqBnConfig

    case = "training"
    set_deterministic(SEED)
    model = new_model()
    model.add_adapter("t", config=SeqBnConfig(reduction_factor=4))
    model.add_classification_head("t", num_labels=NUM_LABELS)
    redraw(model, ".adapters.t.", SEED + 600)
    redraw(model, "heads.t.", SEED + 601)
    model.save_adapter(out_dir(case, "t"), "t", with_head=True, use_safetensors=True)  # the initial weights

    model.train_adapter("t")  # freezes everything but adapter t and head t; switches to train mode
    model.eval()  # no dropout: the fixture must not depend on torch's RNG
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    names = sorted(params)
    assert all(".adapters.t." in n or n.startswith("heads.t.") for n in names), names
    opt = torch.optim.AdamW([params[n] for n in names], **TRAIN_ADAMW)
    ids, mask, types, _ = load_inputs()
    labels = torch.tensor(TRAIN_LABELS)

    tensors = base_tensors()
    tensors["labels"] = np.array(TRAIN_LABELS, dtype=np.int64)
    tensors["schedule_skip_mask"] = np.array([[int(s is not None and l in s) for l in range(2)]
                                              for s in TRAIN_SCHEDULE], dtype=np.int64)
    losses = []
    for step, skip in enumerate(TRAIN_SCHEDULE):
        model.set_active_adapters("t", skip_layers=skip)
        opt.zero_grad(set_to_none=True)
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
        out.loss.backward()
        if step in (0, 1):
            tensors[f"step{step}.logits"] = to_numpy(out.logits)
            for n in names:
                if params[n].grad is not None:  # None: the layer was skipped (no grad, AdamW leaves it alone)
                    tensors[f"step{step}.grad.{n}"] = to_numpy(params[n].grad)
        opt.step()
        losses.append(float(out.loss.detach()))
    tensors["losses"] = np.array(losses, dtype=np.float32)
    for n in names:
        tensors[f"final.{n}"] = to_numpy(params[n])
    checks = {"loss_first": losses[0], "loss_last": losses[-1]}
    # torch AdamW keeps a step count per parameter and skips parameters whose grad is None, so adapter weights
    # of a dropped layer get neither the update nor the weight decay, and their bias correction lags.
    steps = {n: int(opt.state[params[n]]["step"]) for n in names}
    checks["adamw_steps_layer0"] = steps["bert.encoder.layer.0.output.adapters.t.adapter_up.weight"]
    checks["adamw_steps_layer1"] = steps["bert.encoder.layer.1.output.adapters.t.adapter_up.weight"]
    checks["adamw_steps_head"] = steps["heads.t.4.weight"]
    assert (checks["adamw_steps_layer0"], checks["adamw_steps_layer1"], checks["adamw_steps_head"]) == (3, 4, 6)
    assert losses[-1] < losses[0]
    assert "step1.grad.bert.encoder.layer.0.output.adapters.t.adapter_up.weight" not in tensors
    extra = {"schedule": str(TRAIN_SCHEDULE), "adamw": str(TRAIN_ADAMW), "labels": str(TRAIN_LABELS),
             "loss": "mean cross-entropy (head built-in)"}
    finish_case(case, tensors, checks, versions, extra)


def fusion_training_case(versions: dict) -> None:
    """Gradients of AdapterFusion training: f1 (seq_bn rf 4), f2 (seq_bn rf 8), dynamic fusion "f1,f2", head
    "fusion". `train_adapter_fusion(Fuse("f1","f2"))` freezes the base model and the adapters; the fusion layers
    and the head train. Dropout off (eval mode). Mean cross-entropy with TRAIN_LABELS. Gradients of the task
    loss alone, without and with skip_layers=[0], plus the value of the fusion regularisation loss
    0.01 * sum_layers ||I - W_v||_F^2 (adapters-reference.md 2.b), whose gradient is -0.02 (I - W_v)."""
    from adapters import SeqBnConfig
    from adapters.composition import Fuse

    case = "fusion_training"
    set_deterministic(SEED)
    model = new_model()
    for i, (name, rf) in enumerate([("f1", 4), ("f2", 8)]):
        model.add_adapter(name, config=SeqBnConfig(reduction_factor=rf))
        redraw(model, f".adapters.{name}.", SEED + 700 + 10 * i)
    model.add_adapter_fusion(Fuse("f1", "f2"), "dynamic")
    model.add_classification_head("fusion", num_labels=NUM_LABELS)
    redraw(model, "adapter_fusion_layer.f1,f2.", SEED + 750, qk_gain=0.5)
    redraw(model, "heads.fusion.", SEED + 751)
    for name in ("f1", "f2"):
        model.save_adapter(out_dir(case, name), name, with_head=False, use_safetensors=True)
    model.save_adapter_fusion(out_dir(case, "fusion"), "f1,f2", use_safetensors=True)
    model.save_head(out_dir(case, "head"), "fusion", use_safetensors=True)

    model.train_adapter_fusion(Fuse("f1", "f2"))
    model.eval()  # no dropout (fusion score dropout and hidden dropout would need torch's RNG)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    names = sorted(params)
    assert all("adapter_fusion_layer.f1,f2." in n or n.startswith("heads.fusion.") for n in names), names
    ids, mask, types, _ = load_inputs()
    labels = torch.tensor(TRAIN_LABELS)
    tensors = base_tensors()
    tensors["labels"] = np.array(TRAIN_LABELS, dtype=np.int64)
    checks = {}
    for prefix, skip in {"": None, "skip_0.": [0]}.items():
        model.set_active_adapters(Fuse("f1", "f2"), skip_layers=skip)
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels, head="fusion")
        out.loss.backward()
        tensors[prefix + "loss"] = np.array([float(out.loss.detach())], dtype=np.float32)
        tensors[prefix + "logits"] = to_numpy(out.logits)
        for n in names:
            if params[n].grad is not None:
                tensors[f"{prefix}grad.{n}"] = to_numpy(params[n].grad)
    with torch.no_grad():
        reg = model.get_fusion_regularization_loss()
    tensors["reg_loss"] = np.array([float(reg)], dtype=np.float32)
    checks["loss"] = float(tensors["loss"][0])
    checks["reg_loss"] = float(reg)
    assert "skip_0.grad.bert.encoder.layer.0.output.adapter_fusion_layer.f1,f2.value.weight" not in tensors
    finish_case(case, tensors, checks, versions, {"labels": str(TRAIN_LABELS)})


def bn_variants_case(versions: dict) -> None:
    """One adapter per BnConfig variant, each with a 3-label head of the same name, run alone; plus a legacy
    file (no "version", gelu -> gelu_new rename, no "bert." prefix, v1 collection name) re-read by the library."""
    import json

    from adapters import BnConfig, DoubleSeqBnConfig, ParBnConfig, SeqBnConfig
    from safetensors.torch import load_file, save_file

    case = "bn_variants"
    variants = {
        "par": ParBnConfig(reduction_factor=4),
        "scaled_par": ParBnConfig(reduction_factor=4, scaling="learned", non_linearity="leakyrelu"),
        "channel": SeqBnConfig(reduction_factor=4, scaling="channel", non_linearity="gelu"),
        "lns": BnConfig(mh_adapter=True, output_adapter=True, reduction_factor={"0": 4, "default": 8},
                        non_linearity="gelu_new", original_ln_before=True, residual_before_ln=False,
                        ln_before=True, ln_after=True, use_gating=True),
        "post_add": SeqBnConfig(reduction_factor=4, residual_before_ln="post_add", adapter_residual_before_ln=True,
                                ln_after=True, non_linearity="tanh"),
        "leave0": SeqBnConfig(reduction_factor=4, leave_out=[0], non_linearity="sigmoid"),
        "no_ln_after": DoubleSeqBnConfig(reduction_factor=8, original_ln_after=False, scaling=0.5),
        "legacy": SeqBnConfig(reduction_factor=4, non_linearity="gelu_new"),
    }
    set_deterministic(SEED)
    model = new_model()
    for i, (name, config) in enumerate(variants.items()):
        model.add_adapter(name, config=config)
        model.add_classification_head(name, num_labels=NUM_LABELS)
        redraw(model, f".adapters.{name}.", SEED + 900 + 10 * i)
        redraw(model, f"heads.{name}.", SEED + 901 + 10 * i)
        if name == "lns":
            # adapters 1.3.0 cannot save ln_before adapters as safetensors (the LayerNorm is registered twice,
            # shared memory): save the pickle and convert it with our script, as users have to.
            model.save_adapter(out_dir(case, name), name, with_head=True, use_safetensors=False)
            subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "convert_bin_to_safetensors.py"),
                            str(OUT / case / name)], check=True)
        else:
            model.save_adapter(out_dir(case, name), name, with_head=True, use_safetensors=True)
    # The legacy file: config without "version" and with "gelu" (which then means gelu_new), keys without the
    # model prefix and with the adapter-transformers v1 collection name.
    legacy_dir = OUT / case / "legacy"
    cfg = json.loads((legacy_dir / "adapter_config.json").read_text())
    del cfg["version"]
    cfg["config"]["non_linearity"] = "gelu"
    cfg["model_class"] = "BertModelWithHeads"
    (legacy_dir / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    weights = load_file(str(legacy_dir / "adapter.safetensors"))
    weights = {k.removeprefix("bert.").replace(".adapters.", ".layer_text_task_adapters."): v for k, v in weights.items()}
    save_file(weights, str(legacy_dir / "adapter.safetensors"), metadata={"format": "pt"})

    tensors = base_tensors()
    checks = {}
    for name in variants:
        out, hidden = run(model, name)
        tensors[f"{name}.logits"] = to_numpy(out.logits)
        tensors[f"{name}.last_hidden_state"] = to_numpy(hidden)
        base, _ = run(model, None, head=name)
        checks[f"max_abs_diff_{name}_vs_base"] = float(np.abs(tensors[f"{name}.logits"] - to_numpy(base.logits)).max())
        assert checks[f"max_abs_diff_{name}_vs_base"] > 1e-3, name
    for name in variants:
        reloaded = reload_logits(case, [name], name)
        checks[f"reload_{name}"] = float(np.abs(reloaded - tensors[f"{name}.logits"]).max())
        assert checks[f"reload_{name}"] == 0.0, (name, checks[f"reload_{name}"])
    finish_case(case, tensors, checks, versions)


def compositions_case(versions: dict) -> None:
    """BatchSplit, Average, Stack(Fuse(..), c) with a non-default fusion config, a "static" fusion, and Parallel(Stack(..), c)."""
    from adapters import AdapterFusionConfig, SeqBnConfig
    from adapters.composition import Average, BatchSplit, Fuse, Parallel, Stack

    case = "compositions"
    set_deterministic(SEED)
    model = new_model()
    for i, (name, rf) in enumerate([("c1", 4), ("c2", 8), ("c3", 4)]):
        model.add_adapter(name, config=SeqBnConfig(reduction_factor=rf))
        model.add_classification_head(name, num_labels=NUM_LABELS)
        redraw(model, f".adapters.{name}.", SEED + 1000 + 10 * i)
        redraw(model, f"heads.{name}.", SEED + 1001 + 10 * i)
    fusion_config = AdapterFusionConfig(key=True, query=True, value=True, query_before_ln=True, regularization=False,
                                        residual_before=True, temperature=False, value_before_softmax=False,
                                        value_initialized=False, dropout_prob=None)
    model.add_adapter_fusion(Fuse("c1", "c2"), fusion_config)
    redraw(model, "adapter_fusion_layer.c1,c2.", SEED + 1050, qk_gain=0.5)
    # The "static" preset (value=False: no value matrix) over c2,c3.
    model.add_adapter_fusion(Fuse("c2", "c3"), "static")
    redraw(model, "adapter_fusion_layer.c2,c3.", SEED + 1060, qk_gain=0.5)
    for name in ("c1", "c2", "c3"):
        model.save_adapter(out_dir(case, name), name, with_head=True, use_safetensors=True)
    model.save_adapter_fusion(out_dir(case, "fusion"), "c1,c2", use_safetensors=True)
    model.save_adapter_fusion(out_dir(case, "fusion_static"), "c2,c3", use_safetensors=True)

    tensors = base_tensors()
    checks = {}
    # Average first: set_active_adapters(Average(..)) does not replace a BatchSplit active head, and
    # forward_head prefers a BatchSplit active head over head=... (a stale-state quirk of 1.3.0).
    out, hidden = run(model, Average("c1", "c2", weights=[0.3, 0.9]), head="c2")
    tensors["average.logits"] = to_numpy(out.logits)
    tensors["average.last_hidden_state"] = to_numpy(hidden)
    out, hidden = run(model, BatchSplit("c1", "c2", batch_sizes=[1, 2]))
    tensors["batch_split.c1.logits"] = to_numpy(out[0].logits)
    tensors["batch_split.c2.logits"] = to_numpy(out[1].logits)
    tensors["batch_split.last_hidden_state"] = to_numpy(hidden)
    for prefix, skip in {"": None, "skip_0.": [0]}.items():
        out, hidden = run(model, Stack(Fuse("c1", "c2"), "c3"), skip_layers=skip, head="c3")
        tensors[f"{prefix}stack_fuse.logits"] = to_numpy(out.logits)
        tensors[f"{prefix}stack_fuse.last_hidden_state"] = to_numpy(hidden)
    out, hidden = run(model, Fuse("c2", "c3"), head="c3")
    tensors["static_fuse.logits"] = to_numpy(out.logits)
    tensors["static_fuse.last_hidden_state"] = to_numpy(hidden)
    out, hidden = run(model, Parallel(Stack("c1", "c3"), "c2"))
    assert list(model.active_head) == ["c3", "c2"], model.active_head
    assert hidden.shape[0] == 6
    tensors["parallel_stack.c3.logits"] = to_numpy(out[0].logits)
    tensors["parallel_stack.c2.logits"] = to_numpy(out[1].logits)
    tensors["parallel_stack.last_hidden_state"] = to_numpy(hidden)
    finish_case(case, tensors, checks, versions)


def heads_case(versions: dict) -> None:
    """Tagging, multi-label and regression (pooler, 3 layers, gelu) heads over one seq_bn adapter."""
    from adapters import SeqBnConfig

    case = "heads"
    set_deterministic(SEED)
    model = new_model()
    model.add_adapter("h", config=SeqBnConfig(reduction_factor=4))
    redraw(model, ".adapters.h.", SEED + 1100)
    model.add_tagging_head("tag", num_labels=5, layers=2, activation_function="relu")
    model.add_classification_head("ml", num_labels=4, layers=1, multilabel=True)
    model.add_classification_head("reg", num_labels=1, layers=3, activation_function="gelu", use_pooler=True)
    for i, name in enumerate(["tag", "ml", "reg"]):
        redraw(model, f"heads.{name}.", SEED + 1110 + i)
        model.save_head(out_dir(case, name), name, use_safetensors=True)
    model.save_adapter(out_dir(case, "h"), "h", with_head=False, use_safetensors=True)
    tensors = base_tensors()
    for name in ["tag", "ml", "reg"]:
        out, hidden = run(model, "h", head=name)
        tensors[f"{name}.logits"] = to_numpy(out.logits)
    tensors["last_hidden_state"] = to_numpy(hidden)
    finish_case(case, tensors, {}, versions)


TRAJ_STEPS, TRAJ_WARMUP, TRAJ_MAX_NORM = 10, 3, 1.0
TRAJ_ADAMW = dict(lr=2e-2, betas=(0.9, 0.999), eps=1e-8)
TRAJ_WEIGHT_DECAY = 0.01


def trajectory_case(versions: dict) -> None:
    """10-step AdamW loss trajectories with linear warm-up and gradient clipping, the way adapters 1.3.0's
    `AdapterTrainer` (HF Trainer 4.57) steps, dropout off (eval mode), on the padded batch with TRAIN_LABELS:
    - "seq_bn": `train_adapter("s")` (seq_bn rf 4) + head "s";
    - "double_seq_bn": `train_adapter("d")` (double_seq_bn rf 4) + head "d";
    - "fusion": `train_adapter_fusion(Fuse("f1","f2"))` (seq_bn rf 4 / rf 8 frozen, dynamic fusion) + head "fusion".
    Per step: loss.backward(); clip_grad_norm_(max_norm=TRAJ_MAX_NORM); AdamW.step() (weight decay
    TRAJ_WEIGHT_DECAY except on biases and LayerNorm weights, HF's parameter groups); linear warm-up schedule
    step; zero_grad(set_to_none=True); then, for the fusion only, `AdapterTrainerCallback.on_step_end`:
    get_fusion_regularization_loss().backward() -- so the regulariser's gradient (at the updated weights)
    joins the NEXT step's gradients before clipping, and is not part of the recorded loss.
    Records {setup}.losses (task loss before each step), {setup}.lr, {setup}.grad_norm (before clipping),
    {setup}.step0.grad.<param> (the first batch's gradient of every trainable tensor, before clipping) and the
    final parameters."""
    from adapters import DoubleSeqBnConfig, SeqBnConfig
    from adapters.composition import Fuse
    from transformers import get_linear_schedule_with_warmup

    case = "trajectory"
    ids, mask, types, _ = load_inputs()
    labels = torch.tensor(TRAIN_LABELS)
    tensors = base_tensors()
    tensors["labels"] = np.array(TRAIN_LABELS, dtype=np.int64)
    checks = {}
    for setup in ("seq_bn", "double_seq_bn", "fusion"):
        set_deterministic(SEED)
        model = new_model()
        if setup == "fusion":
            for i, (name, rf) in enumerate([("f1", 4), ("f2", 8)]):
                model.add_adapter(name, config=SeqBnConfig(reduction_factor=rf))
                redraw(model, f".adapters.{name}.", SEED + 1200 + 10 * i)
            model.add_adapter_fusion(Fuse("f1", "f2"), "dynamic")
            model.add_classification_head("fusion", num_labels=NUM_LABELS)
            redraw(model, "adapter_fusion_layer.f1,f2.", SEED + 1250, qk_gain=0.5)
            redraw(model, "heads.fusion.", SEED + 1251)
            for name in ("f1", "f2"):
                model.save_adapter(out_dir(case, name), name, with_head=False, use_safetensors=True)
            model.save_adapter_fusion(out_dir(case, "fusion"), "f1,f2", use_safetensors=True)
            model.save_head(out_dir(case, "fusion_head"), "fusion", use_safetensors=True)
            model.train_adapter_fusion(Fuse("f1", "f2"))
            model.set_active_adapters(Fuse("f1", "f2"))
            head = "fusion"
        else:
            name = "s" if setup == "seq_bn" else "d"
            config = SeqBnConfig(reduction_factor=4) if setup == "seq_bn" else DoubleSeqBnConfig(reduction_factor=4)
            model.add_adapter(name, config=config)
            model.add_classification_head(name, num_labels=NUM_LABELS)
            redraw(model, f".adapters.{name}.", SEED + 1300 + (0 if name == "s" else 20))
            redraw(model, f"heads.{name}.", SEED + 1301 + (0 if name == "s" else 20))
            model.save_adapter(out_dir(case, name), name, with_head=True, use_safetensors=True)
            model.train_adapter(name)
            model.set_active_adapters(name)
            head = name
        model.eval()  # no dropout: the fixture must not depend on torch's RNG
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        names = sorted(params)
        no_decay = [n for n in names if n.endswith(".bias") or "LayerNorm" in n]
        opt = torch.optim.AdamW([{"params": [params[n] for n in names if n not in no_decay], "weight_decay": TRAJ_WEIGHT_DECAY},
                                 {"params": [params[n] for n in no_decay], "weight_decay": 0.0}], **TRAJ_ADAMW)
        sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=TRAJ_WARMUP, num_training_steps=TRAJ_STEPS)
        losses, lrs, norms = [], [], []
        for step in range(TRAJ_STEPS):
            out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels, head=head)
            out.loss.backward()
            if step == 0:  # one batch's gradients of every trainable tensor (before clipping)
                for n in names:
                    tensors[f"{setup}.step0.grad.{n}"] = to_numpy(params[n].grad).copy()
            norms.append(float(torch.nn.utils.clip_grad_norm_([params[n] for n in names if params[n].grad is not None],
                                                              TRAJ_MAX_NORM)))
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            model.zero_grad(set_to_none=True)
            if setup == "fusion":
                reg = model.base_model.get_fusion_regularization_loss()
                reg.backward()
            losses.append(float(out.loss.detach()))
        tensors[f"{setup}.losses"] = np.array(losses, dtype=np.float32)
        tensors[f"{setup}.lr"] = np.array(lrs, dtype=np.float32)
        tensors[f"{setup}.grad_norm"] = np.array(norms, dtype=np.float32)
        for n in names:
            tensors[f"{setup}.final.{n}"] = to_numpy(params[n]).copy()
        clipped = sum(1 for x in norms if x > TRAJ_MAX_NORM)
        checks[f"{setup}_loss_first"] = losses[0]
        checks[f"{setup}_loss_last"] = losses[-1]
        checks[f"{setup}_clipped_steps"] = clipped
        assert 0 < clipped < TRAJ_STEPS, (setup, norms)  # the run must exercise clipping and not-clipping
        assert losses[-1] < losses[0], (setup, losses)
    extra = {"steps": str(TRAJ_STEPS), "warmup": str(TRAJ_WARMUP), "max_norm": str(TRAJ_MAX_NORM),
             "adamw": str(TRAJ_ADAMW), "weight_decay": str(TRAJ_WEIGHT_DECAY), "labels": str(TRAIN_LABELS),
             "loss": "mean cross-entropy (head built-in)",
             "fusion_regularization": "AdapterTrainerCallback.on_step_end: backward after the step (lagged one step)"}
    finish_case(case, tensors, checks, versions, extra)


def parallel_training_case(versions: dict) -> None:
    """Parallel training of two adapters at once: p1 (seq_bn rf 4) and p2 (seq_bn rf 8), each with its own 3-label
    head, `train_adapter(Parallel("p1", "p2"))` (base frozen), dropout off (eval mode). The batch is replicated at
    the first layer with a Parallel adapter; the loss is the sum of both heads' mean cross-entropies (each head
    gets TRAIN_LABELS for its copy of the batch; `MultiHeadOutput.loss`). Records that loss, each head's logits
    and the gradients of every trainable tensor, without and with skip_layers=[0] (replication at layer 1)."""
    from adapters import SeqBnConfig
    from adapters.composition import Parallel

    case = "parallel_training"
    set_deterministic(SEED)
    model = new_model()
    for i, (name, rf) in enumerate([("p1", 4), ("p2", 8)]):
        model.add_adapter(name, config=SeqBnConfig(reduction_factor=rf))
        model.add_classification_head(name, num_labels=NUM_LABELS)
        redraw(model, f".adapters.{name}.", SEED + 1400 + 10 * i)
        redraw(model, f"heads.{name}.", SEED + 1401 + 10 * i)
        model.save_adapter(out_dir(case, name), name, with_head=True, use_safetensors=True)
    model.train_adapter(Parallel("p1", "p2"))
    model.eval()
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    names = sorted(params)
    assert all(".adapters.p" in n or n.startswith("heads.p") for n in names), names
    ids, mask, types, _ = load_inputs()
    labels = torch.tensor(TRAIN_LABELS)
    tensors = base_tensors()
    tensors["labels"] = np.array(TRAIN_LABELS, dtype=np.int64)
    checks = {}
    for prefix, skip in {"": None, "skip_0.": [0]}.items():
        model.set_active_adapters(Parallel("p1", "p2"), skip_layers=skip)
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
        assert len(out.head_outputs) == 2
        out.loss.backward()
        tensors[prefix + "loss"] = np.array([float(out.loss.detach())], dtype=np.float32)
        for i, name in enumerate(["p1", "p2"]):
            tensors[f"{prefix}{name}.logits"] = to_numpy(out.head_outputs[i].logits).copy()
            tensors[f"{prefix}{name}.loss"] = np.array([float(out.head_outputs[i].loss.detach())], dtype=np.float32)
        for n in names:
            if params[n].grad is not None:
                tensors[f"{prefix}grad.{n}"] = to_numpy(params[n].grad).copy()
        checks[prefix + "loss"] = float(out.loss.detach())
    assert "skip_0.grad.bert.encoder.layer.0.output.adapters.p1.adapter_up.weight" not in tensors
    finish_case(case, tensors, checks, versions, {"labels": str(TRAIN_LABELS), "loss": "sum of the heads' mean cross-entropies"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--allow-version-mismatch", action="store_true")
    ap.add_argument("--only", nargs="*", help="regenerate only these cases (no wipe of the other folders)")
    args = ap.parse_args()
    versions = check_versions(args.allow_version_mismatch, ("torch", "transformers", "adapters", "safetensors"))
    from adapters import DoubleSeqBnConfig, SeqBnConfig

    extra = {"bn_variants": bn_variants_case, "compositions": compositions_case, "heads": heads_case,
             "trajectory": trajectory_case, "parallel_training": parallel_training_case}
    if args.only:
        for case in args.only:
            if (OUT / case).exists():
                shutil.rmtree(OUT / case)
            extra[case](versions)
            for path in (OUT / case).rglob("*"):
                path.chmod(0o755 if path.is_dir() else 0o644)
            write_checksums(OUT / case)
        return
    if OUT.exists():
        shutil.rmtree(OUT)
    single_adapter_case("seq_bn", "a", SeqBnConfig(reduction_factor=4), SEED + 100, versions)
    single_adapter_case("double_seq_bn", "b", DoubleSeqBnConfig(reduction_factor=4), SEED + 200, versions)
    with use_base("roberta"):
        single_adapter_case("roberta_seq_bn", "r", SeqBnConfig(reduction_factor=4), SEED + 800, versions)
    parallel_case("parallel", SeqBnConfig, SEED + 300, versions)
    parallel_case("parallel_double_seq_bn", DoubleSeqBnConfig, SEED + 350, versions)
    stack_case(versions)
    fusion_case(versions)
    training_case(versions)
    fusion_training_case(versions)
    for run_case in extra.values():
        run_case(versions)
    for path in OUT.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    for case in CASES:
        write_checksums(OUT / case)


if __name__ == "__main__":
    main()
