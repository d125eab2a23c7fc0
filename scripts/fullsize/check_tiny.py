#!/usr/bin/env python3
"""Validates the golden generator's code paths (scripts/fullsize/goldens.py: loading, tokenizers,
text encoders, U-Net, VAE decoder, pipeline) against the reference tensors that ship with a tiny
fixture (e.g. /work/shared/fixtures/tiny-koala/goldens): the same inputs must give the same outputs.

  python3 scripts/fullsize/check_tiny.py --model FIXTURE_DIR [--goldens FIXTURE_DIR/goldens] [--tol 1e-5]

Prints max|ours - theirs| per tensor (and, for single forwards, both sides' distance from the same
module run in float64) and exits 1 if any difference exceeds max(--tol, --rel-tol * max|theirs|).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import goldens as G  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--goldens", default=None)
    ap.add_argument("--tol", type=float, default=1e-5, help="absolute tolerance")
    ap.add_argument("--rel-tol", type=float, default=1e-5, help="tolerance relative to max|theirs| (for latents, whose magnitude reaches ~100)")
    ap.add_argument("--pipeline-tol", type=float, default=1e-4, help="absolute tolerance for pipeline outputs (25-step chains amplify fp32 rounding)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    G.ensure_malloc_perturb()
    torch.set_num_threads(a.threads)
    G.setup_hf()
    model = Path(a.model)
    gdir = Path(a.goldens) if a.goldens else model / "goldens"
    comps = G.Components(model, None, {})
    rows: list[tuple] = []

    def cmp(case: str, name: str, ours, theirs, f64=None, tol=None) -> None:
        ours = ours.detach().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours)
        assert ours.shape == theirs.shape, f"{case} {name}: shape {ours.shape} vs {theirs.shape}"
        assert np.isfinite(ours).all(), f"{case} {name}: non-finite values"
        e = (G.max_diff(ours, f64), G.max_diff(theirs, f64)) if f64 is not None else (None, None)
        rows.append((case, name, G.max_diff(ours, theirs), G.max_abs(theirs), *e, tol if tol is not None else a.tol))

    def f64(module, fn, *args):
        with G.in_float64(module):
            return fn(module, *[x.double() if x.is_floating_point() else x for x in args])

    # tokenizers: every prompt of tokens.json
    tok = json.loads((gdir / "tokens.json").read_text())
    n_bad = n = 0
    for c in tok["cases"]:
        for key, tname in (("tokenizer_input_ids", "tokenizer"), ("tokenizer_2_input_ids", "tokenizer_2")):
            ids = G.tokenize(comps[tname], [c["prompt"]])[0].tolist()
            n += 1
            if ids != c[key]:
                n_bad += 1
                print(f"token mismatch ({tname}): {c['prompt']!r}\n  ours   {ids}\n  theirs {c[key]}")
    print(f"tokenizers: {n - n_bad}/{n} id lists identical")

    # text encoders
    te = G.load_tensors(gdir / "text_encoders.safetensors")
    cases = sorted({k.split(".")[0] for k in te})
    for c in cases:
        if f"{c}.input_ids_1" not in te:
            continue
        i1, i2 = torch.from_numpy(te[f"{c}.input_ids_1"]).long(), torch.from_numpy(te[f"{c}.input_ids_2"]).long()
        r1 = G.run_text_encoder(comps["text_encoder"], i1)
        r2 = G.run_text_encoder(comps["text_encoder_2"], i2)
        d1 = f64(comps["text_encoder"], G.run_text_encoder, i1)
        d2 = f64(comps["text_encoder_2"], G.run_text_encoder, i2)
        for k in ("hidden_states_m2", "last_hidden_state"):
            cmp(c, f"te1_{k}", r1[k], te[f"{c}.te1_{k}"], d1[k])
            cmp(c, f"te2_{k}", r2[k], te[f"{c}.te2_{k}"], d2[k])
        cmp(c, "te2_text_embeds", r2["text_embeds"], te[f"{c}.te2_text_embeds"], d2["text_embeds"])

    # U-Net
    un = G.load_tensors(gdir / "unet.safetensors")
    for c in sorted({k.split(".")[0] for k in un}):
        inp = {k: torch.from_numpy(un[f"{c}.{k}"]) for k in ("sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids")}
        with G.in_float64(comps["unet"]):
            o64 = G.run_unet(comps["unet"], {k: v.double() for k, v in inp.items()})["out"]
        cmp(c, "unet out", G.run_unet(comps["unet"], inp)["out"], un[f"{c}.out"], o64)

    # VAE decoder
    va = G.load_tensors(gdir / "vae.safetensors")
    for c in sorted({k.split(".")[0] for k in va}):
        x = torch.from_numpy(va[f"{c}.latents_scaled"])
        cmp(c, "vae image", G.run_vae_decoder(comps["vae"], x)["image"], va[f"{c}.image"], f64(comps["vae"], G.run_vae_decoder, x)["image"])

    # pipeline runs, replayed from their stored latents (ancestral: the same generator seed)
    from diffusers import EulerAncestralDiscreteScheduler, EulerDiscreteScheduler

    pipe = comps.pipeline()
    cfg = dict(pipe.scheduler.config)
    gcases = json.loads((gdir / "cases.json").read_text())
    for p in gcases["pipeline"]:
        kind = p["scheduler"]
        if kind == "euler":
            pipe.scheduler = EulerDiscreteScheduler.from_config(cfg)
        elif kind == "euler_trailing":
            pipe.scheduler = EulerDiscreteScheduler.from_config(cfg, timestep_spacing="trailing")
        elif kind == "euler_ancestral":
            pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(cfg)
        else:
            print(f"skipping pipeline {p['name']} (scheduler {kind})")
            continue
        ref = G.load_tensors(gdir / p["file"])
        kw = {}

        @G.retry_nonfinite
        @torch.no_grad()
        def replay(p, ref):
            rec = {}
            if "generator_seed" in p:
                kw["generator"] = torch.Generator().manual_seed(p["generator_seed"])

            def cb(_p, i, t, k):
                if i == 0:
                    rec["prompt_embeds"] = k["prompt_embeds"].clone()
                rec["latents"] = k["latents"].clone()
                return k

            out = pipe(prompt=p["prompt"], negative_prompt=p["negative_prompt"], guidance_scale=p["guidance_scale"],
                       num_inference_steps=p["num_inference_steps"], height=p["height_arg"], width=p["width_arg"],
                       latents=torch.from_numpy(ref["latents_init"]), output_type="np", callback_on_step_end=cb,
                       callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"], **kw)
            rec["image"] = torch.from_numpy(np.asarray(out.images, dtype=np.float32))
            return rec

        rec = replay(p, ref)
        cmp(p["name"], "prompt_embeds", rec["prompt_embeds"], ref["prompt_embeds"])
        cmp(p["name"], "latents_final", rec["latents"], ref["latents_final"], tol=a.pipeline_tol)
        cmp(p["name"], "image", rec["image"], ref["image"], tol=a.pipeline_tol)

    worst, fails = 0.0, 0
    fmt = lambda v: f"{v:10.3g}" if v is not None else f"{'-':>10s}"  # noqa: E731
    print(f"{'case':52s} {'tensor':22s} {'ours-ref':>10s} {'max|ref|':>10s} {'ours-f64':>10s} {'ref-f64':>10s}")
    for case, name, d, m, e_ours, e_ref, tol in rows:
        bad = d > max(tol, a.rel_tol * m)
        fails += bad
        print(f"{case:52s} {name:22s} {d:10.3g} {m:10.4g} {fmt(e_ours)} {fmt(e_ref)}{'  <-- FAIL' if bad else ''}")
        worst = max(worst, d)
    if G.NONFINITE_RETRIES:
        print(f"recomputed after a non-finite result (torch 1.13 small-baddbmm NaN, see goldens.retry_nonfinite): {G.NONFINITE_RETRIES}")
    ok = fails == 0 and n_bad == 0
    print(f"{len(rows)} tensors compared, worst max|ours-ref| {worst:.3g}; over max({a.tol:g} ({a.pipeline_tol:g} for pipeline outputs), {a.rel_tol:g}*max|ref|): {fails}; "
          f"token mismatches {n_bad} -> {'OK' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
