"""Pure-Python stand-in for the `safetensors` package (torch/numpy only; no Rust).

Only what diffusers / transformers / peft / accelerate use on CPU: `safe_open(path, framework="pt")`
with keys()/get_tensor()/get_slice()/metadata(), `SafetensorError`, and `safetensors.torch`
(load_file/save_file/load/save/load_model/save_model/storage_ptr/storage_size).
Reads with numpy.memmap; dtypes F64/F32/F16/BF16/I64/I32/I16/I8/U8/BOOL.
"""
from __future__ import annotations

import json
import struct

import numpy as np

__version__ = "0.4.5+purepython"

_NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?", "BF16": "<u2"}


class SafetensorError(Exception):
    pass


def _read_header(path):
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise SafetensorError(f"{path}: file too small")
        (n,) = struct.unpack("<Q", raw)
        header = json.loads(f.read(n))
    return header, 8 + n


def _to_torch(arr, dtype):
    import torch

    if dtype == "BF16":
        u = torch.from_numpy(np.ascontiguousarray(arr).astype(np.int32) << 16)
        return u.view(torch.float32).to(torch.bfloat16)
    return torch.from_numpy(np.array(arr, copy=True))


class _Slice:
    def __init__(self, owner, name):
        self._o, self._n = owner, name

    def get_shape(self):
        return list(self._o._header[self._n]["shape"])

    def get_dtype(self):
        return self._o._header[self._n]["dtype"]

    def __getitem__(self, idx):
        return self._o.get_tensor(self._n)[idx]


class safe_open:  # noqa: N801  (same name as the real API)
    def __init__(self, filename, framework="pt", device="cpu"):
        if framework not in ("pt", "pytorch", "torch", "np", "numpy"):
            raise SafetensorError(f"framework {framework!r} not supported by the pure-Python stand-in")
        self._path = str(filename)
        self._framework = framework
        self._device = device
        header, self._start = _read_header(self._path)
        self._meta = header.pop("__metadata__", None)
        self._header = header
        self._mm = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._mm = None
        return False

    def keys(self):
        return list(self._header.keys())

    def metadata(self):
        return self._meta

    def _array(self, name):
        info = self._header[name]
        b, e = info["data_offsets"]
        dt = np.dtype(_NP[info["dtype"]])
        if e == b:
            return np.zeros(info["shape"], dtype=dt)
        mm = np.memmap(self._path, dtype=np.uint8, mode="r", offset=self._start + b, shape=(e - b,))
        return mm.view(dt).reshape(info["shape"])

    def get_tensor(self, name):
        if name not in self._header:
            raise SafetensorError(f"tensor {name!r} not found")
        arr = self._array(name)
        if self._framework in ("np", "numpy"):
            return np.array(arr, copy=True)
        t = _to_torch(arr, self._header[name]["dtype"])
        if str(self._device) != "cpu":
            t = t.to(self._device)
        return t

    def get_slice(self, name):
        return _Slice(self, name)
