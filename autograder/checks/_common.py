"""Seeded inputs and weights shared by the chapters' checks.

Everything here is a pure function of a seed, so the observing side (with the student's
code) and the judging side (with the reference) rebuild the same values independently.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np


def rng(seed: int, stream: int = 0) -> np.random.Generator:
    """A NumPy generator for ``seed``; ``stream`` separates independent draws of one case."""
    return np.random.default_rng([seed, stream])


@functools.lru_cache(maxsize=2048)
def _standard_normal(seed: int, stream: int, shape: tuple[int, ...]) -> np.ndarray:
    draw = rng(seed, stream).standard_normal(shape)
    draw.flags.writeable = False
    return draw


def normal(seed: int, shape: tuple[int, ...], dtype: Any = np.float64, stream: int = 0,
           scale: float = 1.0) -> np.ndarray:
    """A new array; the draws are cached, since the grader rebuilds the same inputs for every
    submission of a class."""
    draw = _standard_normal(seed, stream, tuple(int(n) for n in shape))
    return (draw * scale).astype(dtype)


@functools.lru_cache(maxsize=4096)
def integer(seed: int, low: int, high: int, stream: int = 0) -> int:
    """An int in ``[low, high]``."""
    return int(rng(seed, 1000 + stream).integers(low, high + 1))


@functools.lru_cache(maxsize=4096)
def uniform(seed: int, low: float, high: float, stream: int = 0) -> float:
    return float(rng(seed, 2000 + stream).uniform(low, high))


def randn(seed: int, shape: tuple[int, ...], stream: int = 0, scale: float = 1.0):
    """A float32 torch tensor (drawn with NumPy, so no torch generator state is involved)."""
    import torch

    return torch.from_numpy(normal(seed, shape, np.float32, stream, scale))


def linear(seed: int, name: str, d_in: int, d_out: int, bias: bool, stream: int = 0,
           gain: float = 1.5) -> dict:
    """Non-degenerate weights for ``nn.Linear(d_in, d_out, bias)`` at attribute ``name``:
    ``{"<name>.weight": (d_out, d_in), "<name>.bias": (d_out,)}``, float32."""
    scale = gain / math.sqrt(d_in)
    found = {f"{name}.weight": randn(seed, (d_out, d_in), 3000 + stream, scale)}
    if bias:
        found[f"{name}.bias"] = randn(seed, (d_out,), 4000 + stream, 0.5)
    return found


def future_changed(x, t: int, seed: int):
    """``x`` (``(..., n, d)``, NumPy or torch) with every position after ``t`` replaced by
    other values: a causal model's outputs at positions ``<= t`` must not change."""
    changed = x.clone() if hasattr(x, "clone") else x.copy()
    tail = changed[..., t + 1:, :]
    noise = normal(seed, tuple(tail.shape), np.float64, stream=5000, scale=3.0)
    if hasattr(x, "clone"):
        import torch

        changed[..., t + 1:, :] = torch.from_numpy(noise).to(x.dtype)
    else:
        changed[..., t + 1:, :] = noise
    return changed


def judge_causal(verdict, field: str, changed_field: str, shape: tuple[int, ...], t: int,
                 what: str, require_change: bool = False) -> None:
    """The outputs ``field`` (on x) and ``changed_field`` (on ``future_changed(x, t)``) must
    agree at every position ``<= t`` (the second-last axis): nothing reads the future. With
    ``require_change``, the outputs after ``t`` must also change (a constant is not causal
    attention)."""
    out = verdict.array_of(field, shape, what)
    changed = verdict.array_of(changed_field, shape, f"{what} with the tokens after {t} changed")
    before = out.values.astype(np.float64)
    after = changed.values.astype(np.float64)
    gap = float(np.max(np.abs(before[..., :t + 1, :] - after[..., :t + 1, :]), initial=0.0))
    tolerance = 1e-5 * max(1.0, float(np.max(np.abs(before), initial=0.0)))
    moved = float(np.max(np.abs(before[..., t + 1:, :] - after[..., t + 1:, :]), initial=0.0))
    if require_change and moved <= tolerance:
        verdict.fail(f"{what}: changing the tokens after position {t} did not change the "
                     "outputs after it: the output must depend on the input")
    elif gap <= tolerance:
        verdict.ok(field)
        verdict.ok(changed_field)
    else:
        verdict.fail(f"{what}: changing the tokens after position {t} changed the outputs at "
                     f"positions 0..{t} by up to {gap:.3g}; position t may only depend on tokens "
                     "0..t: is the causal mask applied (True strictly above the diagonal), "
                     "before the softmax?")


# torch's own float32 CPU attention kernel is off by up to ~2e-4 (relative) on exact ties
# of scores around 1e4; the extreme cases are about overflow (NaN), not the last digits.
def no_bias(module, names: tuple[str, ...]) -> list[bool]:
    """Observe: for each projection, whether its ``bias`` is None (runs with student code)."""
    return [getattr(getattr(module, name, None), "bias", 0) is None for name in names]


def judge_no_bias(verdict, what: str, names: tuple[str, ...], field: str = "no bias") -> None:
    """Judge ``no_bias``: with qkv_bias=False no projection has a bias. A claim, judged next to
    a case's outputs: a key bias is invisible in them (softmax cancels it)."""
    verdict.equal(field, [True] * len(names),
                  f"{what}: {', '.join(f'{n}.bias' for n in names)} is None",
                  hint="with qkv_bias=False no projection has a bias: pass bias=qkv_bias to "
                       "nn.Linear")


EXTREME_TOLERANCE = 2e-3
STABLE_HINT = ("with scores around 1e4, exp(score) overflows: subtract each row's max before "
               "exp (torch.softmax does)")


def size(seed: int, spec, stream: int) -> int:
    """``spec`` is a size, or ``(low, high)``: a size drawn from the seed."""
    return spec if isinstance(spec, int) else integer(seed, spec[0], spec[1], stream)


def tokens(seed: int, spec, context: int, stream: int = 6) -> int:
    """A sequence length: ``"context"`` (exactly ``context``), ``"any"`` (1 to ``context``),
    or a size spec as in ``size``, capped at ``context``."""
    if spec == "context":
        return context
    return min(size(seed, (1, context) if spec == "any" else spec, stream), context)


def rate(seed: int, spec, stream: int = 7):
    """A dropout rate: ``spec`` itself, or ``(low, high)``: a rate drawn to two decimals."""
    return round(uniform(seed, spec[0], spec[1], stream), 2) if isinstance(spec, tuple) else spec


def forward(module, x, train_seed: int | None = None):
    """``module(x)`` without gradients: in eval mode, or in train mode right after
    ``torch.manual_seed(train_seed)`` (so dropout draws what the reference draws)."""
    import torch

    module.train(train_seed is not None)
    if train_seed is not None:
        torch.manual_seed(train_seed)
    with torch.no_grad():
        return module(x)


def meta_forward(module, shape: tuple[int, ...]) -> list:
    """``[device, *output shape]`` of a forward on the meta device after ``module.to("meta")``:
    every tensor the module uses must be a registered buffer or parameter (a plain tensor
    attribute stays on the CPU and the forward raises)."""
    import torch

    out = forward(module.to("meta"), torch.empty(shape, device="meta"))
    return [out.device.type, *(int(n) for n in out.shape)]
