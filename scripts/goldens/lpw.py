#!/usr/bin/env python3
"""Reference tensors for diffusers' community "long prompt weighting" SDXL pipeline
(examples/community/lpw_stable_diffusion_xl.py of diffusers v0.30.3) on the tiny fixtures.

  . /work/pydeps/env.sh && python3 scripts/goldens/lpw.py [--fixtures tiny-sdxl,tiny-koala] [--out test/fixtures/lpw-goldens]

Writes, per fixture, into OUT/<fixture>/:
  fp32/text_<i>.safetensors, fp16/text_<i>.safetensors  get_weighted_text_embeddings_sdxl(pipe, prompt, neg_prompt)
  pipeline_<i>.safetensors                              SDXLLongPromptWeightingPipeline.__call__ (fp32 weights)
  cases.json                                            prompts, token ids, weights, chunk counts, parameters, versions
See scripts/goldens/README.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402

G = C.G

LONG_PROMPT = (
    "a highly detailed photograph of a small grey koala sleeping in the fork of a tall eucalyptus tree, soft golden morning light, "
    "gentle mist drifting between the branches, (green leaves:0.8), rough bark with deep grooves, a clear blue sky far behind the canopy, "
    "warm colors, shallow depth of field, sharp focus on the fur and the round ears, a second koala climbing on a lower branch, "
    "small birds resting on the thin twigs, dew drops on the leaves, (distant hills:0.8) covered with a dense forest, a calm river winding through the valley, "
    "wildflowers in yellow and purple along the river bank, "
    "a narrow dirt road leading toward the mountains, long shadows across the fields, (soft clouds:0.8) moving slowly over the peaks, "
    "natural lighting, fine textures, professional nature photography, award winning composition, calm and peaceful mood, early spring"
)
LONG_NEGATIVE = (
    "low quality, worst quality, blurry, out of focus, jpeg artifacts, noise, grain, overexposed, underexposed, washed out colors, "
    "bad anatomy, extra limbs, missing limbs, deformed hands, extra fingers, fused fingers, bad proportions, ugly face, cropped frame, "
    "watermark, signature, text, logo, frame, border, duplicate animals, mutated body, disfigured, poorly drawn fur, cartoon, sketch, painting, "
    "flat lighting, harsh shadows, motion blur, chromatic aberration"
)
TEXT_CASES = [
    ("a (koala:1.3) in a [background] tree", "blurry"),
    ("((masterpiece)), a koala, \\(not weighted\\) text", ""),
    (LONG_PROMPT, "low quality"),
    ("a koala", LONG_NEGATIVE),
    ("(a red car:1.5) on [[a street]] at night", "(worst quality:1.4), lowres"),
]
PIPELINE_CASES = [0, 2]  # indices into TEXT_CASES
STEPS, GUIDANCE, SEED = 4, 5.0, 1234
EMBED_NAMES = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")


def load_lpw():
    spec = importlib.util.spec_from_file_location("lpw_stable_diffusion_xl", str(C.LPW_FILE))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["lpw_stable_diffusion_xl"] = mod
    spec.loader.exec_module(mod)
    return mod


def load_pipe(lpw, fixture: Path, variant: str | None):
    return C.load_pipe(lpw.SDXLLongPromptWeightingPipeline, fixture, variant)


class record_ids:
    """Records the input_ids each text encoder is called with (the chunks lpw builds)."""

    def __init__(self, pipe):
        self.pipe, self.ids = pipe, {"text_encoder": [], "text_encoder_2": []}

    def __enter__(self):
        for name in self.ids:
            te = getattr(self.pipe, name)
            orig = te.forward

            def fwd(input_ids=None, *a, _orig=orig, _name=name, **k):
                self.ids[_name].append(input_ids.detach().clone())
                return _orig(input_ids, *a, **k)

            te.forward = fwd
        return self

    def __exit__(self, *exc):
        for name in self.ids:
            del getattr(self.pipe, name).forward  # back to the class method
        return False


def token_info(lpw, pipe, prompt: str, negative: str) -> dict:
    """What lpw's helpers produce for the case (recomputed with the module's own functions)."""
    eos = pipe.tokenizer.eos_token_id
    p1, pw1 = lpw.get_prompts_tokens_with_weights(pipe.tokenizer, prompt)
    n1, nw1 = lpw.get_prompts_tokens_with_weights(pipe.tokenizer, negative)
    p2, _ = lpw.get_prompts_tokens_with_weights(pipe.tokenizer_2, prompt)
    n2, _ = lpw.get_prompts_tokens_with_weights(pipe.tokenizer_2, negative)
    L = max(len(p1), len(n1))
    pp1, ppw1 = p1 + [eos] * (L - len(p1)), pw1 + [1.0] * (L - len(p1))
    nn1, nnw1 = n1 + [eos] * (L - len(n1)), nw1 + [1.0] * (L - len(n1))
    _, pw_groups = lpw.group_tokens_and_weights(pp1.copy(), ppw1.copy())
    _, nw_groups = lpw.group_tokens_and_weights(nn1.copy(), nnw1.copy())
    return {
        "parsed_prompt": lpw.parse_prompt_attention(prompt),
        "parsed_negative": lpw.parse_prompt_attention(negative),
        "tokenizer_ids": p1, "tokenizer_weights": pw1,
        "tokenizer_negative_ids": n1, "tokenizer_negative_weights": nw1,
        "tokenizer_2_ids": p2, "tokenizer_2_negative_ids": n2,
        "weight_groups": pw_groups, "negative_weight_groups": nw_groups,
        "weight_groups_as_applied_fp16": [[float(w) for w in torch.tensor(g, dtype=torch.float16).float()] for g in pw_groups],
        "negative_weight_groups_as_applied_fp16": [[float(w) for w in torch.tensor(g, dtype=torch.float16).float()] for g in nw_groups],
    }


@G.retry_nonfinite
@torch.no_grad()
def weighted_embeds(lpw, pipe, prompt, negative):
    with record_ids(pipe) as rec:
        out = lpw.get_weighted_text_embeddings_sdxl(pipe, prompt=prompt, neg_prompt=negative)
    return {k: v.clone() for k, v in zip(EMBED_NAMES, out)}, rec.ids


@G.retry_nonfinite
@torch.no_grad()
def run_lpw_pipeline(pipe, prompt, negative, latents, hw):
    rec: dict = {}
    unet_fwd = pipe.unet.forward

    def unet_spy(*a, **k):
        if "time_ids" not in rec:
            rec["time_ids"] = k["added_cond_kwargs"]["time_ids"].clone()
            rec["text_embeds"] = k["added_cond_kwargs"]["text_embeds"].clone()
            rec["encoder_hidden_states"] = k["encoder_hidden_states"].clone()
        return unet_fwd(*a, **k)

    def cb(p, i, t, kw):
        rec["latents_final"] = kw["latents"].clone()
        rec.setdefault("t", []).append(float(t))
        return kw

    pipe.unet.forward = unet_spy
    try:
        out = pipe(prompt=prompt, negative_prompt=negative, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                   height=hw[0], width=hw[1], latents=latents.clone(), output_type="np",
                   callback_on_step_end=cb, callback_on_step_end_tensor_inputs=["latents"])
    finally:
        del pipe.unet.forward
    image = torch.from_numpy(np.asarray(out.images, dtype=np.float32))
    ehs, te = rec["encoder_hidden_states"], rec["text_embeds"]
    tensors = {
        "latents_init": latents, "latents_final": rec["latents_final"], "image": image,
        "negative_prompt_embeds": ehs[:1], "prompt_embeds": ehs[1:],
        "negative_pooled_prompt_embeds": te[:1], "pooled_prompt_embeds": te[1:],
        "add_time_ids": rec["time_ids"][:1],
    }
    return tensors, rec["t"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", default="tiny-sdxl,tiny-koala")
    ap.add_argument("--out", default=str(C.REPO / "test/fixtures/lpw-goldens"))
    a = ap.parse_args()
    C.setup(threads=1)
    lpw = load_lpw()
    for fname in a.fixtures.split(","):
        fixture = C.FIXTURES[fname]
        out_dir = Path(a.out) / fname
        hw = C.PIPELINE_HW[fname]
        cases: dict = {
            "fixture": C.rel(fixture), "lpw_file": "diffusers v0.30.3 examples/community/lpw_stable_diffusion_xl.py",
            "versions": C.versions(), "text": [], "pipeline": [],
        }
        for wname, variant in (("fp32", None), ("fp16", "fp16")):
            G.log(f"{fname} {wname}: loading")
            pipe = load_pipe(lpw, fixture, variant)
            for i, (prompt, negative) in enumerate(TEXT_CASES):
                emb, ids = weighted_embeds(lpw, pipe, prompt, negative)
                path = out_dir / wname / f"text_{i}.safetensors"
                G.save_tensors(path, emb)
                n_chunks = len(ids["text_encoder"]) // 2
                if wname == "fp32":
                    info = token_info(lpw, pipe, prompt, negative)
                    chunks1 = [x[0].tolist() for x in ids["text_encoder"]]
                    chunks2 = [x[0].tolist() for x in ids["text_encoder_2"]]
                    cases["text"].append({
                        "index": i, "prompt": prompt, "negative": negative, "chunks": n_chunks,
                        "files": {w: f"{w}/text_{i}.safetensors" for w in ("fp32", "fp16")},
                        "shapes": {k: list(v.shape) for k, v in emb.items()},
                        # the exact input_ids lpw passed to each text encoder, in call order:
                        # prompt chunk 0, negative chunk 0, prompt chunk 1, negative chunk 1, ...
                        "prompt_chunks_tokenizer": chunks1[0::2], "negative_chunks_tokenizer": chunks1[1::2],
                        "prompt_chunks_tokenizer_2": chunks2[0::2], "negative_chunks_tokenizer_2": chunks2[1::2],
                        **info,
                    })
                else:
                    assert n_chunks == cases["text"][i]["chunks"]
                G.log(f"{fname} {wname} text_{i}: chunks {n_chunks}, prompt_embeds {list(emb['prompt_embeds'].shape)}")
            if wname == "fp32":
                for j, ti in enumerate(PIPELINE_CASES):
                    prompt, negative = TEXT_CASES[ti]
                    g = torch.Generator().manual_seed(SEED + j)
                    latents = torch.randn((1, pipe.unet.config.in_channels, hw[0] // 8, hw[1] // 8), generator=g)
                    tensors, ts = run_lpw_pipeline(pipe, prompt, negative, latents, hw)
                    # the pipeline's embeddings must be what get_weighted_text_embeddings_sdxl returns
                    emb, _ = weighted_embeds(lpw, pipe, prompt, negative)
                    for k in EMBED_NAMES:
                        assert torch.equal(emb[k], tensors[k]), k
                    G.save_tensors(out_dir / f"pipeline_{j}.safetensors", tensors)
                    sched = pipe.scheduler
                    cases["pipeline"].append({
                        "index": j, "file": f"pipeline_{j}.safetensors", "text_case": ti, "prompt": prompt, "negative": negative,
                        "steps": STEPS, "guidance_scale": GUIDANCE, "height": hw[0], "width": hw[1],
                        "latents_init": f"torch.randn((1, 4, {hw[0] // 8}, {hw[1] // 8}), generator=torch.Generator().manual_seed({SEED + j}))",
                        "scheduler": type(sched).__name__,
                        "scheduler_config": {k: v for k, v in dict(sched.config).items() if not k.startswith("_")},
                        "timesteps": ts, "sigmas": [float(s) for s in sched.sigmas], "init_noise_sigma": float(sched.init_noise_sigma),
                        "add_time_ids": tensors["add_time_ids"].tolist(),
                        "shapes": {k: list(v.shape) for k, v in tensors.items()},
                        "max_abs_latents_final": G.max_abs(tensors["latents_final"]),
                    })
                    G.log(f"{fname} pipeline_{j}: latents_final max {G.max_abs(tensors['latents_final']):.3f}")
            del pipe
        cases["nonfinite_retries"] = list(G.NONFINITE_RETRIES)
        C.write_json(out_dir / "cases.json", cases)


if __name__ == "__main__":
    main()
