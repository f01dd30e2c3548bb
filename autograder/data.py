"""Plain data for observations: what student code returned or raised, as JSON.

An observation crosses a process boundary (the grader judges it in a process that
never ran student code), so it holds only JSON values. Arrays and tensors are copied
to base ``numpy.ndarray`` first: a subclass that overrides comparison or conversion
cannot survive the trip.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

MAX_ELEMENTS = 300_000        # values recorded per array (2.4 MB as float64)
MAX_ITEMS = 10_000            # entries of one list, tuple or dict
STORAGE = {"bool": 1, "int64": 8, "float64": 8}


def encode(value: Any) -> Any:
    """Turn a returned value into JSON data that ``decode`` restores."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return {"kind": "int", "value": int(value)}
    if isinstance(value, (float, np.floating)):
        return {"kind": "float", "value": repr(float(value))}
    if isinstance(value, np.bool_):
        return bool(value)
    if _is_tensor(value):
        return _encode_tensor(value)
    if isinstance(value, np.ndarray):
        return _encode_array(np.array(value, copy=True, subok=False), "numpy")
    if isinstance(value, (list, tuple)):
        return {"kind": type(value).__name__ if type(value) in (list, tuple) else "sequence",
                "items": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"kind": "dict", "items": {str(k): encode(v) for k, v in value.items()}}
    return {"kind": "object", "type": type(value).__name__, "repr": _short_repr(value)}


class Malformed(ValueError):
    """Observed data that ``encode`` cannot have written: the student process sent it."""


def decode(data: Any, depth: int = 0) -> Any:
    """Inverse of ``encode`` (arrays come back as ``Array``); ``Malformed`` for anything else.

    The data came from a process that ran student code, so nothing is assumed: every kind,
    key, type, size and nesting level is checked before it is used.
    """
    if depth > 8:
        raise Malformed("nested too deeply")
    if data is None or isinstance(data, (bool, str)):
        return data
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise Malformed(f"a {type(data).__name__} where an encoded value was due")
    kind = data["kind"]
    if kind == "int":
        return _typed(data, "value", int)
    if kind == "float":
        try:
            return float(_typed(data, "value", str))
        except ValueError:
            raise Malformed("a float that does not parse") from None
    if kind == "array":
        return Array.from_data(data)
    if kind in ("list", "tuple", "sequence"):
        items = _typed(data, "items", list)
        if len(items) > MAX_ITEMS:
            raise Malformed(f"a {kind} of {len(items)} items")
        items = [decode(v, depth + 1) for v in items]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        items = _typed(data, "items", dict)
        if len(items) > MAX_ITEMS:
            raise Malformed(f"a dict of {len(items)} items")
        return {str(k): decode(v, depth + 1) for k, v in items.items()}
    if kind == "error":
        return Raised(_typed(data, "type", str)[:200], _typed(data, "message", str)[:2000])
    if kind == "object":
        return Opaque(_typed(data, "type", str)[:200], _typed(data, "repr", str)[:2000])
    raise Malformed(f"an unknown kind {kind[:40]!r}")


def _typed(data: dict, key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Malformed(f"'{key}' is not a {kind.__name__}")
    return value


def error(exc: BaseException) -> dict:
    """The plain-data record of an exception raised by student code."""
    return {"kind": "error", "type": type(exc).__name__, "message": _short_text(str(exc))}


def roundtrip(data: Any) -> Any:
    """Serialise and parse, exactly as the cross-process path does."""
    return json.loads(json.dumps(data))


class Array:
    """A decoded array: float64/int64/bool ``values`` plus the dtype and library it had."""

    def __init__(self, values: np.ndarray | None, shape: tuple[int, ...], dtype: str,
                 library: str, device: str = "cpu"):
        self.values = values  # None when the array was too large to record
        self.shape = tuple(shape)
        self.dtype = dtype
        self.library = library
        self.device = device

    @classmethod
    def from_data(cls, data: dict) -> Array:
        shape = _typed(data, "shape", list)
        if len(shape) > 8 or not all(isinstance(n, int) and not isinstance(n, bool)
                                     and 0 <= n < 2**40 for n in shape):
            raise Malformed("an array shape that is not a short list of sizes")
        shape = tuple(shape)
        library = _typed(data, "library", str)
        if library not in ("numpy", "torch"):
            raise Malformed(f"an array from library {library[:40]!r}")
        dtype = _typed(data, "dtype", str)[:40]
        device = data.get("device", "cpu")
        device = device[:40] if isinstance(device, str) else "?"
        values = None
        if data.get("data") is not None:
            storage = _typed(data, "storage", str)
            if storage not in STORAGE:
                raise Malformed(f"array storage {storage[:40]!r}")
            count = int(np.prod(shape, dtype=np.int64))
            text = _typed(data, "data", str)
            if count > MAX_ELEMENTS or len(text) != 4 * -(-count * STORAGE[storage] // 3):
                raise Malformed("array data whose length does not match its shape")
            try:
                raw = base64.b64decode(text, validate=True)
            except ValueError:
                raise Malformed("array data that is not base64") from None
            if len(raw) != count * STORAGE[storage]:
                raise Malformed("array data whose length does not match its shape")
            values = np.frombuffer(raw, dtype=storage).reshape(shape).copy()
        return cls(values, shape, dtype, library, device)

    def __repr__(self) -> str:
        return f"Array({self.library}, {self.dtype}, shape={self.shape})"


class Raised:
    """Student code raised ``type``: ``message``."""

    def __init__(self, type_: str, message: str):
        self.type = type_
        self.message = message

    def __repr__(self) -> str:
        return f"{self.type}: {self.message}"


class Opaque:
    """A value of a kind the checks do not compare (kept as its type name and a short repr)."""

    def __init__(self, type_: str, text: str):
        self.type = type_
        self.repr = text

    def __repr__(self) -> str:
        return f"<{self.type} {self.repr}>"


def _is_tensor(value: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(value, torch.Tensor)


def _torch():
    import sys

    return sys.modules.get("torch")


def _encode_tensor(tensor) -> dict:
    torch = _torch()
    base = tensor.detach().as_subclass(torch.Tensor)
    dtype = str(base.dtype).replace("torch.", "")
    device = str(base.device)
    base = base.cpu()
    if base.dtype == torch.bool:
        values = base.numpy()
    elif base.is_floating_point() or base.is_complex():
        values = base.to(torch.float64).numpy()
    else:
        values = base.to(torch.int64).numpy()
    return _encode_array(values, "torch", dtype=dtype, device=device)


def _encode_array(values: np.ndarray, library: str, dtype: str | None = None,
                  device: str = "cpu") -> dict:
    dtype = dtype or str(values.dtype)
    if values.size > MAX_ELEMENTS:  # keep the shape, drop the values
        return {"kind": "array", "library": library, "dtype": dtype, "device": device,
                "shape": list(values.shape), "storage": None, "data": None}
    if values.dtype == np.bool_:
        storage = "bool"
    elif np.issubdtype(values.dtype, np.integer):
        storage = "int64"
    elif np.issubdtype(values.dtype, np.floating):
        storage = "float64"
    else:
        return {"kind": "object", "type": f"{library} array of {dtype}",
                "repr": _short_repr(values)}
    data = np.ascontiguousarray(values, dtype=storage)
    return {"kind": "array", "library": library, "dtype": dtype, "device": device,
            "shape": list(data.shape), "storage": storage,
            "data": base64.b64encode(data.tobytes()).decode("ascii")}


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a hostile __repr__ must not break observation
        text = f"<repr raised {type(exc).__name__}>"
    return _short_text(text)


def _short_text(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
