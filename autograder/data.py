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

MAX_ELEMENTS = 5_000_000


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


def decode(data: Any) -> Any:
    """Inverse of ``encode`` (arrays come back as ``Array``)."""
    if data is None or isinstance(data, (bool, str)):
        return data
    kind = data["kind"]
    if kind == "int":
        return data["value"]
    if kind == "float":
        return float(data["value"])
    if kind == "array":
        return Array.from_data(data)
    if kind in ("list", "tuple", "sequence"):
        items = [decode(v) for v in data["items"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {k: decode(v) for k, v in data["items"].items()}
    if kind == "error":
        return Raised(data["type"], data["message"])
    return Opaque(data["type"], data["repr"])


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
        shape = tuple(int(n) for n in data["shape"])
        values = None
        if data["data"] is not None:
            raw = base64.b64decode(data["data"])
            values = np.frombuffer(raw, dtype=data["storage"]).reshape(shape).copy()
        return cls(values, shape, data["dtype"], data["library"], data.get("device", "cpu"))

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
