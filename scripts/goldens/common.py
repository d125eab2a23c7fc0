"""Shared setup for the golden scripts in this folder (lpw.py, lora.py).

Reuses scripts/fullsize/goldens.py (environment quirks, safetensors writer, finiteness retry);
see scripts/goldens/README.md for the environment.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "fullsize"))
import goldens as G  # noqa: E402  (scripts/fullsize/goldens.py)

FIXTURES = {"tiny-sdxl": REPO / "test/fixtures/tiny-sdxl", "tiny-koala": REPO / "test/fixtures/tiny-koala"}
# the pipeline image size per fixture: (height, width); tiny-koala is deliberately non-square
PIPELINE_HW = {"tiny-sdxl": (64, 64), "tiny-koala": (48, 64)}
LPW_FILE = Path(os.environ.get("LPW_PIPELINE", "/work/pydeps/diffusers/examples/community/lpw_stable_diffusion_xl.py"))


def setup(threads: int = 1) -> None:
    """Deterministic, quirk-free torch 1.x CPU setup, identical for every script here:
    zero-filled mallocs (re-exec, see goldens.ensure_malloc_perturb), N threads, slow-tokenizer
    AddedToken fix (goldens.setup_hf), deterministic algorithms."""
    G.ensure_malloc_perturb()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    G.setup_hf()


def versions(extra: tuple[str, ...] = ()) -> dict:
    v = G.versions()
    for name in extra:
        try:
            mod = __import__(name)
            v[name] = getattr(mod, "__version__", "?")
        except Exception as e:  # noqa: BLE001
            v[name] = f"unavailable ({e})"
    try:
        import ftfy  # noqa: F401

        v["ftfy"] = "installed"
    except ImportError:
        v["ftfy"] = "not installed (CLIPTokenizer uses BasicTokenizer + whitespace_clean + lower)"
    return v


def f32(t) -> torch.Tensor:
    """Any tensor/list as a float32 tensor (integers become exact float32 values)."""
    if not isinstance(t, torch.Tensor):
        t = torch.tensor(t)
    return t.detach().to(torch.float32).contiguous()


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=False) + "\n")


def all_finite(tensors: dict) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors.values() if isinstance(t, torch.Tensor) and t.is_floating_point())


def rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def load_pipe(cls, fixture: Path, variant: str | None):
    """`cls.from_pretrained(fixture)` in float32 (fp16 files upcast when variant="fp16"), no watermarker, the
    fixture's Euler scheduler, every module in eval mode without gradients, no progress bars."""
    from diffusers import EulerDiscreteScheduler

    kw = {"torch_dtype": torch.float32, "add_watermarker": False}
    if variant:
        kw["variant"] = variant
    pipe = cls.from_pretrained(str(fixture), **kw)
    pipe.scheduler = EulerDiscreteScheduler.from_pretrained(str(fixture), subfolder="scheduler")
    for m in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
        assert next(m.parameters()).dtype == torch.float32
    pipe.set_progress_bar_config(disable=True)
    return pipe
