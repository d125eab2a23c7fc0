#!/usr/bin/env python3
"""PyTorch side of `npm run bench:cpu` (scripts/bench-cpu.ts): one diffusers UNet2DConditionModel call on
the CPU in float32, timed.

  . /work/pydeps/env.sh && /usr/bin/python3 scripts/bench/cpu-torch.py --model DIR --inputs IN.safetensors \
      --out OUT.safetensors --json TIMINGS.json [--threads N] [--runs 3]

Loads DIR/unet with the class model_index.json names (scripts/fullsize/goldens.py `Components`, fp32
weights), sets torch.set_num_threads(N), then under torch.inference_mode() makes one warm-up call and
`--runs` timed calls with the inputs (sample, timestep, encoder_hidden_states, text_embeds, time_ids).
Writes the last call's output (`out`) and a JSON with the timings, versions and peak RSS.
Exit 3 (with a one-line reason on stderr) when torch/diffusers cannot be imported.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--inputs")
    ap.add_argument("--out")
    ap.add_argument("--ops", help="JSON {batch, reps, specs}: time single linear/conv2d shapes instead (see bench-cpu.ts opsBench)")
    ap.add_argument("--json", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()

    try:
        import torch

        sys.path.insert(0, str(HERE.parent / "fullsize"))
        import goldens  # noqa: E402  (the project's diffusers helpers: loading, safetensors I/O)
        import diffusers
    except Exception as e:  # torch / numpy / diffusers missing
        print(f"cpu-torch: cannot import torch/diffusers: {type(e).__name__}: {e}", file=sys.stderr)
        return 3

    torch.set_num_threads(a.threads)
    if a.ops:
        return ops(torch, json.loads(a.ops), Path(a.json))
    if not (a.model and a.inputs and a.out):
        ap.error("--model, --inputs and --out are required (unless --ops)")
    timings: dict = {}
    t0 = time.perf_counter()
    unet = goldens.Components(Path(a.model), None, timings)["unet"]
    load_s = time.perf_counter() - t0
    arrays = goldens.load_tensors(Path(a.inputs))
    inputs = {k: torch.from_numpy(v) for k, v in arrays.items()}

    def call():
        return goldens.run_unet(unet, inputs)["out"]

    cpu0 = time.process_time()
    with torch.inference_mode():
        t = time.perf_counter()
        out = call()
        warmup = time.perf_counter() - t
        runs, cpu = [], []
        for _ in range(a.runs):
            c, t = time.process_time(), time.perf_counter()
            out = call()
            runs.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    goldens.save_tensors(Path(a.out), {"out": out}, {"producer": "scripts/bench/cpu-torch.py"})
    res = {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "load_s": load_s,
        "warmup_s": warmup,
        "runs_s": runs,
        "cpu_s": cpu,
        "cpu_total_s": time.process_time() - cpu0,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "blas": next((w.strip(",") for w in torch.__config__.show().split() if w.startswith("BLAS_INFO=")), "?"),
        "attn_processor": type(next(iter(unet.attn_processors.values()))).__name__,
    }
    Path(a.json).write_text(json.dumps(res, indent=2))
    print(f"[cpu-torch] {a.threads} threads: warm-up {warmup:.2f} s, runs {', '.join(f'{r:.2f}' for r in runs)} s", file=sys.stderr)
    return 0


def ops(torch, spec: dict, json_path: Path) -> int:
    """Single torch.nn.functional.linear / conv2d calls at the shapes bench-cpu.ts times on ORT (best of reps)."""
    import torch.nn.functional as F

    rows = []
    with torch.inference_mode():
        for sp in spec["specs"]:
            if sp["op"] == "Gemm":
                x, w, b = torch.randn(sp["m"], sp["k"]), torch.randn(sp["n"], sp["k"]), torch.randn(sp["n"])
                fn = lambda: F.linear(x, w, b)  # noqa: E731
            else:
                c, hw = sp["c"], sp["hw"]
                x, w, b = torch.randn(spec["batch"], c, hw, hw), torch.randn(c, c, 3, 3), torch.randn(c)
                fn = lambda: F.conv2d(x, w, b, padding=1)  # noqa: E731
            fn()
            times, cpu = [], []
            for _ in range(spec["reps"]):
                c, t = time.process_time(), time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            rows.append({"name": sp["name"], "min_s": min(times), "times_s": times, "cpu_median_s": sorted(cpu)[len(cpu) // 2]})
    json_path.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
