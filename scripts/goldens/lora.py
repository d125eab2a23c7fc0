#!/usr/bin/env python3
"""Seeded random LoRA files for the tiny fixtures and the reference outputs of diffusers v0.30.3
(+ peft) loading, fusing and running them.

  . /work/pydeps/env.sh && python3 scripts/goldens/lora.py [--fixtures tiny-sdxl,tiny-koala] [--out test/fixtures/lora-goldens]

Writes, per fixture, into OUT/<fixture>/:
  loras/peft.safetensors        diffusers/PEFT layout (unet.* / text_encoder.* / text_encoder_2.*, lora_A/lora_B, no alpha)
  loras/kohya.safetensors       kohya layout, diffusers module names, per-module .alpha, one LoCon conv (resnet conv1)
  loras/kohya.fp16.safetensors  the same values rounded to fp16 (F16)
  loras/kohya-sgm.safetensors   kohya layout, original SDXL (SGM) U-Net names (input_blocks / middle_block / output_blocks)
  loras/unmatched.safetensors   kohya file with keys naming modules the fixture does not have (must be refused)
  loras/sd15.safetensors        SD1.5-style kohya file (lora_te_, 768-dim context) (must be refused)
  lora_<case>.safetensors       fused.<component>.<param> for every changed parameter + a 4-step pipeline run
  cases.json                    files, scales, matched module counts, diffusers warnings, alpha checks, versions
See scripts/goldens/README.md.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import re
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402

G = C.G

RANK = 4
STD = 0.2  # down ~ N(0, STD^2), up ~ N(0, STD^2)
STEPS, GUIDANCE, SEED = 4, 5.0, 4321
PROMPT, NEGATIVE = "a koala in a tree", "blurry"
COMPONENTS = ("unet", "text_encoder", "text_encoder_2")
KOHYA_TE = {"text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"}
ATTN_RE = re.compile(r"^(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.attentions\.\d+\.transformer_blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0)$")
# kohya alphas: 2.0 (factor 0.5) everywhere except these (U-Net only: diffusers 0.30.3 builds a wrong
# alpha_pattern for text-encoder modules when a text encoder's alphas differ, so those stay uniform)
KOHYA_ALPHA_DEFAULT = 2.0
KOHYA_ALPHA_SPECIAL = {"proj_in": 8.0, "proj_out": 8.0, "conv1": 1.0}
SGM_ALPHA = 1.0  # factor 0.25

CASES = [
    # name, weights variant, [(lora file, adapter name, scale)]
    ("none", None, []),
    ("peft", None, [("peft.safetensors", "peft", 0.8)]),
    ("kohya", None, [("kohya.safetensors", "kohya", 1.0)]),
    ("kohya-sgm", None, [("kohya-sgm.safetensors", "sgm", 0.7)]),
    ("combo", None, [("peft.safetensors", "peft", 0.5), ("kohya.safetensors", "kohya", 1.2)]),
    ("none.fp16", "fp16", []),
    ("kohya.fp16", "fp16", [("kohya.fp16.safetensors", "kohya", 1.0)]),
]


# ---------------------------------------------------------------------------------------------
# safetensors writer with F16 support (same conventions as goldens.save_tensors: tensors sorted by
# name, contiguous data_offsets, header padded with spaces to a multiple of 8)


def save_st(path: Path, tensors: dict, metadata: dict | None = None) -> None:
    header: dict = {"__metadata__": {"format": "pt", **(metadata or {})}}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype == torch.float16:
            a, dt = t.numpy().astype("<f2"), "F16"
        else:
            a, dt = t.to(torch.float32).numpy().astype("<f4"), "F32"
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------------------------
# Module selection and LoRA generation


def modules_of(model) -> dict:
    return dict(model.named_modules())


def unet_targets(unet) -> dict:
    """{'attn': [...], 'extra': [...], 'conv': [...]} module names of the fixture's U-Net."""
    mods = modules_of(unet)
    attn = sorted(n for n in mods if ATTN_RE.match(n))
    first = sorted(n for n in mods if re.match(r"^(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.attentions\.\d+$", n))[0]
    extra = [f"{first}.proj_in", f"{first}.proj_out", f"{first}.transformer_blocks.0.ff.net.0.proj", f"{first}.transformer_blocks.0.ff.net.2"]
    for n in extra:
        assert n in mods, n
    return {"attn": attn, "extra": extra, "conv": ["down_blocks.0.resnets.0.conv1"], "first_attention": first}


def te_targets(te, mlp: bool = False) -> list[str]:
    n_layers = te.config.num_hidden_layers
    names = [f"text_model.encoder.layers.{i}.self_attn.{p}" for i in range(n_layers) for p in ("q_proj", "k_proj", "v_proj", "out_proj")]
    if mlp:
        names += ["text_model.encoder.layers.0.mlp.fc1", "text_model.encoder.layers.0.mlp.fc2"]
    return names


def lora_pair(module, g: torch.Generator, rank: int = RANK):
    """(down [r, in(, kh, kw)], up [out, r(, 1, 1)]) with N(0, STD^2) entries."""
    if isinstance(module, torch.nn.Conv2d):
        kh, kw = module.kernel_size
        down = torch.randn((rank, module.in_channels, kh, kw), generator=g) * STD
        up = torch.randn((module.out_channels, rank, 1, 1), generator=g) * STD
    else:
        down = torch.randn((rank, module.in_features), generator=g) * STD
        up = torch.randn((module.out_features, rank), generator=g) * STD
    return down, up


def kohya_unet_name(name: str) -> str:
    return "lora_unet_" + name.replace(".", "_")


def sgm_name(name: str, layers_per_block: int) -> str:
    """diffusers U-Net attention module name -> kohya name with SGM block names."""
    L1 = layers_per_block + 1
    m = re.match(r"^down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)$", name)
    if m:
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"lora_unet_input_blocks_{1 + i * L1 + j}_1_" + rest.replace(".", "_")
    m = re.match(r"^up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)$", name)
    if m:
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"lora_unet_output_blocks_{i * L1 + j}_1_" + rest.replace(".", "_")
    m = re.match(r"^mid_block\.attentions\.0\.(.*)$", name)
    if m:
        return "lora_unet_middle_block_1_" + m[1].replace(".", "_")
    raise ValueError(name)


def make_loras(fixture_name: str, pipe, out: Path) -> dict:
    """Writes the LoRA files; returns, per file, the modules with (component, module, down, up, alpha/rank factor)."""
    unet, tes = pipe.unet, {"text_encoder": pipe.text_encoder, "text_encoder_2": pipe.text_encoder_2}
    umods = modules_of(unet)
    tgt = unet_targets(unet)
    lpb = int(unet.config.layers_per_block)
    info: dict = {}
    seed_base = {"tiny-sdxl": 1000, "tiny-koala": 2000}[fixture_name]

    # a. PEFT layout
    g = torch.Generator().manual_seed(seed_base + 1)
    sd, entries = {}, []
    for n in tgt["attn"] + tgt["extra"]:
        down, up = lora_pair(umods[n], g)
        sd[f"unet.{n}.lora_A.weight"], sd[f"unet.{n}.lora_B.weight"] = down, up
        entries.append(("unet", n, down, up, 1.0))
    for comp, te in tes.items():
        tm = modules_of(te)
        for n in te_targets(te):
            down, up = lora_pair(tm[n], g)
            sd[f"{comp}.{n}.lora_A.weight"], sd[f"{comp}.{n}.lora_B.weight"] = down, up
            entries.append((comp, n, down, up, 1.0))
    save_st(out / "peft.safetensors", sd)
    info["peft.safetensors"] = entries

    # b. kohya layout, diffusers names (+ fp16 copy)
    g = torch.Generator().manual_seed(seed_base + 2)
    sd, entries = {}, []
    # size-conscious selection: every transformer block's attn2.to_k/to_v (cheap, [C, context]); the full
    # attn1/attn2 and proj_in/proj_out of each block's attentions.0 (its transformer_blocks.0); one LoCon conv
    kohya_attn = [n for n in tgt["attn"] if ".attentions.0.transformer_blocks.0." in n or n.endswith(("attn2.to_k", "attn2.to_v"))]
    firsts = sorted({n.split(".transformer_blocks.")[0] for n in tgt["attn"] if ".attentions.0." in n})
    unet_names = kohya_attn + [f"{a}.{p}" for a in firsts for p in ("proj_in", "proj_out")] + tgt["conv"]
    for n in unet_names:
        down, up = lora_pair(umods[n], g)
        alpha = KOHYA_ALPHA_SPECIAL.get(n.split(".")[-1], KOHYA_ALPHA_DEFAULT)
        k = kohya_unet_name(n)
        sd[f"{k}.lora_down.weight"], sd[f"{k}.lora_up.weight"], sd[f"{k}.alpha"] = down, up, torch.tensor(alpha)
        entries.append(("unet", n, down, up, alpha / RANK))
    for comp, te in tes.items():
        tm = modules_of(te)
        for n in te_targets(te, mlp=True):
            down, up = lora_pair(tm[n], g)
            k = KOHYA_TE[comp] + n.replace(".", "_")
            sd[f"{k}.lora_down.weight"], sd[f"{k}.lora_up.weight"], sd[f"{k}.alpha"] = down, up, torch.tensor(KOHYA_ALPHA_DEFAULT)
            entries.append((comp, n, down, up, KOHYA_ALPHA_DEFAULT / RANK))
    save_st(out / "kohya.safetensors", sd)
    info["kohya.safetensors"] = entries
    sd16 = {k: v.to(torch.float16) for k, v in sd.items()}
    save_st(out / "kohya.fp16.safetensors", sd16)
    info["kohya.fp16.safetensors"] = [(c, n, d.half().float(), u.half().float(), f) for c, n, d, u, f in entries]

    # c. kohya layout, SGM U-Net names
    g = torch.Generator().manual_seed(seed_base + 3)
    sd, entries, sgm_map = {}, [], {}
    # every transformer block's attn2.to_k/to_v plus attn1.to_q of each attention's transformer_blocks.0
    sgm_attn = [n for n in tgt["attn"] if n.endswith(("attn2.to_k", "attn2.to_v")) or (".transformer_blocks.0." in n and n.endswith("attn1.to_q"))]
    for n in sgm_attn:
        down, up = lora_pair(umods[n], g)
        k = sgm_name(n, lpb)
        sgm_map[k] = n
        sd[f"{k}.lora_down.weight"], sd[f"{k}.lora_up.weight"], sd[f"{k}.alpha"] = down, up, torch.tensor(SGM_ALPHA)
        entries.append(("unet", n, down, up, SGM_ALPHA / RANK))
    for comp, te in tes.items():
        tm = modules_of(te)
        # all four projections: a kohya text-encoder part without out_proj makes diffusers 0.30.3's
        # convert_state_dict_to_diffusers fail ("Could not automatically infer state dict type")
        for n in te_targets(te):
            down, up = lora_pair(tm[n], g)
            k = KOHYA_TE[comp] + n.replace(".", "_")
            sd[f"{k}.lora_down.weight"], sd[f"{k}.lora_up.weight"], sd[f"{k}.alpha"] = down, up, torch.tensor(SGM_ALPHA)
            entries.append((comp, n, down, up, SGM_ALPHA / RANK))
    save_st(out / "kohya-sgm.safetensors", sd)
    info["kohya-sgm.safetensors"] = entries
    info["_sgm_map"] = sgm_map

    # d. unmatched: a few valid kohya keys plus keys naming modules the fixture lacks
    g = torch.Generator().manual_seed(seed_base + 4)
    sd = {}
    first_q = next(n for n in tgt["attn"] if n.endswith("attn1.to_q"))
    valid = [first_q, first_q[: -len("to_q")] + "to_v"]
    for n in valid:
        down, up = lora_pair(umods[n], g)
        k = kohya_unet_name(n)
        sd[f"{k}.lora_down.weight"], sd[f"{k}.lora_up.weight"], sd[f"{k}.alpha"] = down, up, torch.tensor(2.0)
    c = int(umods[first_q].in_features)
    n_layers_te1 = tes["text_encoder"].config.num_hidden_layers
    h1 = tes["text_encoder"].config.hidden_size
    # text encoder: all four projections (see kohya-sgm) of layer 0 (exists) and of a layer that does not
    for p in ("q_proj", "k_proj", "v_proj", "out_proj"):
        k = f"lora_te1_text_model_encoder_layers_0_self_attn_{p}"
        sd[f"{k}.lora_down.weight"] = torch.randn((RANK, h1), generator=g) * STD
        sd[f"{k}.lora_up.weight"] = torch.randn((h1, RANK), generator=g) * STD
        sd[f"{k}.alpha"] = torch.tensor(2.0)
        valid.append(f"te1:text_model.encoder.layers.0.self_attn.{p}")
    unmatched = {
        "lora_unet_down_blocks_5_attentions_0_transformer_blocks_0_attn1_to_q": (c, c),
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_9_attn2_to_k": (c, c),
        **{f"lora_te1_text_model_encoder_layers_{n_layers_te1 + 5}_self_attn_{p}": (h1, h1) for p in ("q_proj", "k_proj", "v_proj", "out_proj")},
    }
    for k, (i, o) in unmatched.items():
        sd[f"{k}.lora_down.weight"] = torch.randn((RANK, i), generator=g) * STD
        sd[f"{k}.lora_up.weight"] = torch.randn((o, RANK), generator=g) * STD
        sd[f"{k}.alpha"] = torch.tensor(2.0)
    save_st(out / "unmatched.safetensors", sd)
    info["_unmatched"] = {"matched_modules": [kohya_unet_name(n) if not n.startswith("te1:") else n for n in valid], "unmatched_modules": list(unmatched)}

    # e. SD1.5-style file (768-dim text encoder / cross-attention context, 320-channel first block), F16 as
    # most published SD1.5 LoRAs
    g = torch.Generator().manual_seed(seed_base + 5)
    sd = {}
    sd15 = {
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj": (768, 768),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q": (320, 320),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (768, 320),
    }
    for k, (i, o) in sd15.items():
        sd[f"{k}.lora_down.weight"] = torch.randn((RANK, i), generator=g) * STD
        sd[f"{k}.lora_up.weight"] = torch.randn((o, RANK), generator=g) * STD
        sd[f"{k}.alpha"] = torch.tensor(float(RANK))
    save_st(out / "sd15.safetensors", {k: v.half() for k, v in sd.items()})
    info["_sd15"] = {"modules": list(sd15)}
    return info


# ---------------------------------------------------------------------------------------------
# diffusers side


class capture_warnings:
    """Collects WARNING+ records of the diffusers / transformers / peft loggers and warnings.warn()."""

    def __init__(self):
        self.buf = io.StringIO()
        self.handler = logging.StreamHandler(self.buf)
        self.handler.setLevel(logging.WARNING)
        self.loggers = [logging.getLogger(n) for n in ("diffusers", "transformers", "peft")]

    def __enter__(self):
        for lg in self.loggers:
            lg.addHandler(self.handler)
        self.cw = warnings.catch_warnings(record=True)
        self.records = self.cw.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        for lg in self.loggers:
            lg.removeHandler(self.handler)
        self.cw.__exit__(*exc)
        return False

    def messages(self) -> list[str]:
        out = [line for line in self.buf.getvalue().splitlines() if line.strip()]
        out += [f"{w.category.__name__}: {w.message}" for w in self.records]
        return out


def load_pipe(fixture: Path, variant: str | None):
    from diffusers import StableDiffusionXLPipeline

    return C.load_pipe(StableDiffusionXLPipeline, fixture, variant)


def plain_state(model) -> dict:
    """state_dict with peft's wrappers removed: base_layer params under the original names, LoRA params dropped."""
    out = {}
    for k, v in model.state_dict().items():
        if ".lora_" in k or "lora_magnitude" in k:
            continue
        out[k.replace(".base_layer.", ".")] = v.detach().clone()
    return out


def matched_modules(model, adapter: str) -> list[str]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return sorted(n for n, m in model.named_modules() if isinstance(m, BaseTunerLayer) and adapter in getattr(m, "lora_A", {}))


@G.retry_nonfinite
@torch.no_grad()
def run_pipeline(pipe, latents: torch.Tensor, hw) -> dict:
    rec: dict = {}

    def cb(p, i, t, kw):
        rec["latents_final"] = kw["latents"].clone()
        if i == 0:
            rec["add_time_ids"] = kw["add_time_ids"].clone()
        return kw

    out = pipe(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
               height=hw[0], width=hw[1], latents=latents.clone(), output_type="np",
               callback_on_step_end=cb, callback_on_step_end_tensor_inputs=["latents", "add_time_ids"])
    pe, npe, ppe, nppe = pipe.encode_prompt(PROMPT, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt=NEGATIVE)
    return {
        "latents_init": latents, "latents_final": rec["latents_final"],
        "image": torch.from_numpy(np.asarray(out.images, dtype=np.float32)),
        "prompt_embeds": pe, "negative_prompt_embeds": npe, "pooled_prompt_embeds": ppe, "negative_pooled_prompt_embeds": nppe,
        "add_time_ids": rec["add_time_ids"][:1],
    }


def expected_delta(down: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    d, u = down.double(), up.double()
    if d.dim() == 4:  # conv: delta[o, i, kh, kw] = sum_r up[o, r] * down[r, i, kh, kw]
        return torch.einsum("or,rikl->oikl", u[:, :, 0, 0], d)
    return u @ d


def try_load(fixture: Path, lora: Path) -> dict:
    """Loads a file that is expected to be refused/partly unmatched; records what diffusers does."""
    pipe = load_pipe(fixture, None)
    res: dict = {}
    with capture_warnings() as cw:
        try:
            pipe.load_lora_weights(str(lora.parent), weight_name=lora.name, adapter_name="x")
            res["loaded"] = True
            res["matched_modules"] = {c: len(matched_modules(getattr(pipe, c), "x")) for c in COMPONENTS}
        except Exception as e:  # noqa: BLE001
            res["loaded"] = False
            # sets inside messages (peft's "Target modules {...}") are printed in hash order: sort them
            msg = re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m[1].split(", "))) + "}", str(e))
            res["error"] = f"{type(e).__name__}: {msg[:600]}"
    res["warnings"] = [m[:600] for m in cw.messages()]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", default="tiny-sdxl,tiny-koala")
    ap.add_argument("--out", default=str(C.REPO / "test/fixtures/lora-goldens"))
    a = ap.parse_args()
    C.setup(threads=1)
    for fname in a.fixtures.split(","):
        fixture = C.FIXTURES[fname]
        out_dir = Path(a.out) / fname
        lora_dir = out_dir / "loras"
        hw = C.PIPELINE_HW[fname]
        base_pipe = load_pipe(fixture, None)
        info = make_loras(fname, base_pipe, lora_dir)
        in_ch = base_pipe.unet.config.in_channels
        del base_pipe
        latents = torch.randn((1, in_ch, hw[0] // 8, hw[1] // 8), generator=torch.Generator().manual_seed(SEED))
        cases: dict = {
            "fixture": C.rel(fixture), "versions": C.versions(extra=("peft", "accelerate")),
            "lora": {"rank": RANK, "init": f"down, up ~ N(0, {STD}^2) from torch.Generator().manual_seed(...) in file order",
                     "kohya_alpha": {"default": KOHYA_ALPHA_DEFAULT, "by_module_suffix": KOHYA_ALPHA_SPECIAL}, "kohya_sgm_alpha": SGM_ALPHA},
            "pipeline": {"prompt": PROMPT, "negative_prompt": NEGATIVE, "steps": STEPS, "guidance_scale": GUIDANCE,
                         "height": hw[0], "width": hw[1], "scheduler": "EulerDiscreteScheduler (fixture scheduler config)",
                         "latents_init": f"torch.randn((1, {in_ch}, {hw[0] // 8}, {hw[1] // 8}), generator=torch.Generator().manual_seed({SEED}))"},
            "files": {
                "peft.safetensors": {"layout": "peft", "modules": len(info["peft.safetensors"])},
                "kohya.safetensors": {"layout": "kohya (diffusers names)", "modules": len(info["kohya.safetensors"])},
                "kohya.fp16.safetensors": {"layout": "kohya (diffusers names), F16", "modules": len(info["kohya.fp16.safetensors"])},
                "kohya-sgm.safetensors": {"layout": "kohya (SGM U-Net names)", "modules": len(info["kohya-sgm.safetensors"]),
                                          "sgm_to_diffusers": info["_sgm_map"]},
                "unmatched.safetensors": {"layout": "kohya (diffusers names)", **info["_unmatched"],
                                          "diffusers": try_load(fixture, lora_dir / "unmatched.safetensors")},
                "sd15.safetensors": {"layout": "kohya SD1.5 (lora_te_, 768-dim)", **info["_sd15"],
                                     "diffusers": try_load(fixture, lora_dir / "sd15.safetensors")},
            },
            "cases": [],
        }
        for cname, variant, loras in CASES:
            G.log(f"{fname} case {cname}")
            pipe = load_pipe(fixture, variant)
            base = {c: plain_state(getattr(pipe, c)) for c in COMPONENTS}
            with capture_warnings() as cw:
                for file, adapter, _ in loras:
                    pipe.load_lora_weights(str(lora_dir), weight_name=file, adapter_name=adapter)
                if len(loras) == 1:
                    pipe.fuse_lora(components=list(COMPONENTS), lora_scale=loras[0][2])
                elif len(loras) > 1:
                    pipe.set_adapters([x[1] for x in loras], adapter_weights=[x[2] for x in loras])
                    pipe.fuse_lora(components=list(COMPONENTS), lora_scale=1.0, adapter_names=[x[1] for x in loras])
            matched = {x[1]: {c: len(matched_modules(getattr(pipe, c), x[1])) for c in COMPONENTS} for x in loras}
            tensors: dict = {}
            changed: dict = {}
            for c in COMPONENTS:
                now = plain_state(getattr(pipe, c))
                assert set(now) == set(base[c]), c
                names = sorted(k for k in now if not torch.equal(now[k], base[c][k]))
                changed[c] = len(names)
                for k in names:
                    tensors[f"fused.{c}.{k}"] = now[k].float()
            # alpha/scale check: fused - base == sum over loras of scale * alpha/rank * up @ down
            exp: dict = {}
            for file, _, scale in loras:
                for comp, mod, down, up, factor in info[file]:
                    key = f"{comp}.{mod}.weight"
                    exp[key] = exp.get(key, 0) + scale * factor * expected_delta(down, up)
            max_err, max_rel, max_delta = 0.0, 0.0, 0.0
            for key, d in exp.items():
                comp, p = key.split(".", 1)
                got = tensors[f"fused.{key}"].double() - base[comp][p].double()
                max_err = max(max_err, float((got - d).abs().max()))
                max_rel = max(max_rel, float((got - d).abs().max() / d.abs().max()))
                max_delta = max(max_delta, float(d.abs().max()))
            assert set(exp) == {k[len("fused."):] for k in tensors}, "changed params != LoRA target params"
            res = run_pipeline(pipe, latents, hw)
            tensors.update(res)
            fn = f"lora_{cname}.safetensors"
            G.save_tensors(out_dir / fn, tensors)
            entry = {
                "case": cname, "file": fn, "weights": variant or "fp32",
                "loras": [{"file": f"loras/{f}", "adapter_name": n, "scale": s} for f, n, s in loras],
                "how": ("pipe.load_lora_weights(loras_dir, weight_name=file, adapter_name=...) for each; " + (
                    f"pipe.fuse_lora(components={list(COMPONENTS)}, lora_scale=scale)" if len(loras) == 1 else
                    "pipe.set_adapters(names, adapter_weights=scales); pipe.fuse_lora(components=..., lora_scale=1.0, adapter_names=names)")) if loras else "no LoRA",
                "matched_modules": matched, "changed_params": changed,
                "diffusers_warnings": [m[:600] for m in cw.messages()],
                "alpha_check": {"formula": "fused - base == sum scale * (alpha / rank) * up @ down (float64 expectation)",
                                "max_abs_err": max_err, "max_rel_err": max_rel, "max_abs_delta": max_delta} if loras else None,
                "shapes": {k: list(v.shape) for k, v in res.items()},
                "fused_tensors": len(tensors) - len(res),
            }
            cases["cases"].append(entry)
            G.log(f"  matched {matched} changed {changed} alpha err {max_err:.2e} (delta max {max_delta:.3f}) warnings {len(entry['diffusers_warnings'])}")
            del pipe
        # how far each LoRA run is from the baseline of its weights
        ref = {"fp32": G.load_tensors(out_dir / "lora_none.safetensors"), "fp16": G.load_tensors(out_dir / "lora_none.fp16.safetensors")}
        for e in cases["cases"]:
            cur = G.load_tensors(out_dir / e["file"])
            r = ref[e["weights"]]
            e["max_abs_diff_vs_baseline"] = {k: G.max_diff(cur[k], r[k]) for k in ("prompt_embeds", "pooled_prompt_embeds", "latents_final", "image")}
        cases["nonfinite_retries"] = list(G.NONFINITE_RETRIES)
        C.write_json(out_dir / "cases.json", cases)


if __name__ == "__main__":
    main()
