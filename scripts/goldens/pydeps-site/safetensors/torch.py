"""safetensors.torch for the pure-Python stand-in (see safetensors/__init__.py)."""
from __future__ import annotations

import json
import os
import struct
import tempfile

import numpy as np
import torch

from . import safe_open

_DT = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
       torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def storage_ptr(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage().data_ptr()
    except Exception:  # noqa: BLE001
        try:
            return tensor.storage().data_ptr()
        except NotImplementedError:
            return 0


def storage_size(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage().nbytes()
    except AttributeError:
        try:
            return tensor.storage().size() * tensor.element_size()
        except NotImplementedError:
            return tensor.nelement() * tensor.element_size()


def _bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return (t.view(torch.int16).numpy().astype("<i2")).tobytes()
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def save(tensors: dict, metadata: dict | None = None) -> bytes:
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, off = [], 0
    # same order as the real library: by dtype size (descending), then name
    for name in sorted(tensors, key=lambda k: (-tensors[k].element_size(), k)):
        t = tensors[name]
        b = _bytes(t)
        header[name] = {"dtype": _DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    return struct.pack("<Q", len(hb)) + hb + b"".join(blobs)


def save_file(tensors: dict, filename, metadata: dict | None = None) -> None:
    with open(filename, "wb") as f:
        f.write(save(tensors, metadata))


def load_file(filename, device="cpu") -> dict:
    out = {}
    with safe_open(filename, framework="pt", device=str(device)) as f:
        for k in f.keys():
            out[k] = f.get_tensor(k)
    return out


def load(data: bytes) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as tmp:
        tmp.write(data)
        name = tmp.name
    try:
        return load_file(name)
    finally:
        os.unlink(name)


def save_model(model: torch.nn.Module, filename, metadata: dict | None = None, force_contiguous: bool = False) -> None:
    sd, seen = {}, set()
    for k, v in model.state_dict().items():
        key = (storage_ptr(v), v.data_ptr(), tuple(v.shape))
        if key in seen:
            continue
        seen.add(key)
        sd[k] = v.contiguous() if force_contiguous else v
    save_file(sd, filename, metadata)


def load_model(model: torch.nn.Module, filename, strict: bool = True, device="cpu"):
    sd = load_file(filename, device=device)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if strict and (missing or unexpected):
        raise RuntimeError(f"missing {missing}, unexpected {unexpected}")
    return missing, unexpected
