#!/usr/bin/env python3
"""Reference ("golden") tensors for a diffusers SDXL-family model folder, computed with the real
diffusers + transformers code on CPU in float32, for the fp32 weight files and for the fp16 weight
files loaded upcast to float32 (`from_pretrained(..., variant="fp16", torch_dtype=torch.float32)`).

  python3 scripts/fullsize/goldens.py --model DIR --out GOLDEN_DIR [--seed N] [--sizes 256,1024]
      [--only text,unet,vae,pipeline] [--variants fp32,fp16] [--float64-check] [--hash-weights]

Every INPUT file can be passed straight to the project's CLI, e.g.
  npm run component -- --model DIR --component unet [--variant fp16] \
      --inputs GOLDEN_DIR/fp16/unet_256.inputs.safetensors --out OUT.safetensors
and compared with GOLDEN_DIR/fp16/unet_256.expected.safetensors; the pipeline run replays with
  npm run generate -- --model DIR [--variant fp16] --prompt P --negative-prompt N --steps 4 \
      --guidance 5 --width 256 --height 256 --latents GOLDEN_DIR/W/pipeline_256.latents.safetensors --dump OUT
(the exact arguments are in GOLDEN_DIR/cases.json). See scripts/fullsize/README.md.
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import json
import os
import platform
import random
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------
# Inputs

# Prompts of our own; the seed picks which ones each part uses (and in which order).
PROMPTS = [
    "a photo of a koala sitting in a eucalyptus tree, soft morning light",
    "A watercolor painting of a lighthouse on a rocky coast at sunset!",
    "an astronaut riding a horse on the moon, highly detailed, 8k",
    "a steaming bowl of ramen with a soft-boiled egg, studio photograph",
    "Portrait of an old fisherman with a grey beard, dramatic lighting, oil on canvas",
    "a cozy wooden cabin in the snowy woods at night, warm light in the windows",
    "a red vintage car parked on a cobblestone street in Paris, 35mm film",
    "isometric pixel art of a tiny island with a windmill and two palm trees",
]
NEGATIVE_PROMPTS = [
    "blurry, low quality, watermark, text",
    "worst quality, low resolution, jpeg artifacts, deformed hands, extra fingers",
    "ugly, duplicate, out of frame, cropped",
]
WEIGHT_SETS = {"fp32": None, "fp16": "fp16"}  # name -> from_pretrained(variant=...)
PARTS = ("text", "unet", "vae", "pipeline")
PIPELINE_STEPS = 4
PIPELINE_GUIDANCE = 5.0
UNET_TIMESTEPS = {256: 501.0, 1024: 251.0}  # any other size: 501


def generator(seed: int, stream: int) -> torch.Generator:
    """One independent, seeded torch RNG stream per input, so --only never changes an input."""
    return torch.Generator().manual_seed(seed * 1000 + stream)


# ---------------------------------------------------------------------------------------------
# Small helpers


def save_tensors(path: Path, tensors: dict, metadata: dict | None = None) -> None:
    """safetensors writer (float32 / int64 only): tensors sorted by name, header padded with spaces."""
    header: dict = {"__metadata__": {"format": "pt", **(metadata or {})}}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        if a.dtype == np.int64:
            dt = "I64"
        else:
            a, dt = a.astype(np.float32), "F32"
        b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
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


def load_tensors(path: Path) -> dict[str, np.ndarray]:
    """safetensors reader (F32/F16/F64/I64/I32) returning numpy arrays."""
    kinds = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=kinds[info["dtype"]]).reshape(info["shape"]).copy()
    return out


def max_abs(a) -> float:
    a = a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, dtype=np.float64)
    return float(np.abs(a).max()) if a.size else 0.0


def max_diff(a, b) -> float:
    a = a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, dtype=np.float64)
    b = b.detach().cpu().double().numpy() if isinstance(b, torch.Tensor) else np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


class in_float64:
    """Runs a module in float64 (its parameters converted in place, and back afterwards; the
    conversion back is exact) with float64 as torch's default dtype."""

    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.module.double()
        torch.set_default_dtype(torch.float64)
        return self.module

    def __exit__(self, *exc):
        torch.set_default_dtype(torch.float32)
        self.module.float()
        return False


def log(msg: str) -> None:
    print(f"[goldens {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


NONFINITE_RETRIES: list[str] = []  # what had to be recomputed (reported in cases.json)


def retry_nonfinite(fn):
    """Recomputes a forward whose outputs are not all finite.

    torch 1.x's CPU baddbmm, for tiny products (fewer than 400 multiply-adds per matrix), computes
    `out = out*beta + alpha*(a@b)` on its freshly allocated, uninitialised output even when beta == 0,
    so a diffusers AttnProcessor score matrix turns NaN whenever malloc hands back memory that holds a
    NaN/Inf bit pattern (seen on the tiny fixtures, e.g. after float64 runs; full-size attention is far
    above that size and goes through BLAS). A finite result is exact (0 * finite = 0), so recomputing
    is enough (up to 5 tries); `--zero-malloc` (ensure_malloc_perturb) removes the cause for torch < 2."""

    def tensors(x):
        if isinstance(x, torch.Tensor):
            yield x
        elif isinstance(x, dict):
            for v in x.values():
                yield from tensors(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                yield from tensors(v)

    def wrapper(*a, **k):
        for attempt in range(5):
            out = fn(*a, **k)
            if all(bool(torch.isfinite(t).all()) for t in tensors(out) if t.is_floating_point()):
                return out
            NONFINITE_RETRIES.append(fn.__name__)
            log(f"{fn.__name__}: non-finite output (try {attempt + 1}); recomputing")
        raise RuntimeError(f"{fn.__name__}: non-finite output 5 times")

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def ensure_malloc_perturb() -> None:
    """With torch < 2, re-executes this process with MALLOC_PERTURB_=255 and glibc's tcache off
    (glibc then fills every malloc'd block with zero bytes), so the uninitialised-output baddbmm
    path described in retry_nonfinite always sees zeros. Costs a memset per allocation (the tiny
    check runs ~5x slower). Does nothing on torch >= 2 or when MALLOC_PERTURB_ is already set."""
    if os.environ.get("MALLOC_PERTURB_") is not None or not torch.__version__.startswith("1."):
        return
    os.environ["MALLOC_PERTURB_"] = "255"
    os.environ["GLIBC_TUNABLES"] = ":".join(x for x in (os.environ.get("GLIBC_TUNABLES"), "glibc.malloc.tcache_count=0") if x)
    log("torch 1.x: re-running with MALLOC_PERTURB_=255 GLIBC_TUNABLES=glibc.malloc.tcache_count=0 (zero-filled allocations; see retry_nonfinite)")
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, *sys.argv])


def setup_hf() -> None:
    """transformers without the `tokenizers` package (only slow tokenizers are used here) defines a
    stand-in AddedToken that the slow CLIPTokenizer cannot use (unhashable, no __setstate__). On a
    normal install (`tokenizers` present) this does nothing. Gives the stand-in the behaviour of
    tokenizers.AddedToken: hash of the content, state as a dict of its fields."""
    from transformers.utils import is_tokenizers_available

    if is_tokenizers_available():
        return
    import transformers.tokenization_utils_base as tub

    cls = tub.AddedToken
    if getattr(cls, "_goldens_compat", False):
        return
    fields = ("content", "single_word", "lstrip", "rstrip", "special", "normalized")

    def __setstate__(self, state):
        for k, v in state.items():
            if k in fields:
                setattr(self, k, v)

    def __eq__(self, other):
        if not isinstance(other, cls):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in fields)

    cls.__setstate__ = __setstate__
    cls.__eq__ = __eq__
    cls.__hash__ = lambda self: hash(self.content)
    cls._goldens_compat = True


def versions() -> dict:
    import diffusers
    import transformers

    v = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "MALLOC_PERTURB_": os.environ.get("MALLOC_PERTURB_"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }
    try:
        import huggingface_hub

        v["huggingface_hub"] = huggingface_hub.__version__
    except Exception:  # pragma: no cover
        pass
    try:
        import safetensors

        v["safetensors"] = getattr(safetensors, "__version__", "?")
    except Exception:
        v["safetensors"] = "not installed"
    from transformers.utils import is_tokenizers_available

    v["tokenizers"] = "installed" if is_tokenizers_available() else "not installed (slow CLIPTokenizer only)"
    return v


# ---------------------------------------------------------------------------------------------
# Loading (lazily, per weight set)


class Components:
    """The model folder's components for one weight set, loaded on first use with the classes named
    in model_index.json, exactly as StableDiffusionXLPipeline.from_pretrained loads them."""

    MODELS = ("text_encoder", "text_encoder_2", "unet", "vae")

    def __init__(self, model_dir: Path, variant: str | None, timings: dict):
        self.model_dir = model_dir
        self.variant = variant
        self.timings = timings
        self.index = json.loads((model_dir / "model_index.json").read_text())
        self._loaded: dict = {}

    def cls(self, name: str):
        lib, cls_name = self.index[name]
        return getattr(importlib.import_module(lib), cls_name)

    def __getitem__(self, name: str):
        if name not in self._loaded:
            t0 = time.perf_counter()
            cls = self.cls(name)
            if name in self.MODELS:
                kw = {"subfolder": name, "torch_dtype": torch.float32, "use_safetensors": True}
                if self.variant:
                    kw["variant"] = self.variant
                m = cls.from_pretrained(str(self.model_dir), **kw)
                m.eval()
                for p in m.parameters():
                    p.requires_grad_(False)
                assert next(m.parameters()).dtype == torch.float32
            else:
                m = cls.from_pretrained(str(self.model_dir), subfolder=name)
            self._loaded[name] = m
            dt = time.perf_counter() - t0
            key = f"load.{name}" if f"load.{name}" not in self.timings else f"load.{name}.again"
            self.timings[key] = round(dt, 2)
            log(f"loaded {name} ({cls.__name__}{', variant=' + self.variant if self.variant and name in self.MODELS else ''}) in {dt:.1f} s")
        return self._loaded[name]

    def pipeline(self):
        from diffusers import StableDiffusionXLPipeline

        comps = {n: self[n] for n in ("tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2", "unet", "vae", "scheduler")}
        kw = {"torch_dtype": torch.float32, "add_watermarker": False}
        if self.variant:
            kw["variant"] = self.variant
        return StableDiffusionXLPipeline.from_pretrained(str(self.model_dir), **kw, **comps)

    def drop(self, name: str) -> None:
        self._loaded.pop(name, None)
        gc.collect()

    def close(self) -> None:
        self._loaded.clear()
        gc.collect()


# ---------------------------------------------------------------------------------------------
# The four parts


def tokenize(tokenizer, prompts: list[str]) -> torch.Tensor:
    # exactly as StableDiffusionXLPipeline.encode_prompt calls the tokenizers
    return tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids


@retry_nonfinite
@torch.no_grad()
def run_text_encoder(te, input_ids: torch.Tensor) -> dict:
    out = te(input_ids.long(), output_hidden_states=True)
    res = {"hidden_states_m2": out.hidden_states[-2], "last_hidden_state": out.last_hidden_state}
    if hasattr(out, "text_embeds"):
        res["text_embeds"] = out.text_embeds
    return res


@retry_nonfinite
@torch.no_grad()
def run_unet(unet, inputs: dict) -> dict:
    out = unet(
        inputs["sample"], inputs["timestep"], encoder_hidden_states=inputs["encoder_hidden_states"],
        added_cond_kwargs={"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]},
    ).sample
    return {"out": out}


@retry_nonfinite
@torch.no_grad()
def run_vae_decoder(vae, latents_scaled: torch.Tensor) -> dict:
    return {"image": vae.decode(latents_scaled).sample}


def unet_inputs(unet_config, te2_config, seed: int, size: int) -> tuple[dict, dict]:
    batch = 2 if size <= 512 else 1
    hw = size // 8
    g = generator(seed, 100 + size)
    d = int(unet_config["cross_attention_dim"])
    p = int(te2_config["projection_dim"])
    rows = [[size, size, 0, 0, size, size], [2 * size, size + size // 2, 16, 8, size, size]][:batch]
    inputs = {
        "sample": torch.randn((batch, int(unet_config["in_channels"]), hw, hw), generator=g),
        "timestep": torch.tensor([UNET_TIMESTEPS.get(size, 501.0)], dtype=torch.float32),
        "encoder_hidden_states": torch.randn((batch, 77, d), generator=g),
        "text_embeds": torch.randn((batch, p), generator=g),
        "time_ids": torch.tensor(rows, dtype=torch.float32),
    }
    meta = {"size": size, "batch": batch, "latent_hw": [hw, hw], "timestep": float(inputs["timestep"][0]), "time_ids": rows}
    return inputs, meta


def vae_inputs(vae_config, seed: int, size: int) -> tuple[dict, dict]:
    hw = size // 8
    sf = float(vae_config.get("scaling_factor", 0.13025))
    latents = torch.randn((1, int(vae_config["latent_channels"]), hw, hw), generator=generator(seed, 200 + size))
    return {"latents_scaled": latents / sf}, {"size": size, "latent_hw": [hw, hw], "scaling_factor": sf,
                                              "how": "randn(seed) / scaling_factor (unit-variance latents as the pipeline decodes them)"}


@retry_nonfinite
@torch.no_grad()
def run_pipeline(pipe, prompt: str, negative_prompt: str, latents: torch.Tensor, size: int, steps: int, guidance: float) -> tuple[dict, dict, dict]:
    """StableDiffusionXLPipeline call; returns (dump tensors as the CLI's --dump writes them, a trace, params)."""
    rec: dict = {"latents": [], "t": []}

    def cb(p, i, t, kw):
        if i == 0:
            rec["prompt_embeds"] = kw["prompt_embeds"].clone()
            rec["add_text_embeds"] = kw["add_text_embeds"].clone()
            rec["add_time_ids"] = kw["add_time_ids"].clone()
        rec["latents"].append(kw["latents"].clone())
        rec["t"].append(float(t))
        return kw

    out = pipe(
        prompt=prompt, negative_prompt=negative_prompt, guidance_scale=guidance, num_inference_steps=steps,
        height=size, width=size, latents=latents.clone(), output_type="np",
        callback_on_step_end=cb, callback_on_step_end_tensor_inputs=["latents", "prompt_embeds", "add_text_embeds", "add_time_ids"],
    )
    image = torch.from_numpy(np.asarray(out.images, dtype=np.float32))
    cfg = guidance > 1
    pe, pooled = rec["prompt_embeds"], rec["add_text_embeds"]
    # cross-check the embeddings the UNet got against encode_prompt called directly
    ref = pipe.encode_prompt(prompt, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=cfg, negative_prompt=negative_prompt)
    B = latents.shape[0]
    dump = {
        "prompt_embeds": pe[B:] if cfg else pe,
        "pooled_prompt_embeds": pooled[B:] if cfg else pooled,
        "add_time_ids": rec["add_time_ids"],
        "latents": rec["latents"][-1],
        "image": image,
    }
    if cfg:
        dump["negative_prompt_embeds"] = pe[:B]
        dump["negative_pooled_prompt_embeds"] = pooled[:B]
    assert torch.equal(ref[0], dump["prompt_embeds"]) and torch.equal(ref[2], dump["pooled_prompt_embeds"]), "encode_prompt mismatch"
    if cfg:
        assert torch.equal(ref[1], dump["negative_prompt_embeds"]) and torch.equal(ref[3], dump["negative_pooled_prompt_embeds"])
    sched = pipe.scheduler
    trace = {
        "latents_steps": torch.stack(rec["latents"]),
        "timesteps": torch.tensor(rec["t"], dtype=torch.float32),
        "sigmas": sched.sigmas.float(),
    }
    params = {
        "scheduler": type(sched).__name__, "scheduler_config": {k: v for k, v in dict(sched.config).items() if not k.startswith("_")},
        "timesteps": rec["t"], "sigmas": [float(s) for s in sched.sigmas], "init_noise_sigma": float(sched.init_noise_sigma),
        "add_time_ids": rec["add_time_ids"].tolist(),
    }
    return dump, trace, params


# ---------------------------------------------------------------------------------------------
# Driver


def model_files(model_dir: Path, hash_weights: bool) -> list[dict]:
    rows = []
    for p in sorted(model_dir.rglob("*")):
        if not p.is_file() or p.name.startswith(".") or "goldens" in p.relative_to(model_dir).parts:
            continue
        rel = str(p.relative_to(model_dir))
        row = {"file": rel, "bytes": p.stat().st_size}
        if p.suffix != ".safetensors" or hash_weights:
            row["sha256"] = sha256_file(p)
        rows.append(row)
    return rows


def cli_component(component: str, variant: str | None, w: str, name: str) -> str:
    v = f" --variant {variant}" if variant else ""
    return (f"npm run component -- --model $MODEL --component {component}{v} "
            f"--inputs $GOLDENS/{w}/{name}.inputs.safetensors --out $OUT/{w}/{name}.safetensors")


def generate(args) -> None:
    torch.set_num_threads(args.threads)
    setup_hf()
    model_dir = Path(args.model).resolve()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(",")) if args.only else set(PARTS)
    bad = only - set(PARTS)
    if bad:
        sys.exit(f"--only: unknown part(s) {sorted(bad)}; choose from {','.join(PARTS)}")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    wsets = [w for w in args.variants.split(",") if w]
    for w in wsets:
        if w not in WEIGHT_SETS:
            sys.exit(f"--variants: unknown weight set {w!r} (fp32, fp16)")

    cases_path = out_dir / "cases.json"
    cases = json.loads(cases_path.read_text()) if cases_path.exists() else {}
    if cases and cases.get("seed") != args.seed:
        log(f"{cases_path} was made with seed {cases.get('seed')}; starting it afresh for seed {args.seed}")
        cases = {}
    cases.update({
        "generator": "scripts/fullsize/goldens.py",
        "argv": sys.argv[1:],
        "seed": args.seed,
        "model": str(args.model),
        "versions": versions(),
        "dtype": "float32 on CPU; fp16 weight set = *.fp16.safetensors loaded with from_pretrained(variant='fp16', torch_dtype=torch.float32)",
        "weight_sets": {w: {"variant": WEIGHT_SETS[w], "dir": w} for w in WEIGHT_SETS},
        "conventions": {
            "integers": "input_ids, timestep and time_ids are stored as exact float32 values",
            "placeholders": "$MODEL = the model folder, $GOLDENS = this folder, $OUT = any output folder",
        },
    })
    cases.setdefault("timings_s", {})
    cases.setdefault("commands", {})
    t0 = time.perf_counter()
    cases["model_files"] = model_files(model_dir, args.hash_weights)
    cases["timings_s"]["hash_model_files"] = round(time.perf_counter() - t0, 2)

    rng = random.Random(args.seed)
    te_prompts = rng.sample(PROMPTS, 2)
    pipe_prompt = rng.choice([p for p in PROMPTS if p not in te_prompts])
    pipe_negative = rng.choice(NEGATIVE_PROMPTS)

    f64_report = cases.get("float64_check", {})
    for w in wsets:
        variant = WEIGHT_SETS[w]
        wdir = out_dir / w
        wdir.mkdir(exist_ok=True)
        timings = cases["timings_s"][w] = {}  # this run's timings only
        cmds = cases["commands"].setdefault(w, {})
        comps = Components(model_dir, variant, timings)
        do_f64 = args.float64_check and w == "fp32"

        if "text" in only:
            info = {}
            for te_name, tok_name in (("text_encoder", "tokenizer"), ("text_encoder_2", "tokenizer_2")):
                ids = tokenize(comps[tok_name], te_prompts)
                te = comps[te_name]
                t0 = time.perf_counter()
                res = run_text_encoder(te, ids)
                timings[te_name] = round(time.perf_counter() - t0, 2)
                save_tensors(wdir / f"{te_name}.inputs.safetensors", {"input_ids": ids.float()})
                save_tensors(wdir / f"{te_name}.expected.safetensors", res, {"component": te_name, "weights": w})
                cmds[te_name] = cli_component(te_name, variant, w, te_name)
                info[te_name] = {
                    "prompts": te_prompts, "tokenizer": tok_name, "input_ids": ids.tolist(),
                    "eos_index": ids.argmax(-1).tolist(), "inputs": f"{te_name}.inputs.safetensors", "expected": f"{te_name}.expected.safetensors",
                }
                log(f"{w} {te_name}: {timings[te_name]} s")
                if do_f64:
                    t0 = time.perf_counter()
                    with in_float64(te):
                        r64 = run_text_encoder(te, ids)
                    timings[f"float64_check.{te_name}"] = round(time.perf_counter() - t0, 2)
                    f64_report[te_name] = {k: {"max_abs_diff": max_diff(res[k], r64[k]), "max_abs_ref": max_abs(r64[k])} for k in res}
                del te
                comps.drop(te_name)  # keeps the peak memory low; the pipeline part loads it again
            cases["text_encoders"] = info

        if "unet" in only:
            unet = comps["unet"]
            te2_cfg = json.loads((model_dir / "text_encoder_2" / "config.json").read_text())
            entries = [e for e in cases.get("unet", []) if e["size"] not in sizes]
            per_sample_256 = None
            for size in sizes:
                name = f"unet_{size}"
                inputs, meta = unet_inputs(unet.config, te2_cfg, args.seed, size)
                meta.update({"name": name, "inputs": f"{name}.inputs.safetensors", "expected": f"{name}.expected.safetensors"})
                if per_sample_256 is not None and size > 256:
                    est = per_sample_256 * meta["batch"] * (size / 256) ** 2 * 2.0
                    if est > args.max_unet_seconds:
                        msg = f"skipped: estimated {est:.0f} s > --max-unet-seconds {args.max_unet_seconds}"
                        log(f"{w} {name} {msg}")
                        meta["skipped"] = msg
                        entries.append(meta)
                        continue
                log(f"{w} {name}: batch {meta['batch']}, latents {meta['latent_hw']} ...")
                t0 = time.perf_counter()
                res = run_unet(unet, inputs)
                dt = time.perf_counter() - t0
                timings[name] = round(dt, 2)
                if size <= 256:
                    per_sample_256 = dt / meta["batch"] * (256 / size) ** 2
                save_tensors(wdir / f"{name}.inputs.safetensors", inputs)
                save_tensors(wdir / f"{name}.expected.safetensors", res, {"component": "unet", "weights": w})
                cmds[name] = cli_component("unet", variant, w, name)
                meta["forward_upsample_size"] = any(s % 2 ** (len(unet.config.block_out_channels) - 1) for s in meta["latent_hw"])
                entries.append(meta)
                log(f"{w} {name}: {dt:.1f} s, max|out| {max_abs(res['out']):.4g}")
                if do_f64 and size <= 512:
                    t0 = time.perf_counter()
                    with in_float64(unet):
                        r64 = run_unet(unet, {k: v.double() for k, v in inputs.items()})
                    timings[f"float64_check.{name}"] = round(time.perf_counter() - t0, 2)
                    f64_report[name] = {"out": {"max_abs_diff": max_diff(res["out"], r64["out"]), "max_abs_ref": max_abs(r64["out"])}}
            cases["unet"] = sorted(entries, key=lambda e: e["size"])
            del unet
            comps.drop("unet")

        if "vae" in only:
            vae = comps["vae"]
            entries = [e for e in cases.get("vae_decoder", []) if e["size"] not in args.vae_sizes]
            for size in args.vae_sizes:
                name = f"vae_decoder_{size}"
                inputs, meta = vae_inputs(vae.config, args.seed, size)
                t0 = time.perf_counter()
                res = run_vae_decoder(vae, inputs["latents_scaled"])
                timings[name] = round(time.perf_counter() - t0, 2)
                save_tensors(wdir / f"{name}.inputs.safetensors", inputs)
                save_tensors(wdir / f"{name}.expected.safetensors", res, {"component": "vae_decoder", "weights": w})
                cmds[name] = cli_component("vae_decoder", variant, w, name)
                meta.update({"name": name, "inputs": f"{name}.inputs.safetensors", "expected": f"{name}.expected.safetensors"})
                entries.append(meta)
                log(f"{w} {name}: {timings[name]} s")
                if do_f64:
                    t0 = time.perf_counter()
                    with in_float64(vae):
                        r64 = run_vae_decoder(vae, inputs["latents_scaled"].double())
                    timings[f"float64_check.{name}"] = round(time.perf_counter() - t0, 2)
                    f64_report[name] = {"image": {"max_abs_diff": max_diff(res["image"], r64["image"]), "max_abs_ref": max_abs(r64["image"])}}
            cases["vae_decoder"] = sorted(entries, key=lambda e: e["size"])

        if "pipeline" in only:
            pipe = comps.pipeline()
            entries = [e for e in cases.get("pipeline", []) if e["size"] not in args.pipeline_sizes]
            for size in args.pipeline_sizes:
                name = f"pipeline_{size}"
                hw = size // 8
                latents = torch.randn((1, int(pipe.unet.config.in_channels), hw, hw), generator=generator(args.seed, 400 + size))
                log(f"{w} {name}: {PIPELINE_STEPS} steps, guidance {PIPELINE_GUIDANCE} ...")
                t0 = time.perf_counter()
                dump, trace, params = run_pipeline(pipe, pipe_prompt, pipe_negative, latents, size, PIPELINE_STEPS, PIPELINE_GUIDANCE)
                timings[name] = round(time.perf_counter() - t0, 2)
                save_tensors(wdir / f"{name}.latents.safetensors", {"latents": latents})
                save_tensors(wdir / f"{name}.expected.safetensors", dump, {"pipeline": "StableDiffusionXLPipeline", "weights": w})
                save_tensors(wdir / f"{name}.trace.safetensors", trace)
                gen_args = ["--prompt-style", "plain", "--prompt", pipe_prompt, "--negative-prompt", pipe_negative, "--steps", str(PIPELINE_STEPS),
                            "--guidance", f"{PIPELINE_GUIDANCE:g}", "--width", str(size), "--height", str(size),
                            "--latents", f"$GOLDENS/$W/{name}.latents.safetensors"]
                line = ["--model", "$MODEL", *(["--variant", variant] if variant else []),
                        *[a.replace("$W", w) for a in gen_args], "--dump", f"$OUT/{w}/{name}.safetensors", "--out", f"$OUT/{w}/{name}.png"]
                cmds[name] = "npm run generate -- " + " ".join(json.dumps(a) if any(c in a for c in " ,!'\"") else a for a in line)
                entry = {
                    "name": name, "size": size, "width": size, "height": size, "batch": 1,
                    "prompt": pipe_prompt, "negative_prompt": pipe_negative, "steps": PIPELINE_STEPS, "guidance": PIPELINE_GUIDANCE,
                    "latents": f"{name}.latents.safetensors", "expected": f"{name}.expected.safetensors", "trace": f"{name}.trace.safetensors",
                    "generate_args": gen_args, "generate_args_note": "$W = fp32 or fp16; add --variant fp16 for the fp16 set",
                    "output_type": "np", "eta": 0.0, "guidance_rescale": 0.0, "watermark": False,
                    **params,
                }
                entries.append(entry)
                log(f"{w} {name}: {timings[name]} s, max|latents| {max_abs(dump['latents']):.4g}")
            cases["pipeline"] = sorted(entries, key=lambda e: e["size"])
            del pipe
        comps.close()
        timings["total"] = round(sum(v for k, v in timings.items() if k != "total"), 2)

    if args.float64_check:
        cases["float64_check"] = f64_report
    cases["nonfinite_recomputed"] = NONFINITE_RETRIES
    cases_path.write_text(json.dumps(cases, indent=1) + "\n")
    write_readme(out_dir, cases)
    log(f"wrote {out_dir}")


def write_readme(out_dir: Path, cases: dict) -> None:
    v = cases["versions"]
    L = [
        f"# Golden tensors for `{cases['model']}`",
        "",
        "Generated by `scripts/fullsize/goldens.py` (do not edit by hand): "
        f"`python3 scripts/fullsize/goldens.py {' '.join(cases['argv'])}`.",
        "",
        f"- torch {v['torch']}, diffusers {v['diffusers']}, transformers {v['transformers']}, huggingface_hub {v.get('huggingface_hub', '?')}, "
        f"numpy {v['numpy']}, Python {v['python']}; safetensors: {v['safetensors']}; tokenizers: {v['tokenizers']}",
        f"- CPU, float32, `torch.set_num_threads({v['torch_num_threads']})`; seed **{cases['seed']}** (every random input comes from "
        "`torch.Generator().manual_seed(seed*1000 + stream)`, prompts from `random.Random(seed)`).",
        "- Two weight sets: `fp32/` = the `*.safetensors` files; `fp16/` = the `*.fp16.safetensors` files loaded with "
        "`from_pretrained(..., variant=\"fp16\", torch_dtype=torch.float32)` (upcast, computed in float32). Inputs are the same in both.",
        "- All tensors are float32 (token ids, timestep, time_ids as exact float32 values). `cases.json` has every parameter, "
        "the token ids, the scheduler's timesteps/sigmas, the timings and the CLI command of each case "
        "(`$MODEL` = the model folder, `$GOLDENS` = this folder, `$OUT` = any output folder).",
        "- `*.inputs.safetensors` go straight to `npm run component -- ... --inputs`; `*.expected.safetensors` hold what it must write. "
        "`pipeline_*.latents.safetensors` go to `npm run generate -- ... --latents`, `pipeline_*.expected.safetensors` hold what "
        "`--dump` must write (`add_time_ids` [2,6], negative first); `pipeline_*.trace.safetensors` has the latents after each step, "
        "the timesteps and sigmas (debugging only).",
        "- VAE `image` is the unclamped decoder output; the pipeline `image` is `clamp(x/2+0.5, 0, 1)` as [B,H,W,3].",
        "",
    ]
    if cases.get("pipeline"):
        p = cases["pipeline"][0]
        L += [f"Pipeline run: `StableDiffusionXLPipeline`, {p['scheduler']} (the folder's scheduler config), {p['steps']} steps, guidance {p['guidance']}, "
              f"{p['width']}×{p['height']}, prompt {json.dumps(p['prompt'])}, negative prompt {json.dumps(p['negative_prompt'])}, "
              f"timesteps {p['timesteps']}, init_noise_sigma {p['init_noise_sigma']:.6g}.", ""]
    for u in cases.get("unet", []):
        if u.get("skipped"):
            L += [f"`unet_{u['size']}`: {u['skipped']}.", ""]
    L += ["## Files", "", "| file | bytes | tensor | shape | max\\|ref\\| |", "|---|---|---|---|---|"]
    for w in ("fp32", "fp16"):
        for f in sorted((out_dir / w).glob("*.safetensors")) if (out_dir / w).is_dir() else []:
            ts = load_tensors(f)
            first = True
            for name in sorted(ts):
                a = ts[name]
                L.append(f"| {f'`{w}/{f.name}`' if first else ''} | {f.stat().st_size if first else ''} | `{name}` | {list(a.shape)} | {max_abs(a):.6g} |")
                first = False
    # fp16-weights vs fp32-weights, informative
    if (out_dir / "fp32").is_dir() and (out_dir / "fp16").is_dir():
        L += ["", "## fp16 weight set vs fp32 weight set (same inputs; informative)", "", "| file | tensor | max\\|fp16 − fp32\\| | max\\|fp32\\| |", "|---|---|---|---|"]
        for f in sorted((out_dir / "fp32").glob("*.expected.safetensors")):
            g = out_dir / "fp16" / f.name
            if not g.exists():
                continue
            a, b = load_tensors(f), load_tensors(g)
            for name in sorted(a):
                if name in b and a[name].shape == b[name].shape:
                    L.append(f"| `{f.name}` | `{name}` | {max_diff(a[name], b[name]):.4g} | {max_abs(a[name]):.4g} |")
    if cases.get("float64_check"):
        L += ["", "## float64 sanity check (fp32 weights, the same module converted with `.double()`)", "",
              "| case | tensor | max\\|f32 − f64\\| | max\\|ref\\| |", "|---|---|---|---|"]
        for case, ts in sorted(cases["float64_check"].items()):
            for name, r in sorted(ts.items()):
                L.append(f"| {case} | `{name}` | {r['max_abs_diff']:.3g} | {r['max_abs_ref']:.4g} |")
    L += ["", "## Model folder", "", "| file | bytes | sha256 |", "|---|---|---|"]
    for r in cases["model_files"]:
        L.append(f"| `{r['file']}` | {r['bytes']} | {r.get('sha256', '(not hashed; pass --hash-weights)')} |")
    L += ["", "## Timings (seconds, this machine)", "", "| weight set | part | s |", "|---|---|---|"]
    for w, ts in cases.get("timings_s", {}).items():
        for k, s in (ts.items() if isinstance(ts, dict) else [("", ts)]):
            L.append(f"| {w} | {k} | {s} |")
    (out_dir / "README.md").write_text("\n".join(L) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="diffusers SDXL-family folder (model_index.json, unet/, vae/, text_encoder*/ ...)")
    ap.add_argument("--out", required=True, help="golden folder to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", default="256,1024", help="U-Net image sizes (batch 2 up to 512, batch 1 above)")
    ap.add_argument("--vae-sizes", default="256", type=lambda s: [int(x) for x in s.split(",") if x])
    ap.add_argument("--pipeline-sizes", default="256", type=lambda s: [int(x) for x in s.split(",") if x])
    ap.add_argument("--only", default="", help="comma list of text,unet,vae,pipeline (default: all)")
    ap.add_argument("--variants", default="fp32,fp16", help="weight sets: fp32,fp16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-unet-seconds", type=float, default=1800.0, help="skip a large U-Net call whose estimated time exceeds this")
    ap.add_argument("--float64-check", action="store_true", help="also rerun text/unet(<=512)/vae in float64 (fp32 weights) and report the differences")
    ap.add_argument("--hash-weights", action="store_true", help="sha256 the weight files too (configs are always hashed)")
    ap.add_argument("--zero-malloc", action="store_true", help="torch 1.x: re-run under MALLOC_PERTURB_=255 (see ensure_malloc_perturb); slow, only useful for tiny models")
    a = ap.parse_args(argv)
    if a.zero_malloc:
        ensure_malloc_perturb()
    generate(a)


if __name__ == "__main__":
    main()
