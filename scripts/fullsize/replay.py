#!/usr/bin/env python3
"""Replays a golden folder written by goldens.py through the project's CLI (`npm run component`,
`npm run generate`) and compares what it writes with the expected tensors. Needs only numpy.

  python3 scripts/fullsize/replay.py --model DIR --goldens GOLDEN_DIR --out OUT_DIR
      [--variants fp32,fp16] [--only text_encoder,text_encoder_2,unet_256,unet_1024,vae_decoder_256,pipeline_256]
      [--compare-only]

Prints max|cli - ref| and max|ref| per tensor. Runs one CLI call at a time.
"""
from __future__ import annotations

import argparse
import json
import shlex
import struct
import subprocess
import time
from pathlib import Path

import numpy as np


def load_tensors(path: Path) -> dict:
    kinds = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dtype=kinds[v["dtype"]]).reshape(v["shape"]) for k, v in header.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--goldens", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--variants", default="fp32,fp16")
    ap.add_argument("--only", default="")
    ap.add_argument("--compare-only", action="store_true", help="do not run the CLI, only compare OUT with the goldens")
    a = ap.parse_args()
    g, out = Path(a.goldens), Path(a.out)
    cases = json.loads((g / "cases.json").read_text())
    only = set(x for x in a.only.split(",") if x)
    root = Path(__file__).resolve().parents[2]
    rows = []
    for w in [x for x in a.variants.split(",") if x]:
        for name, cmd in cases["commands"].get(w, {}).items():
            if only and name not in only:
                continue
            exp = g / w / f"{name}.expected.safetensors"
            res = out / w / f"{name}.safetensors"
            if not a.compare_only:
                res.parent.mkdir(parents=True, exist_ok=True)
                line = cmd.replace("$MODEL", shlex.quote(str(Path(a.model).resolve()))).replace("$GOLDENS", shlex.quote(str(g.resolve()))).replace("$OUT", shlex.quote(str(out.resolve())))
                t0 = time.perf_counter()
                p = subprocess.run(line, shell=True, cwd=root, capture_output=True, text=True)
                dt = time.perf_counter() - t0
                if p.returncode != 0:
                    print(f"{w} {name}: CLI failed ({p.returncode}) after {dt:.1f} s\n{p.stderr[-3000:]}")
                    rows.append((w, name, "-", float("inf"), 0.0))
                    continue
                print(f"{w} {name}: CLI {dt:.1f} s", flush=True)
            if not res.exists():
                print(f"{w} {name}: no {res}")
                continue
            e, r = load_tensors(exp), load_tensors(res)
            for t in sorted(e):
                if t not in r:
                    rows.append((w, name, t, float("nan"), float(np.abs(e[t]).max())))
                    continue
                if r[t].shape != e[t].shape:
                    print(f"{w} {name} {t}: shape {r[t].shape} vs expected {e[t].shape}")
                    rows.append((w, name, t, float("inf"), float(np.abs(e[t]).max())))
                    continue
                d = float(np.abs(r[t].astype(np.float64) - e[t].astype(np.float64)).max())
                rows.append((w, name, t, d, float(np.abs(e[t]).max())))
    print(f"\n{'set':5s} {'case':18s} {'tensor':32s} {'max|cli-ref|':>13s} {'max|ref|':>10s}")
    for w, name, t, d, m in rows:
        print(f"{w:5s} {name:18s} {t:32s} {d:13.3g} {m:10.4g}")


if __name__ == "__main__":
    main()
