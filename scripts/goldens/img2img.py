#!/usr/bin/env python3
"""Reference tensors for SDXL image-to-image, inpainting (4- and 9-channel U-Nets), the AutoencoderKL
encoder and a tiny random TAESD (AutoencoderTiny), computed with diffusers v0.30.3 on the tiny fixtures.

  . /work/pydeps/env.sh && python3 scripts/goldens/img2img.py [--fixtures tiny-sdxl,tiny-koala] [--out test/fixtures/img2img-goldens]

Writes
  OUT/<fixture>/input.png, mask.png, mask_small.png    synthetic inputs (uint8 RGB / L)
  OUT/<fixture>/input_<W>x<H>.png                       the same picture at the second VAE-encoder size
  OUT/<fixture>/vae_encoder[.fp16].safetensors          AutoencoderKL.encode at the pipeline size (fp32 / fp16 weight files)
  OUT/<fixture>/vae_encoder_<W>x<H>.safetensors         the same at a second size (fp32 weights)
  OUT/<fixture>/img2img.safetensors, img2img_s1...      StableDiffusionXLImg2ImgPipeline (strength 0.6 / 1.0)
  OUT/<fixture>/inpaint.safetensors, inpaint_s1...      StableDiffusionXLInpaintPipeline, 4-channel U-Net
  OUT/tiny-sdxl/inpaint9.safetensors, inpaint9_s06...   StableDiffusionXLInpaintPipeline, 9-channel U-Net
  OUT/<fixture>/cases.json                              parameters, timesteps, sigmas, checks, versions
  OUT/tiny-sdxl-inpaint-unet/                           seeded random 9-channel UNet2DConditionModel (tiny-sdxl config)
  OUT/taesd.safetensors, OUT/taesd.json                 tiny AutoencoderTiny decode / encode / pipeline postprocess
  test/fixtures/tiny-taesd/                             the seeded random AutoencoderTiny (config + fp32 + fp16 weights)
See scripts/goldens/README.md ("img2img.py").
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402

G = C.G

PROMPT, NEGATIVE = "a koala in a tree", "blurry"
GUIDANCE = 5.0
SEED = 777  # noise generator of pipeline case j: torch.Generator().manual_seed(SEED + j)
UNET9_SEED, TAESD_SEED, TAESD_LATENT_SEED = 9009, 4242, 4343
EMBED_NAMES = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
TAESD_DIR = C.REPO / "test/fixtures/tiny-taesd"
TAESD_CONFIG = dict(
    in_channels=3, out_channels=3, encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
    act_fn="relu", upsample_fn="nearest", latent_channels=4, upsampling_scaling_factor=2,
    num_encoder_blocks=(1, 3, 3, 3), num_decoder_blocks=(3, 3, 3, 1), latent_magnitude=3, latent_shift=0.5,
    force_upcast=False, scaling_factor=1.0, shift_factor=0.0,
)
# pipeline cases: (name, kind, strength, num_inference_steps)
PIPE_CASES = [
    ("img2img", "img2img", 0.6, 5),
    ("img2img_s1", "img2img", 1.0, 4),
    ("inpaint", "inpaint", 0.6, 5),
    ("inpaint_s1", "inpaint", 1.0, 4),
    ("inpaint9", "inpaint9", 1.0, 4),
    ("inpaint9_s06", "inpaint9", 0.6, 5),
]


# ---------------------------------------------------------------------------------------------
# Synthetic inputs (integer arithmetic only, so they are identical everywhere)


def make_image(h: int, w: int) -> np.ndarray:
    """uint8 [h, w, 3]: smooth gradients + a disc, a rectangle and a triangle (coordinates relative to h, w)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    r = 16 + (200 * x) // max(w - 1, 1)
    g = 24 + (180 * y) // max(h - 1, 1)
    b = 40 + (150 * (x + y)) // max(w + h - 2, 1)
    img = np.stack([r, g, b], -1)
    cy, cx, rad = (3 * h) // 8, (2 * w) // 3, min(h, w) // 5
    img[(y - cy) ** 2 + (x - cx) ** 2 <= rad * rad] = (230, 200, 40)            # yellow disc
    img[(y >= (5 * h) // 8) & (y < (7 * h) // 8) & (x >= w // 8) & (x < (3 * w) // 8)] = (30, 60, 170)  # blue rectangle
    ty0, tx0 = h // 8, w // 8                                                   # red triangle (lower-left half of a square)
    side = min(h, w) // 3
    img[(y >= ty0) & (x >= tx0) & (y - ty0 < side) & (x - tx0 <= y - ty0)] = (200, 30, 30)
    return img.clip(0, 255).astype(np.uint8)


def mask_rect(h: int, w: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the white (repaint) rectangle; deliberately NOT aligned to the 8-pixel latent grid."""
    return (h * 5) // 16 + 1, (h * 13) // 16 - 3, (w * 5) // 16 + 3, (w * 13) // 16 + 1


def make_mask(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = mask_rect(h, w)
    m[y0:y1, x0:x1] = 255
    return m


def save_png(path: Path, arr: np.ndarray, mode: str):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr, mode)
    im.save(path, format="PNG", optimize=False, compress_level=9)
    return Image.open(path).convert(mode)  # what a reader of the file gets


# ---------------------------------------------------------------------------------------------
# Monkeypatches


@contextlib.contextmanager
def patched(module, replay_noise: torch.Tensor | None = None):
    """(a) module.retrieve_latents -> always sample_mode="argmax" (the DiagonalGaussian MEAN, no RNG);
    (b) module.randn_tensor -> records every tensor the pipeline draws (or returns `replay_noise`)."""
    rec: dict = {"noise": [], "retrieve_latents": []}
    orig_rl, orig_rt = module.retrieve_latents, module.randn_tensor

    def rl(encoder_output, generator=None, sample_mode="sample"):
        out = orig_rl(encoder_output, generator=generator, sample_mode="argmax")
        rec["retrieve_latents"].append(out.detach().clone())
        return out

    def rt(shape, generator=None, device=None, dtype=None, layout=None):
        if replay_noise is not None:
            out = replay_noise.to(dtype).clone()
        else:
            out = orig_rt(shape, generator=generator, device=device, dtype=dtype, layout=layout)
        rec["noise"].append(out.detach().clone())
        return out

    module.retrieve_latents, module.randn_tensor = rl, rt
    try:
        yield rec
    finally:
        module.retrieve_latents, module.randn_tensor = orig_rl, orig_rt


@contextlib.contextmanager
def spy_method(obj, name: str, store: list):
    """Records the return value of obj.<name>(...) (instance attribute override, removed afterwards)."""
    orig = getattr(obj, name)

    def f(*a, **k):
        out = orig(*a, **k)
        store.append(out)
        return out

    setattr(obj, name, f)
    try:
        yield store
    finally:
        delattr(obj, name)


@contextlib.contextmanager
def spy_unet(unet, rec: dict):
    orig = unet.forward

    def fwd(sample, timestep, *a, **k):
        if "unet_input" not in rec:
            rec["unet_input"] = sample.detach().clone()
            rec["time_ids"] = k["added_cond_kwargs"]["time_ids"].detach().clone()
            rec["text_embeds"] = k["added_cond_kwargs"]["text_embeds"].detach().clone()
            rec["encoder_hidden_states"] = k["encoder_hidden_states"].detach().clone()
        rec.setdefault("unet_timesteps", []).append(float(timestep))
        return orig(sample, timestep, *a, **k)

    unet.forward = fwd
    try:
        yield rec
    finally:
        del unet.forward


# ---------------------------------------------------------------------------------------------
# Models


def freeze(*models):
    for m in models:
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)


def load_base(fixture: Path, variant: str | None = None):
    from diffusers import StableDiffusionXLPipeline

    kw = {"torch_dtype": torch.float32, "add_watermarker": False}
    if variant:
        kw["variant"] = variant
    pipe = StableDiffusionXLPipeline.from_pretrained(str(fixture), **kw)
    freeze(pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2)
    return pipe


def fresh_scheduler(fixture: Path):
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler.from_pretrained(str(fixture), subfolder="scheduler")


def build_pipe(kind: str, base, fixture: Path, unet=None):
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLInpaintPipeline

    comps = dict(base.components)
    comps["scheduler"] = fresh_scheduler(fixture)
    if unet is not None:
        comps["unet"] = unet
    cls = StableDiffusionXLImg2ImgPipeline if kind == "img2img" else StableDiffusionXLInpaintPipeline
    pipe = cls(**comps, add_watermarker=False)  # requires_aesthetics_score defaults to False
    pipe.set_progress_bar_config(disable=True)
    return pipe


def reinit_(model, seed: int) -> None:
    """Seeded, every parameter non-trivial: weights (ndim >= 2) keep PyTorch's default (kaiming-uniform) init drawn
    after torch.manual_seed(seed); 1-D norm scales = 1 + U(-0.1, 0.1); every other 1-D tensor (biases, norm shifts)
    = N(0, 0.05^2)."""
    norm_types = (torch.nn.GroupNorm, torch.nn.LayerNorm)
    norm_weights = {f"{n}.weight" if n else "weight" for n, m in model.named_modules() if isinstance(m, norm_types)}
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                continue
            if name in norm_weights:
                p.copy_(1 + (torch.rand(p.shape, generator=g) * 0.2 - 0.1))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def make_unet9(base_unet_dir: Path, out_dir: Path):
    from diffusers import UNet2DConditionModel

    cfg = UNet2DConditionModel.load_config(str(base_unet_dir))
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    cfg["in_channels"] = 9
    torch.manual_seed(UNET9_SEED)
    unet = UNet2DConditionModel.from_config(cfg)
    reinit_(unet, UNET9_SEED)
    freeze(unet)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    unet.save_pretrained(str(out_dir), safe_serialization=True)
    half = UNet2DConditionModel.from_config(cfg)
    half.load_state_dict(unet.state_dict())
    half.to(torch.float16).save_pretrained(str(out_dir), safe_serialization=True, variant="fp16")
    return unet


def _calibrate_conv_(conv, x: torch.Tensor, target_std: float, g: torch.Generator, mean_std: float) -> None:
    """Rescales a conv's output channels (weight and bias) so that, on input x, channel c has std target_std and
    mean ~ N(0, mean_std^2) (seeded). Keeps the random net's output in a useful range (a raw random TAESD decoder
    gives an almost constant image that postprocess clamps to 0)."""
    y = conv(x)
    std = y.std(dim=(0, 2, 3))
    mean = y.mean(dim=(0, 2, 3))
    scale = target_std / std
    shift = torch.randn(std.shape, generator=g) * mean_std
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    if conv.bias is not None:
        conv.bias.copy_(conv.bias * scale - mean * scale + shift)


@torch.no_grad()
def calibrate_taesd_(vae) -> None:
    g = torch.Generator().manual_seed(TAESD_SEED + 2)
    lat = torch.randn((1, 4, 8, 8), generator=g) * 2.0  # calibration input (not one of the golden latents)
    dec = vae.decoder
    h = torch.tanh(lat / 3) * 3
    h = dec.layers[:-1](h)
    _calibrate_conv_(dec.layers[-1], h, 0.3, g, 0.1)  # decoder output in [0,1] convention: mean ~0.5 comes below
    dec.layers[-1].bias.add_(0.5)
    img = torch.from_numpy(make_image(64, 64)).permute(2, 0, 1)[None].float() / 255.0  # [0,1] like the encoder sees it
    enc = vae.encoder
    h = enc.layers[:-1](img)
    _calibrate_conv_(enc.layers[-1], h, 1.5, g, 0.3)


def make_taesd():
    from diffusers import AutoencoderTiny

    torch.manual_seed(TAESD_SEED)
    vae = AutoencoderTiny(**TAESD_CONFIG)
    reinit_(vae, TAESD_SEED)
    freeze(vae)
    calibrate_taesd_(vae)
    if TAESD_DIR.exists():
        shutil.rmtree(TAESD_DIR)
    vae.save_pretrained(str(TAESD_DIR), safe_serialization=True)
    half = AutoencoderTiny(**TAESD_CONFIG)
    half.load_state_dict(vae.state_dict())
    half.to(torch.float16).save_pretrained(str(TAESD_DIR), safe_serialization=True, variant="fp16")
    return AutoencoderTiny.from_pretrained(str(TAESD_DIR), torch_dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# Goldens


@G.retry_nonfinite
@torch.no_grad()
def vae_encode(vae, image_input: torch.Tensor) -> dict:
    h = vae.encoder(image_input)
    moments = vae.quant_conv(h)
    dist = vae.encode(image_input).latent_dist
    assert torch.equal(dist.parameters, moments)
    return {
        "image_input": image_input, "moments": moments, "mean": dist.mean, "logvar": dist.logvar, "std": dist.std,
        "image_latents": dist.mean * vae.config.scaling_factor,
    }


@G.retry_nonfinite
@torch.no_grad()
def run_case(pipe, kind: str, mod, strength: float, steps: int, hw, inputs: dict, seed: int | None,
             replay_noise: torch.Tensor | None = None) -> tuple[dict, dict]:
    rec: dict = {}
    steps_lat: list = []

    def cb(p, i, t, kw):
        steps_lat.append(kw["latents"].detach().clone())
        rec.setdefault("t", []).append(float(t))
        return kw

    args = dict(prompt=PROMPT, negative_prompt=NEGATIVE, image=inputs["pil"], strength=strength, num_inference_steps=steps,
                guidance_scale=GUIDANCE, output_type="np", callback_on_step_end=cb, callback_on_step_end_tensor_inputs=["latents"],
                generator=None if seed is None else torch.Generator().manual_seed(seed))
    if kind != "img2img":
        args.update(mask_image=inputs["mask_pil"], height=hw[0], width=hw[1])
    prep, maskprep = [], []
    with patched(mod, replay_noise) as pr, spy_unet(pipe.unet, rec), spy_method(pipe, "prepare_latents", prep):
        ctx = spy_method(pipe, "prepare_mask_latents", maskprep) if kind != "img2img" else contextlib.nullcontext()
        with ctx:
            out = pipe(**args)
    assert len(pr["noise"]) == 1, len(pr["noise"])
    sched = pipe.scheduler
    ehs, te = rec["encoder_hidden_states"], rec["text_embeds"]
    t = {
        "image_input": inputs["image_input"],
        "noise": pr["noise"][0],
        "timesteps": torch.tensor(rec["t"]),
        "sigmas": sched.sigmas.clone(),
        "latents_steps": torch.stack(steps_lat),
        "latents_final": steps_lat[-1],
        "image": torch.from_numpy(np.asarray(out.images, dtype=np.float32)),
        "negative_prompt_embeds": ehs[:1], "prompt_embeds": ehs[1:],
        "negative_pooled_prompt_embeds": te[:1], "pooled_prompt_embeds": te[1:],
        "add_time_ids": rec["time_ids"][1:],
    }
    assert torch.equal(rec["time_ids"][0], rec["time_ids"][1])
    info = {"unet_timesteps": rec["unet_timesteps"], "init_noise_sigma": float(sched.init_noise_sigma),
            "retrieve_latents_calls": len(pr["retrieve_latents"])}
    sf = pipe.vae.config.scaling_factor
    if kind == "img2img":
        t["latents_start"] = prep[0]
        t["image_latents"] = pr["retrieve_latents"][0] * sf
    else:
        lat_out = prep[0]
        t["latents_start"] = lat_out[0]
        assert torch.equal(lat_out[1], t["noise"])
        mask, mil = maskprep[0]
        t["mask_input"] = inputs["mask_input"]
        t["mask"] = mask[:1]
        if kind == "inpaint":
            t["image_latents"] = lat_out[2]
            t["masked_image_latents"] = mil[:1]  # computed (and VAE-encoded) by diffusers even though a 4-ch U-Net ignores it
        else:
            t["masked_image_latents"] = mil[:1]
            t["unet_input"] = rec["unet_input"]
            if strength < 1.0:
                t["image_latents"] = pr["retrieve_latents"][0] * sf
    return t, info


def check_math(kind: str, t: dict, strength: float, steps: int, sched_sigmas: torch.Tensor, init_noise_sigma: float, all_ts) -> dict:
    """Recomputes latents_start from the stored tensors with the formulas documented in the README."""
    n_run = len(t["timesteps"])
    t_start = steps - n_run
    sigma0 = sched_sigmas[t_start]
    if kind == "img2img" or strength < 1.0:
        expect = t["image_latents"] + t["noise"] * sigma0
        form = f"image_latents + noise * sigmas[t_start={t_start}] (= {float(sigma0):.6f})"
    else:
        expect = t["noise"] * init_noise_sigma
        form = f"noise * init_noise_sigma (= {init_noise_sigma:.6f})"
    return {"t_start": t_start, "latents_start_formula": form,
            "latents_start_max_abs_err": G.max_diff(expect, t["latents_start"]),
            "all_timesteps_of_schedule": [float(x) for x in all_ts]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", default="tiny-sdxl,tiny-koala")
    ap.add_argument("--out", default=str(C.REPO / "test/fixtures/img2img-goldens"))
    ap.add_argument("--no-f64", action="store_true", help="skip the float64 comparison")
    a = ap.parse_args()
    C.setup(threads=1)
    import diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img as I2I
    import diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_inpaint as INP
    from diffusers import AutoencoderKL, StableDiffusionXLInpaintPipeline, StableDiffusionXLPipeline, UNet2DConditionModel

    out_root = Path(a.out)
    unet9_dir = out_root / "tiny-sdxl-inpaint-unet"
    unet9 = make_unet9(C.FIXTURES["tiny-sdxl"] / "unet", unet9_dir)

    for fname in a.fixtures.split(","):
        fixture = C.FIXTURES[fname]
        out_dir = out_root / fname
        H, W = C.PIPELINE_HW[fname]
        G.log(f"{fname}: {H}x{W}")
        base = load_base(fixture)
        ip = base.image_processor
        # ---- inputs
        pil = save_png(out_dir / "input.png", make_image(H, W), "RGB")
        mask_pil = save_png(out_dir / "mask.png", make_mask(H, W), "L")
        mask_small_pil = save_png(out_dir / "mask_small.png", make_mask(H // 2, W // 2), "L")
        H2, W2 = H, 2 * W
        pil2 = save_png(out_dir / f"input_{W2}x{H2}.png", make_image(H2, W2), "RGB")
        image_input = ip.preprocess(pil)
        from diffusers.image_processor import VaeImageProcessor

        mask_proc = VaeImageProcessor(vae_scale_factor=base.vae_scale_factor, do_normalize=False, do_binarize=True, do_convert_grayscale=True)
        mask_input = mask_proc.preprocess(mask_pil)
        mask_small_input = mask_proc.preprocess(mask_small_pil, height=H, width=W)
        inputs = {"pil": pil, "mask_pil": mask_pil, "image_input": image_input, "mask_input": mask_input}
        cases: dict = {
            "fixture": C.rel(fixture), "versions": C.versions(), "height": H, "width": W,
            "inputs": {
                "input.png": f"make_image({H}, {W}) in scripts/goldens/img2img.py (uint8 RGB, PIL PNG)",
                "mask.png": {"mode": "L", "white_rect_y0_y1_x0_x1": list(mask_rect(H, W)), "note": "rows y0..y1-1, cols x0..x1-1 are 255 (repaint), rest 0"},
                "mask_small.png": {"size_hw": [H // 2, W // 2], "white_rect_y0_y1_x0_x1": list(mask_rect(H // 2, W // 2)),
                                    "note": "diffusers' mask_processor.preprocess(mask_small, height, width) resizes with PIL LANCZOS, then binarizes (>= 0.5 -> 1); result stored as mask_small_input in inpaint.safetensors"},
                f"input_{W2}x{H2}.png": f"make_image({H2}, {W2})",
                "image_input": "pipe.image_processor.preprocess(PIL input.png) = uint8/255*2-1, [1,3,H,W] float32",
                "mask_input": "pipe.mask_processor.preprocess(PIL mask.png) = (uint8/255 >= 0.5), [1,1,H,W]",
            },
            "vae_encoder": {}, "pipelines": {},
        }
        # ---- VAE encoder
        vae32 = base.vae
        vae16 = AutoencoderKL.from_pretrained(str(fixture), subfolder="vae", variant="fp16", torch_dtype=torch.float32)
        freeze(vae16)
        image_input2 = ip.preprocess(pil2)
        for fn, vae, x, wfile in (("vae_encoder.safetensors", vae32, image_input, "diffusion_pytorch_model.safetensors"),
                                  ("vae_encoder.fp16.safetensors", vae16, image_input, "diffusion_pytorch_model.fp16.safetensors (loaded with torch_dtype=float32)"),
                                  (f"vae_encoder_{W2}x{H2}.safetensors", vae32, image_input2, "diffusion_pytorch_model.safetensors")):
            enc = vae_encode(vae, x)
            G.save_tensors(out_dir / fn, enc)
            cases["vae_encoder"][fn] = {"weights": wfile, "scaling_factor": vae.config.scaling_factor,
                                        "shapes": {k: list(v.shape) for k, v in enc.items()},
                                        "max_abs_mean": G.max_abs(enc["mean"])}
        assert torch.equal(ip.preprocess(pil), image_input)
        if not a.no_f64:
            v64 = AutoencoderKL.from_pretrained(str(fixture), subfolder="vae", torch_dtype=torch.float32).double()
            freeze(v64)
            e64 = vae_encode(v64, image_input.double())
            e32 = vae_encode(vae32, image_input)
            cases["vae_encoder"]["float64_vs_float32"] = {k: G.max_diff(e64[k].float(), e32[k]) for k in ("moments", "mean", "std", "image_latents")}
            del v64
        # ---- pipelines
        for j, (cname, kind, strength, steps) in enumerate(PIPE_CASES):
            if kind == "inpaint9" and fname != "tiny-sdxl":
                continue
            mod = I2I if kind == "img2img" else INP
            pipe = build_pipe("img2img" if kind == "img2img" else "inpaint", base, fixture, unet9 if kind == "inpaint9" else None)
            G.log(f"{fname} {cname}: {type(pipe).__name__} strength {strength} steps {steps}")
            tensors, info = run_case(pipe, "img2img" if kind == "img2img" else kind, mod, strength, steps, (H, W), inputs, SEED + j)
            if cname == "inpaint":
                tensors["mask_small_input"] = mask_small_input
            # the encoder golden and the pipeline must agree on the image latents
            if "image_latents" in tensors:
                il = vae_encode(vae32, image_input)["image_latents"]
                assert G.max_diff(il, tensors["image_latents"]) == 0.0, G.max_diff(il, tensors["image_latents"])
            # the stored embeddings are what encode_prompt returns
            emb = pipe.encode_prompt(PROMPT, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt=NEGATIVE)
            for k, v in zip(EMBED_NAMES, emb):
                assert torch.equal(v, tensors[k]), k
            # a second call with output_type='latent' gives latents_final
            sched_all = fresh_scheduler(fixture)
            sched_all.set_timesteps(steps)
            math = check_math(kind, tensors, strength, steps, sched_all.sigmas, float(sched_all.init_noise_sigma), sched_all.timesteps)
            if kind == "inpaint":
                # replay the per-step blend of the LAST step from stored tensors: no noise at the last step
                m = tensors["mask"]
                math["note_blend"] = "latents_final == (1-mask)*image_latents + mask*latents_after_last_step"
                outside = (1 - m) * (tensors["latents_final"] - tensors["image_latents"])
                math["latents_final_outside_mask_minus_image_latents_max_abs"] = G.max_abs(outside)
                # intermediate steps: outside the mask, latents_steps[i] = image_latents + noise * sigmas[t_start + i + 1]
                errs = []
                for i in range(len(tensors["timesteps"]) - 1):
                    proper = tensors["image_latents"] + tensors["noise"] * sched_all.sigmas[math["t_start"] + i + 1]
                    errs.append(G.max_abs((1 - m) * (tensors["latents_steps"][i] - proper)))
                math["latents_steps_outside_mask_vs_add_noise(image_latents, noise, t[i+1])_max_abs"] = errs
            if kind == "inpaint9":
                exp_in = torch.cat([torch.cat([tensors["latents_start"]] * 2) / float((sched_all.sigmas[math["t_start"]] ** 2 + 1) ** 0.5),
                                    torch.cat([tensors["mask"]] * 2), torch.cat([tensors["masked_image_latents"]] * 2)], 1)
                math["unet_input_vs_cat(scaled latents, mask, masked_image_latents)_max_abs"] = G.max_diff(exp_in, tensors["unet_input"])
                masked = image_input * (mask_input < 0.5)
                mil = vae_encode(vae32, masked)["image_latents"]
                math["masked_image_latents_vs_encode(image*(mask<0.5)).mean*sf_max_abs"] = G.max_diff(mil, tensors["masked_image_latents"])
            if kind == "inpaint":
                masked = image_input * (mask_input < 0.5)
                mil = vae_encode(vae32, masked)["image_latents"]
                math["masked_image_latents_vs_encode(image*(mask<0.5)).mean*sf_max_abs"] = G.max_diff(mil, tensors["masked_image_latents"])
                # latent mask = nearest (F.interpolate default) of the pixel mask
                nn_mask = torch.nn.functional.interpolate(mask_input, size=(H // 8, W // 8))
                math["mask_vs_interpolate_nearest_max_abs"] = G.max_diff(nn_mask, tensors["mask"])
            G.save_tensors(out_dir / f"{cname}.safetensors", tensors)
            entry = {
                "file": f"{cname}.safetensors", "pipeline": type(pipe).__name__,
                "unet": "tiny-sdxl-inpaint-unet (in_channels 9)" if kind == "inpaint9" else f"{C.rel(fixture)}/unet (in_channels 4)",
                "prompt": PROMPT, "negative_prompt": NEGATIVE, "guidance_scale": GUIDANCE, "strength": strength,
                "num_inference_steps": steps, "steps_run": len(tensors["timesteps"]),
                "height": H, "width": W, "output_type": "np",
                "generator": f"torch.Generator().manual_seed({SEED + j}) (only used by the one randn_tensor draw = noise)",
                "scheduler": "EulerDiscreteScheduler.from_pretrained(fixture, subfolder='scheduler')",
                "timesteps": tensors["timesteps"].tolist(), "sigmas": tensors["sigmas"].tolist(),
                "requires_aesthetics_score": bool(pipe.config.requires_aesthetics_score),
                "aesthetic_score_used": False,
                "add_time_ids": tensors["add_time_ids"].tolist(),
                **info, **math,
                "shapes": {k: list(v.shape) for k, v in tensors.items()},
                "max_abs_latents_final": G.max_abs(tensors["latents_final"]),
            }
            # float64 rerun (one img2img case): same noise replayed, every model in float64
            if not a.no_f64 and cname == "img2img":
                b64 = load_base(fixture)
                for m in (b64.unet, b64.vae, b64.text_encoder, b64.text_encoder_2):
                    m.double()
                b64.vae.register_to_config(force_upcast=False)  # else prepare_latents encodes in float32
                p64 = build_pipe("img2img", b64, fixture)
                in64 = dict(inputs)
                torch.set_default_dtype(torch.float64)  # CLIP's causal mask is torch.full(.., finfo(float64).min)
                try:
                    t64, _ = run_case(p64, "img2img", I2I, strength, steps, (H, W), in64, None, replay_noise=tensors["noise"].double())
                finally:
                    torch.set_default_dtype(torch.float32)
                entry["float64_vs_float32"] = {k: G.max_diff(t64[k].float(), tensors[k]) for k in ("image_latents", "latents_start", "latents_final", "image", "prompt_embeds")}
                entry["float64_note"] = "all four models in float64 (torch default dtype float64), the same noise replayed; EulerDiscreteScheduler.step still upcasts the sample to float32 internally"
                del b64, p64
            cases["pipelines"][cname] = entry
            G.log(f"{fname} {cname}: timesteps {entry['timesteps']} latents_final max {entry['max_abs_latents_final']:.3f}")
        # the 9-channel U-Net folder, assembled into a full repo, loads with from_pretrained
        if fname == "tiny-sdxl":
            with tempfile.TemporaryDirectory() as td:
                repo = Path(td) / "tiny-sdxl-inpaint"
                shutil.copytree(fixture, repo, ignore=shutil.ignore_patterns("goldens", "SHA256SUMS"))
                shutil.rmtree(repo / "unet")
                shutil.copytree(unet9_dir, repo / "unet")
                p9 = StableDiffusionXLInpaintPipeline.from_pretrained(str(repo), torch_dtype=torch.float32, add_watermarker=False)
                sd_a, sd_b = p9.unet.state_dict(), unet9.state_dict()
                assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_b)
                p16 = UNet2DConditionModel.from_pretrained(str(repo), subfolder="unet", variant="fp16", torch_dtype=torch.float32)
                cases["inpaint9_unet_fp16_max_abs_rounding"] = max(G.max_diff(p16.state_dict()[k], sd_b[k]) for k in sd_b)
                cases["inpaint9_repo_check"] = "tiny-sdxl (minus goldens) with unet/ replaced by tiny-sdxl-inpaint-unet/ loads with StableDiffusionXLInpaintPipeline.from_pretrained and gives these weights"
        cases["nonfinite_retries"] = list(G.NONFINITE_RETRIES)
        C.write_json(out_dir / "cases.json", cases)
        del base

    # ---- TAESD
    taesd = make_taesd()
    tensors: dict = {}
    tinfo: dict = {"model": C.rel(TAESD_DIR), "config": {k: v for k, v in dict(taesd.config).items()}, "cases": {}}
    g = torch.Generator().manual_seed(TAESD_LATENT_SEED)
    base = load_base(C.FIXTURES["tiny-sdxl"])
    for tag, (h, w) in (("8x8", (8, 8)), ("6x8", (6, 8))):
        lat = torch.randn((1, 4, h, w), generator=g) * 2.0
        with torch.no_grad():
            dec = taesd.decode(lat / taesd.config.scaling_factor).sample
        img = torch.from_numpy(np.asarray(base.image_processor.postprocess(dec, output_type="np"), dtype=np.float32))
        # the same through a real StableDiffusionXLPipeline whose vae is this TAESD: the last step's latents are
        # replaced by `lat` via callback_on_step_end, so the pipeline decodes exactly `lat`
        comps = dict(base.components)
        comps["vae"], comps["scheduler"] = taesd, fresh_scheduler(C.FIXTURES["tiny-sdxl"])
        p = StableDiffusionXLPipeline(**comps, add_watermarker=False)
        p.set_progress_bar_config(disable=True)

        def cb(pp, i, t, kw, _lat=lat):
            return {"latents": _lat.clone()} if i == 1 else kw

        with torch.no_grad():
            pimg = p(prompt=PROMPT, num_inference_steps=2, guidance_scale=GUIDANCE, height=8 * h, width=8 * w, output_type="np",
                     latents=torch.zeros((1, 4, h, w)), callback_on_step_end=cb, callback_on_step_end_tensor_inputs=["latents"]).images
        pipe_diff = G.max_diff(torch.from_numpy(np.asarray(pimg, dtype=np.float32)), img)
        assert pipe_diff == 0.0, pipe_diff
        tensors[f"latents_{tag}"] = lat
        tensors[f"image_decoded_{tag}"] = dec
        tensors[f"image_{tag}"] = img
        tinfo["cases"][tag] = {"latents": f"torch.randn((1,4,{h},{w}), generator=torch.Generator().manual_seed({TAESD_LATENT_SEED}) [drawn in order 8x8 then 6x8]) * 2.0",
                               "image_decoded": "AutoencoderTiny.decode(latents / scaling_factor).sample (unclamped; includes tanh(x/3)*3 on the input and *2-1 on the output)",
                               "image": "VaeImageProcessor.postprocess(image_decoded, 'np') = clamp(x/2+0.5, 0, 1), [1,H,W,3]; identical to StableDiffusionXLPipeline(vae=taesd) output (checked)",
                               "image_decoded_range": [float(dec.min()), float(dec.max())]}
    x = C.REPO / "test/fixtures/img2img-goldens/tiny-sdxl/input.png"
    from PIL import Image

    xin = base.image_processor.preprocess(Image.open(x).convert("RGB"))
    with torch.no_grad():
        enc = taesd.encode(xin).latents
    tensors["image_input"] = xin
    tensors["encoded"] = enc
    tinfo["encoded"] = "AutoencoderTiny.encode(image_input).latents with image_input = tiny-sdxl/input.png preprocessed to [-1,1] (the encoder maps it to [0,1] first: x.add(1).div(2)); no scaling_factor applied"
    if not a.no_f64:
        t64 = AutoencoderTiny_from(TAESD_DIR).double()
        with torch.no_grad():
            tinfo["float64_vs_float32"] = {
                "image_decoded_8x8": G.max_diff(t64.decode(tensors["latents_8x8"].double()).sample.float(), tensors["image_decoded_8x8"]),
                "encoded": G.max_diff(t64.encode(xin.double()).latents.float(), enc),
            }
    half = AutoencoderTiny_from(TAESD_DIR, variant="fp16")
    tinfo["fp16_weights_max_abs_rounding"] = max(G.max_diff(half.state_dict()[k], v) for k, v in taesd.state_dict().items())
    tinfo["shapes"] = {k: list(v.shape) for k, v in tensors.items()}
    tinfo["versions"] = C.versions()
    G.save_tensors(out_root / "taesd.safetensors", tensors)
    C.write_json(out_root / "taesd.json", tinfo)
    G.log("done")


def AutoencoderTiny_from(path: Path, variant: str | None = None):
    from diffusers import AutoencoderTiny

    kw = {"torch_dtype": torch.float32}
    if variant:
        kw["variant"] = variant
    m = AutoencoderTiny.from_pretrained(str(path), **kw)
    freeze(m)
    return m


if __name__ == "__main__":
    main()
