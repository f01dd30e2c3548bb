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


MODERATE_SCORE = 86.0  # 12 keys of exp(86) stay below float32's largest value, exp(88.7)


def moderate_future(changed, t: int, scores):
    """``future_changed``'s input with its changed tokens (after ``t``, three times the spread
    of x) scaled down by halves until the largest scaled score of each row that a causal
    softmax exponentiates (a query after ``t``, the keys it sees) stays within
    +-``MODERATE_SCORE``: a rare draw would otherwise overflow (or underflow) a softmax without
    max-subtraction, a bug that the cases with scores around 1e4 grade every time, and make
    the causality probe's verdict depend on the seed. ``scores(x)``: the reference's scaled
    scores on ``x`` (or bounds of their size), ``(..., n, n)``. Draws whose scores stay within
    it (the fixed seeds') are unchanged."""
    import torch

    def largest(x) -> float:
        found = scores(x)
        n = found.shape[-1]
        seen = torch.ones(n, n, dtype=torch.bool).tril()  # the keys a query sees
        return float(found.masked_fill(~seen, -torch.inf)[..., t + 1:, :].amax(-1).abs().max())

    for _ in range(20):  # the scores of a changed token shrink up to fourfold each time
        if largest(changed) < MODERATE_SCORE:
            break
        changed = changed.clone()
        changed[..., t + 1:, :] *= 0.5
    return changed


def _peek(verdict, field: str):
    """``field``'s answer as a float64 array, or None, without recording it as asked (for a
    failure's message only: never evidence)."""
    from autograder import data

    seen = verdict.seen
    if not isinstance(seen, dict) or field not in seen:
        return None
    try:
        found = data.decode(seen[field])
    except Exception:  # malformed: the judged read of the field reports it
        return None
    if not isinstance(found, data.Array) or found.values is None or \
            found.values.dtype.kind not in "fiu":
        return None
    return np.asarray(found.values, dtype=np.float64)


def causal_diagnosis(verdict, field: str, changed_field: str, expected, t: int) -> str:
    """Why the answer on ``future_changed(x, t)`` (``changed_field``) may be wrong, from the
    causal property (a message only, never a point): the outputs at positions ``<= t`` moved
    with the tokens after ``t``, or the outputs after ``t`` did not. The tolerance comes from
    the reference's values (``expected``), never from the student's."""
    before, after = _peek(verdict, field), _peek(verdict, changed_field)
    expected = np.asarray(expected, dtype=np.float64)
    if before is None or after is None or before.shape != after.shape or \
            before.shape != expected.shape:
        return ""
    tolerance = 1e-5 * max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    with np.errstate(invalid="ignore"):
        gap = float(np.nan_to_num(np.max(np.abs(before[..., :t + 1, :] - after[..., :t + 1, :]),
                                         initial=0.0), nan=np.inf))
        moved = float(np.nan_to_num(np.max(np.abs(before[..., t + 1:, :] - after[..., t + 1:, :]),
                                           initial=0.0), nan=np.inf))
    if gap > tolerance:
        return (f"changing the tokens after position {t} changed the outputs at positions "
                f"0..{t} by up to {gap:.3g}; position t may only depend on tokens 0..t: is the "
                "causal mask applied (True strictly above the diagonal), before the softmax?")
    if moved <= tolerance:
        return (f"changing the tokens after position {t} did not change the outputs after it: "
                "the output must depend on the input")
    return ""


def judge_causal(verdict, field: str, changed_field: str, expected_changed, t: int, what: str,
                 **compare) -> bool:
    """Judge the answer on ``future_changed(x, t)`` (``changed_field``) against the
    reference's output on that input (``expected_changed``; ``compare``: ``atol``, ``rtol``,
    ``dtype``, ``library`` as for ``Verdict.array``). The causal property between it and the
    answer on ``x`` (``field``, which the caller judges against the reference too) only names
    the bug in the failure's message: a property of the student's answers alone never earns
    a point (a model with memory can replay an earlier answer, and one huge value where
    nothing is compared would inflate a tolerance taken from the student's numbers)."""
    expected_changed = np.asarray(expected_changed)
    compare.setdefault("hint", "")
    diagnosis = causal_diagnosis(verdict, field, changed_field, expected_changed, t)
    if diagnosis:
        compare["hint"] = diagnosis
    return verdict.array(changed_field, expected_changed,
                         f"{what} with the tokens after position {t} changed", **compare)


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
    ``"short"`` (fewer than ``context``, where an unsliced mask must show: the draw of "any",
    with ``context`` itself moved to ``context - 1``, so a seed that drew fewer keeps its
    length), or a size spec as in ``size``, capped at ``context``."""
    if spec == "context":
        return context
    if spec == "short":
        return max(1, min(size(seed, (1, context), stream), context - 1))
    return min(size(seed, (1, context) if spec == "any" else spec, stream), context)


def rate(seed: int, spec, stream: int = 7):
    """A dropout rate: ``spec`` itself, or ``(low, high)``: a rate drawn to two decimals."""
    return round(uniform(seed, spec[0], spec[1], stream), 2) if isinstance(spec, tuple) else spec


def forward(module, x, train_seed: int | None = None):
    """``module(x)`` without gradients: in eval mode, or in train mode right after
    ``torch.manual_seed(train_seed)`` (so dropout draws what the reference draws)."""
    import torch

    from autograder.checks import seed_torch

    module.train(train_seed is not None)
    if train_seed is not None:
        seed_torch(train_seed)
    with torch.no_grad():
        return module(x)


def meta_forward(module, shape: tuple[int, ...]) -> list:
    """``[device, *output shape]`` of a forward on the meta device after ``module.to("meta")``:
    every tensor the module uses must be a registered buffer or parameter (a plain tensor
    attribute stays on the CPU and the forward raises)."""
    import torch

    out = forward(module.to("meta"), torch.empty(shape, device="meta"))
    return [out.device.type, *(int(n) for n in out.shape)]


# --- structure through behaviour: the mask buffer ------------------------------------------

MASK_FOLLOWS_HINT = ("register the mask with self.register_buffer('mask', ...) and slice that "
                     "buffer in forward (self.mask.bool()[:n, :n]): a plain tensor attribute, or "
                     "a mask built in forward, does not move with .to() and is not the "
                     "module's state")


def window_hidden(n: int, window: int) -> np.ndarray:
    """A bool ``(n, n)`` mask, True where hidden: the future, and the keys more than
    ``window`` positions back (every query still sees itself)."""
    i, j = np.indices((n, n))
    return (j > i) | (j < i - window)


def mask_window(seed: int, num_tokens: int, stream: int = 50) -> int:
    """How far back the swapped mask lets a query see: below ``num_tokens - 1``, so that the
    swap changes the output of a forward that reads its buffer, and (from 3 tokens) at least
    one key back, so that some query still weighs several keys (a wrong scale or softmax
    axis shows there, whatever the seed)."""
    return integer(seed, 1 if num_tokens >= 3 else 0, max(0, num_tokens - 2), stream)


def swapped_mask_forward(module, x, window: int):
    """Observe (with student code): ``module(x)`` in eval mode with every registered buffer
    named ``mask`` (found with the unbound ``nn.Module.named_buffers``, not the module's own,
    overridable method) swapped, in its owner's ``_buffers``, for ``window_hidden`` of the
    same shape, dtype and polarity, then put back. A forward that slices its registered
    buffer answers the reference under that mask; one that uses a plain tensor attribute (or
    builds its mask in forward) answers plain causal attention: a behaviour the module can
    tell apart only by reading its buffer, which is the contract."""
    import torch
    from torch import nn

    names = [name for name, _ in nn.Module.named_buffers(module)
             if name.rpartition(".")[2] == "mask"]
    if not names:
        raise LookupError("no buffer named 'mask' is registered (nn.Module.named_buffers "
                          "lists none): use self.register_buffer('mask', ...)")
    swapped = []
    try:
        for name in names:
            path, _, leaf = name.rpartition(".")
            owner = nn.Module.get_submodule(module, path) if path else module
            buffers = object.__getattribute__(owner, "_buffers")
            old = buffers[leaf]
            rows, cols = old.shape[-2:]
            hidden = torch.from_numpy(window_hidden(max(rows, cols), window)[:rows, :cols])
            causal = torch.ones(rows, cols, dtype=torch.bool).triu(1)
            pattern = old.detach().to("cpu").bool()
            if bool((pattern == causal).all()):
                new = hidden
            elif bool((pattern == ~causal).all()):  # stored as "visible"
                new = ~hidden
            else:
                raise ValueError(f"the buffer {name} does not hold a causal mask (True or 1 "
                                 "strictly above the diagonal)")
            swapped.append((buffers, leaf, old))
            buffers[leaf] = new.expand(old.shape).to(dtype=old.dtype, device=old.device).clone()
        return forward(module, x)
    finally:
        for buffers, leaf, old in reversed(swapped):
            buffers[leaf] = old


# --- the attention modules of chapters 05, 06 and 08 ------------------------------------------
# The attention modules of chapters 05, 06 and 08 (MultiHeadAttention, RoPEMultiHeadAttention,
# GroupedQueryAttention) share their projections' names, the grader's weights for them, and
# the way a call is shown in messages.

ATTENTION_LAYERS = ("W_query", "W_key", "W_value", "out_proj")


def attention_weights(seed: int, d_in: int, d_out: int, qkv_bias: bool | None,
                      kv_out: int | None = None) -> dict:
    """The grader's weights for an attention module, by the contract's attribute paths:
    ``W_query`` ``nn.Linear(d_in, d_out)``, ``W_key`` and ``W_value`` ``nn.Linear(d_in,
    kv_out)`` (``kv_out`` is ``d_out`` unless given: ``num_kv_heads * head_dim`` for grouped
    queries), each with a bias when ``qkv_bias``, and ``out_proj`` ``nn.Linear(d_out, d_out)``
    always with one. The projections are ``linear``'s streams 0 to 3, in that order."""
    kv_out = d_out if kv_out is None else kv_out
    sizes = {"W_query": (d_in, d_out), "W_key": (d_in, kv_out), "W_value": (d_in, kv_out),
             "out_proj": (d_out, d_out)}
    weights: dict = {}
    for stream, name in enumerate(ATTENTION_LAYERS):
        weights.update(linear(seed, name, *sizes[name], name == "out_proj" or bool(qkv_bias),
                              stream=stream))
    return weights


def rope_base(seed: int, stream: int = 7) -> float:
    """A RoPE ``theta_base`` drawn log-uniformly between about 30 and 10**6 (one decimal),
    never within a factor 1.5 of the default 10000: such a draw would hide code that ignores
    theta_base, so it is moved four times further away (a seed that drew elsewhere keeps
    its base)."""
    base = round(10 ** uniform(seed, 1.5, 6.0, stream), 1)
    if 10000.0 / 1.5 < base < 10000.0 * 1.5:
        base = round(base / 4 if base < 10000.0 else base * 4, 1)
    return base


def keywords(**options: Any) -> dict:
    """A call's keyword arguments without those left to their default (given as None)."""
    return {name: value for name, value in options.items() if value is not None}


def call_text(name: str, args: tuple = (), kwargs: dict | None = None) -> str:
    """A call as messages show it: ``name(6, 12, qkv_bias=True)``."""
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in (kwargs or {}).items()]
    return f"{name}({', '.join(shown)})"


# --- shared by the attention chapters (02 to 07) ------------------------------------------

Size = int | tuple  # a fixed size, or (low, high) drawn from the seed

QKV = ATTENTION_LAYERS[:3]


def exact_integers(seed: int, shape: tuple[int, ...], stream: int, scale: float = 1.0):
    """Integers in [-3, 3] times ``scale`` as a float32 tensor: sums of their products stay
    exact, so scores around 1e4 still have exact expected weights."""
    import torch

    values = rng(seed, 6000 + stream).integers(-3, 4, shape) * scale
    return torch.from_numpy(values.astype(np.float32))


def qkv_weights(seed: int, d_in: int, d_out: int, bias: bool, extreme: bool = False) -> dict:
    """The grader's weights for ``W_query``, ``W_key``, ``W_value`` (``linear``'s streams 0 to
    2), each ``nn.Linear(d_in, d_out, bias)``. ``extreme``: integer ``W_query`` (times 100)
    and ``W_key`` (and biases), so that with integer inputs and ``d_out = 4`` the scaled
    scores are exact and around 1e4: a softmax without max-subtraction overflows."""
    weights: dict = {}
    for stream, name in enumerate(QKV):
        weights.update(linear(seed, name, d_in, d_out, bias, stream=stream))
    if extreme:
        weights["W_query.weight"] = exact_integers(seed, (d_out, d_in), 10, 100.0)
        weights["W_key.weight"] = exact_integers(seed, (d_out, d_in), 11)
        if bias:
            weights["W_query.bias"] = exact_integers(seed, (d_out,), 12, 100.0)
            weights["W_key.bias"] = exact_integers(seed, (d_out,), 13)
    return weights


def token_input(seed: int, shape: tuple[int, ...], index: int, kind: str):
    """The ``index``-th input of a case whose weights are of ``kind``: normal values
    (``randn``'s stream ``30 + index``), integers for "extreme" scores, float64 for a
    "float64" module."""
    import torch

    if kind == "extreme":
        return exact_integers(seed, shape, 30 + index)
    x = randn(seed, shape, 30 + index)
    return x.to(torch.float64) if kind == "float64" else x


def expect(verdict, field: str, expected, what: str, *, raised: str = "", nonfinite: str = "",
           shape: str = "", **compare) -> bool:
    """``verdict.array`` with a likely cause when the call raised (``raised``), gave another
    shape (``shape``) or gave NaN/inf (``nonfinite``)."""
    from autograder import data

    found = verdict.raw(field, what)
    if raised and type(found) is data.Raised and found.type != "NotImplementedError":
        verdict.fail(f"{what} raised {found.type}: {found.message}. Likely cause: {raised}")
        return False
    if shape and isinstance(found, data.Array) and found.shape != expected.shape:
        verdict.fail(f"{what} has shape {found.shape}; expected {expected.shape}: {shape}")
        return False
    if nonfinite and isinstance(found, data.Array) and found.values is not None and \
            found.shape == expected.shape and found.values.dtype.kind == "f" and \
            not np.isfinite(found.values).all():
        verdict.fail(f"{what} contains NaN or inf: {nonfinite}")
        return False
    return verdict.array(field, expected, what, **compare)


def probe_module(module, x, probes: tuple, *, window: int = 0, future=None,
                 train_seed: int | None = None, long=None, attributes: tuple = ()) -> dict:
    """Observe (with student code) the ``probes`` of one built module, each answer recorded:
    "out" (or "shape") ``module(x)``; "meta": first the forward with the grader's mask of
    ``window`` swapped into its ``mask`` buffers ("swapped"); "future": ``module(future)``;
    "train": train mode under ``torch.manual_seed(train_seed)``; "long": ``module(long)``
    (too many tokens); each of ``attributes`` that ``probes`` names; "params": the parameter
    count (unbound ``nn.Module.parameters``); then the two that move the module, "f64"
    (``.to(torch.float64)``) and "meta" (``meta_forward``)."""
    import torch

    from autograder.checks import Student

    found = {}
    if "out" in probes or "shape" in probes:
        found["out"] = Student.attempt(lambda: forward(module, x))
    if "meta" in probes:  # the mask through behaviour: before .to() moves the module
        found["swapped"] = Student.attempt(lambda: swapped_mask_forward(module, x, window))
    if "future" in probes and future is not None:
        found["future"] = Student.attempt(lambda: forward(module, future))
    if "train" in probes:
        found["train"] = Student.attempt(lambda: forward(module, x, train_seed=train_seed))
    if "long" in probes:
        found["long"] = Student.attempt(lambda: forward(module, long))
    for name in attributes:
        if name in probes:
            found[name] = Student.attempt(lambda name=name: getattr(module, name))
    if "params" in probes:
        found["params"] = Student.attempt(lambda: sum(
            p.numel() for p in torch.nn.Module.parameters(module)))
    if "f64" in probes:  # these two move the module: last
        found["f64"] = Student.attempt(lambda: forward(module.to(torch.float64), x.double()))
    if "meta" in probes:
        found["meta"] = Student.attempt(lambda: meta_forward(module, tuple(x.shape)))
    return found


def judge_float64(verdict, expected, call: str, x_shape: tuple, input_scale: float,
                  **hints) -> bool:
    """Judge ``probe_module``'s "f64" against the float64 reference ``expected``, to a
    tolerance from the reference's largest value; ``hints``: ``hint``, ``raised``,
    ``nonfinite``, ``shape`` as for ``expect``."""
    scale = max(1.0, float(np.max(np.abs(expected))))
    extreme = f", inputs scaled by {input_scale:g}" if input_scale != 1.0 else ""
    return expect(verdict, "f64", expected, f"{call}.to(torch.float64)(x) for float64 x of "
                  f"shape {x_shape}{extreme}", atol=1e-10 * scale, rtol=1e-9, dtype="float64",
                  library="torch", **hints)


def judge_mask_buffer(verdict, swapped, call: str, x_shape: tuple, out_shape: tuple,
                      window: int, meta_hint: str,
                      buffers: str = "its registered 'mask' buffer", atol: float = 1e-5) -> None:
    """Judge ``probe_module``'s "meta" probe: the output with the grader's mask of ``window``
    swapped into the ``buffers`` against the reference under that mask (``swapped``), then
    (a claim) a forward on the meta device after ``.to('meta')``."""
    from autograder import data

    expect(verdict, "swapped", swapped, f"{call}(x) for x of shape {x_shape} with the grader's "
           f"mask (each query sees itself and the {window} keys before it) swapped into "
           f"{buffers}", atol=atol, rtol=1e-4, dtype="float32", library="torch",
           hint=MASK_FOLLOWS_HINT)
    found = verdict.raw("meta", call)
    meta = f"{call}.to('meta') then a forward on a meta tensor"
    if type(found) is data.Raised and found.type != "NotImplementedError":
        verdict.fail(f"{meta} raised {found.type}: {found.message}. Likely cause: {meta_hint}")
    else:
        verdict.equal("meta", ["meta", *out_shape], f"{meta}: [device, *shape]", hint=meta_hint)
