"""Hidden checks for 02-self-attention (PyTorch).

Every input, and every weight the grader loads into the student's ``SelfAttention``, is built
by the check's ``inputs`` from the case and its seed (``_common``), once on each side; the
judge compares the answers with ``autograder.reference.self_attention``. The "extreme" cases
use integer inputs (exact in float32) whose scores are around 1e3..1e4 with gaps of at least
50, so the expected weights are exact while a softmax without max-subtraction overflows to
NaN.

Points and claims (spec section 6): every point rests on answers compared with the
reference. The one claim, the visible case of ``self_attention_basics``: the types of
``W_query``, ``W_key``, ``W_value`` and that none has a bias when ``qkv_bias`` is left to its
default (a key bias is invisible in every output: softmax cancels it), judged beside that
case's outputs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from autograder import data
from autograder.checks import Case, Check, Student, Verdict
from autograder.checks._common import (
    EXTREME_TOLERANCE,
    QKV,
    STABLE_HINT,
    Size,
    _peek,
    exact_integers,
    judge_no_bias,
    no_bias,
    qkv_weights,
    randn,
    rng,
    size,
    token_input,
)

ASSIGNMENT = "02-self-attention"

SDPA = "scaled_dot_product_attention"
SA = "SelfAttention"

CONTEXT_HINT = ("context is weights @ values with weights = softmax(queries @ keys^T / "
                "sqrt(d_k)) over the last dim")
WEIGHTS_HINT = "weights = softmax(queries @ keys^T / sqrt(d_k), dim=-1)"


# --- scaled_dot_product_attention ---------------------------------------------------------

@dataclass(frozen=True)
class Attention(Case):
    """One call's q, k, v and mask. Sizes are ints or ``(low, high)`` ranges drawn from the
    seed; ``n_k``/``d_v`` None repeat ``n_q``/``d_k`` (a ``d_v`` range of its own is made to
    differ from ``d_k``, so that a sqrt(d_v) scale shows). ``kind``: "seeded" (normal q and k
    times ``scale``), "extreme" (integer q times 1000 and k: scores around 1e4; ``d_k`` one of
    4, 16, 64), or the visible cell's two calls, "visible" and "visible mask" (fixed tensors).
    ``mask``: None, "causal", or its shape, each dim "b" (the first lead dim), "q", "k" or an
    int; every query keeps at least one visible key."""

    kind: str = "seeded"
    lead: tuple[Size, ...] = ()
    n_q: Size = 1
    n_k: Size | None = None
    d_k: Size | None = None
    d_v: Size | None = None
    scale: float = 1.0
    mask: str | tuple | None = None


@dataclass(frozen=True)
class AttentionCall:
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    mask: torch.Tensor | None

    @property
    def what(self) -> str:
        mask = ")" if self.mask is None else f", mask of shape {tuple(self.mask.shape)})"
        return (f"{SDPA}(q, k, v{mask} with q {tuple(self.q.shape)}, k {tuple(self.k.shape)}, "
                f"v {tuple(self.v.shape)}")


def _mask(spec, seed: int, lead: tuple, n_q: int, n_k: int) -> torch.Tensor | None:
    """A bool mask (True = hidden) in which every query keeps at least one visible key."""
    if spec is None:
        return None
    if spec == "causal":
        return torch.triu(torch.ones(n_q, n_k, dtype=torch.bool), diagonal=1)
    dims = {"b": lead[0] if lead else 1, "q": n_q, "k": n_k}
    hidden = rng(seed, 7).random(tuple(dims.get(d, d) for d in spec)) < 0.5
    hidden[..., 0] = False  # the first key stays visible to every query
    return torch.from_numpy(hidden)


def _attention(case: Attention, seed: int) -> AttentionCall:
    if case.kind == "visible":  # the visible cell's first call
        return AttentionCall(torch.zeros(2, 3, 4),
                             torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(0)),
                             torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(2, 5, 6), None)
    if case.kind == "visible mask":  # the visible cell's masked call
        return AttentionCall(torch.ones(1, 2, 3), torch.ones(1, 2, 3), torch.ones(1, 2, 1),
                             torch.tensor([[False, True], [False, False]]))
    lead = tuple(size(seed, s, 10 + i) for i, s in enumerate(case.lead))
    n_q = size(seed, case.n_q, 1)
    n_k = n_q if case.n_k is None else size(seed, case.n_k, 2)
    d_k = (4, 16, 64)[size(seed, (0, 2), 3)] if case.kind == "extreme" else size(seed, case.d_k, 3)
    d_v = d_k if case.d_v is None else size(seed, case.d_v, 4)
    if case.d_v is not None and d_v == d_k:
        d_v += 1
    if case.kind == "extreme":
        q = exact_integers(seed, (*lead, n_q, d_k), 0, 1000.0)
        k = exact_integers(seed, (*lead, n_k, d_k), 1)
    else:
        q = randn(seed, (*lead, n_q, d_k), 0, case.scale)
        k = randn(seed, (*lead, n_k, d_k), 1, case.scale)
    return AttentionCall(q, k, randn(seed, (*lead, n_k, d_v), 2),
                         _mask(case.mask, seed, lead, n_q, n_k))


def _observe_sdpa(student: Student, case: Attention, call: AttentionCall) -> dict:
    args = (call.q, call.k, call.v) + (() if call.mask is None else (call.mask,))  # None: default
    try:
        result = student.get(SDPA)(*args)
    except Exception as exc:  # student code may raise anything
        return {"context": data.error(exc), "weights": data.error(exc)}
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        problem = TypeError(f"returned {type(result).__name__}; expected a pair "
                            "(context, weights)")
        return {"context": data.error(problem), "weights": data.error(problem)}
    return {"context": data.encode(result[0]), "weights": data.encode(result[1])}


def _judge_sdpa(verdict: Verdict, case: Attention, call: AttentionCall) -> None:
    from autograder.reference.self_attention import attention_bugs, reference_attention

    q, k, v, mask, what = call.q, call.k, call.v, call.mask, call.what
    context, weights = reference_attention(q, k, v, mask)
    bugs = functools.cache(lambda: attention_bugs(q, k, v, mask))
    extreme = case.kind == "extreme"
    tolerance = EXTREME_TOLERANCE if extreme else 2e-5
    verdict.array("context", context, f"the context of {what}", atol=tolerance, rtol=1e-4,
                  dtype="float32", library="torch",
                  variants=lambda: {label: pair[0] for label, pair in bugs().items()},
                  hint=STABLE_HINT if extreme else CONTEXT_HINT)
    if verdict.array("weights", weights, f"the weights of {what}", atol=tolerance, rtol=1e-4,
                     dtype="float32", library="torch",
                     variants=lambda: {label: pair[1] for label, pair in bugs().items()},
                     hint=STABLE_HINT if extreme else WEIGHTS_HINT):
        return
    # the failure is recorded: name what the weights break (a message, never evidence)
    found = _peek(verdict, "weights")
    if found is None or found.shape != weights.shape or not np.isfinite(found).all():
        return
    sums = found.sum(axis=-1)
    if not np.all(np.abs(sums - 1) < 1e-4):
        verdict.fail(f"the rows of the weights of {what} should sum to 1 (a softmax over the "
                     f"keys, dim=-1); found row sums from {sums.min():.4g} to "
                     f"{sums.max():.4g}")
    if mask is not None:
        hidden = np.broadcast_to(mask.numpy(), weights.shape)
        leaked = float(np.abs(found[hidden]).max()) if hidden.any() else 0.0
        if leaked > 1e-6:
            verdict.fail(f"with a mask of shape {tuple(mask.shape)}, hidden keys (mask True) get "
                         f"weight up to {leaked:.3g}; expected exactly 0: fill the hidden scores "
                         "with -inf before the softmax (True means hidden)")


attention_check = partial(Check, exercise=SDPA, inputs=_attention, observe=_observe_sdpa,
                          judge=_judge_sdpa)

sdpa_basics = attention_check("sdpa_basics", cases=[  # the visible calls, then seeded ones
    Attention("the visible call: zero queries, (2, 5, 4) keys", "visible"),
    Attention("the visible masked call: [[F, T], [F, F]] on equal scores", "visible mask"),
    Attention("q, k, v of sizes drawn from the seed", lead=((1, 3),), n_q=(1, 6), n_k=(1, 7),
              d_k=(1, 8), d_v=(1, 8)),
    Attention("a seeded mask on seeded inputs", lead=((1, 3),), n_q=(1, 5), n_k=(2, 6),
              d_k=(2, 8), d_v=(1, 6), mask=("b", "q", "k")),
    # what the visible cell also asserts: d_v != d_k, 4-d inputs, scores around 1e4
    Attention("extra leading dims, d_v > d_k", lead=((1, 3), (2, 4)), n_q=(2, 5), n_k=(3, 7),
              d_k=(2, 5), d_v=(6, 9)),
    Attention("extreme scores (around 1e4)", "extreme", lead=((1, 3),), n_q=(2, 6),
              n_k=(2, 7), d_v=(1, 5)),
])

sdpa_values = attention_check("sdpa_values", cases=[
    Attention("a batch, n_q = n_k", lead=((2, 4),), n_q=(3, 8), d_k=(4, 12)),
    Attention("n_q != n_k, d_v != d_k", lead=((1, 4),), n_q=(2, 6), n_k=(5, 9), d_k=(3, 8),
              d_v=(1, 4)),
    Attention("extra leading dims, d_v > d_k", lead=((1, 3), (2, 4)), n_q=(2, 5), n_k=(3, 7),
              d_k=(2, 5), d_v=(6, 9)),
    Attention("no batch dim", n_q=(2, 7), n_k=(2, 7), d_k=(8, 20)),
    Attention("one token, batch of one", lead=(1,), n_q=1, n_k=1, d_k=(2, 6)),
    Attention("large scores: d_k = 64, inputs scaled by 2", lead=(1,), n_q=(4, 8), d_k=64,
              d_v=(1, 3), scale=2.0),
    Attention("odd sizes: d_k = 1", lead=((1, 2),), n_q=(2, 4), n_k=(1, 3), d_k=1, d_v=(5, 8)),
    Attention("extreme scores (around 1e4)", "extreme", lead=((1, 3),), n_q=(2, 6),
              n_k=(2, 7), d_v=(1, 5)),
])

sdpa_mask = attention_check("sdpa_mask", cases=[
    Attention("a causal (n, n) mask on a batch", lead=((2, 3),), n_q=(3, 7), d_k=(4, 10),
              mask="causal"),
    Attention("a random (b, n_q, n_k) mask", lead=((2, 4),), n_q=(2, 6), n_k=(3, 8),
              d_k=(2, 6), d_v=(1, 4), mask=("b", "q", "k")),
    Attention("a padding mask of shape (1, n_k) broadcast over the queries", lead=((1, 3),),
              n_q=(2, 5), n_k=(3, 8), d_k=(2, 6), mask=(1, "k")),
    Attention("a (b, 1, n, n) mask on (b, h, n, d) inputs", lead=((1, 3), (2, 4)), n_q=(3, 6),
              d_k=(4, 9), mask=("b", 1, "q", "k")),
    Attention("a causal (1, 1) mask on one token", lead=(1,), n_q=1, d_k=(2, 5), mask="causal"),
    Attention("a random mask on extreme scores (around 1e4)", "extreme", lead=((1, 3),),
              n_q=(2, 6), n_k=(3, 7), d_v=(1, 4), mask=("b", "q", "k")),
])


# --- SelfAttention --------------------------------------------------------------------------

@dataclass(frozen=True)
class Module(Case):
    """A ``SelfAttention(d_in, d_out, qkv_bias)`` holding the grader's weights, called on an
    input of each ``(batch, num_tokens)`` of ``sizes``. Sizes are ints or ``(low, high)``
    ranges drawn from the seed; ``bias`` None leaves ``qkv_bias`` to its default. ``kind``:
    "seeded" (the grader's weights), "zero query" (``W_query = 0``: uniform weights),
    "extreme" (integer weights and inputs, ``d_out = 4``: scores around 1e4), "float64"
    (``module.to(torch.float64)`` on float64 inputs). ``claims``: also the visible cell's
    structure asserts."""

    d_in: Size
    d_out: Size
    sizes: tuple[tuple[Size, Size], ...]
    kind: str = "seeded"
    bias: bool | None = None
    claims: bool = False


NOTES = {"zero query": " with W_query = 0 (every weight uniform: each output is the mean of "
                       "the values)",
         "extreme": " with integer weights (scores around 1e4)",
         "float64": ".to(torch.float64) on float64 input"}


@dataclass(frozen=True)
class ModuleCall:
    d_in: int
    d_out: int
    kwargs: dict
    weights: dict
    xs: list
    seed: int  # torch.manual_seed before the module is built
    what: str


def _module(case: Module, seed: int) -> ModuleCall:
    d_in = size(seed, case.d_in, 1)
    d_out = 4 if case.kind == "extreme" else size(seed, case.d_out, 2)  # sqrt(4): exact scores
    weights = qkv_weights(seed, d_in, d_out, bool(case.bias), extreme=case.kind == "extreme")
    if case.kind == "zero query":
        weights["W_query.weight"] = torch.zeros(d_out, d_in)
    xs = [token_input(seed, (size(seed, b, 20 + 2 * i), size(seed, n, 21 + 2 * i), d_in), i,
                      case.kind) for i, (b, n) in enumerate(case.sizes)]
    kwargs = {} if case.bias is None else {"qkv_bias": case.bias}
    what = f"{SA}({d_in}, {d_out}" + ("" if case.bias is None else f", qkv_bias={case.bias}")
    return ModuleCall(d_in, d_out, kwargs, weights, xs, seed,
                      what + ")" + NOTES.get(case.kind, " with the grader's weights"))


def _observe_sa(student: Student, case: Module, call: ModuleCall) -> dict:
    module = student.build(SA, (call.d_in, call.d_out), call.kwargs, weights=call.weights,
                           seed=call.seed)
    if case.kind == "float64":
        module.to(torch.float64)
    seen = {}
    if case.claims:  # the visible cell's structure asserts, as claims (judged with behaviour)
        seen["types"] = Student.attempt(
            lambda: [type(getattr(module, name, None)).__name__ for name in QKV])
        seen["no bias"] = Student.attempt(lambda: no_bias(module, QKV))
    with torch.no_grad():
        for i, x in enumerate(call.xs):
            seen[f"out {i}"] = Student.attempt(lambda x=x: module(x))
    return seen


def _judge_sa(verdict: Verdict, case: Module, call: ModuleCall) -> None:
    from autograder.reference.self_attention import reference_self_attention, self_attention_bugs

    float64 = case.kind == "float64"
    hint = (STABLE_HINT if case.kind == "extreme" else
            "after module.to(torch.float64) every parameter is float64: are the projections "
            "registered nn.Linear modules, and is nothing cast to float32?" if float64 else
            "queries, keys and values come from W_query, W_key and W_value (the loaded "
            "weights); weights = softmax(q @ k^T / sqrt(d_out), dim=-1); output = weights @ "
            "values")
    if case.bias is None and not float64:
        hint += "; qkv_bias defaults to False: no projection has a bias"
    tolerance = EXTREME_TOLERANCE if case.kind == "extreme" else 2e-5
    for i, x in enumerate(call.xs):
        verdict.array(f"out {i}", reference_self_attention(x, call.weights, call.d_out),
                      f"{call.what} on x of shape {tuple(x.shape)}",
                      atol=1e-10 if float64 else tolerance,
                      rtol=1e-9 if float64 else max(tolerance, 1e-4),
                      dtype="float64" if float64 else "float32", library="torch",
                      variants=lambda x=x: self_attention_bugs(x, call.weights, call.d_in),
                      hint=hint)
    if case.claims:
        verdict.equal("types", ["Linear"] * 3,
                      f"{call.what}: the types of W_query, W_key, W_value",
                      hint="each should be nn.Linear(d_in, d_out, bias=qkv_bias)")
        judge_no_bias(verdict, call.what, QKV)


# SelfAttention may compute its weights with scaled_dot_product_attention
module_check = partial(Check, exercise=SA, inputs=_module, observe=_observe_sa, judge=_judge_sa,
                       needs=(SDPA,))

self_attention_basics = module_check("self_attention_basics", cases=[
    Module("SelfAttention(3, 2), the visible sizes", 3, 2, ((2, 6), (1, 1)), claims=True),
    Module("SelfAttention(3, 2) with W_query = 0", 3, 2, ((2, 6),), kind="zero query"),
    Module("SelfAttention of sizes drawn from the seed", (2, 8), (1, 8), (((1, 3), (1, 7)),)),
    # what the visible cell also asserts: qkv_bias=True, scores around 1e4
    Module("SelfAttention with qkv_bias=True", (3, 8), (2, 8), (((2, 3), (2, 6)),), bias=True),
    Module("SelfAttention with extreme scores", (3, 6), 4, (((1, 3), (3, 7)),), kind="extreme",
           bias=True),
])

self_attention_values = module_check("self_attention_values", cases=[
    Module("SelfAttention with qkv_bias=True", (3, 8), (2, 8),
           (((2, 3), (2, 6)), (1, (2, 5)), (1, 1)), bias=True),
    Module("SelfAttention with qkv_bias=False", (2, 6), (3, 9), (((1, 3), (3, 7)),),
           bias=False),
    Module("SelfAttention, d_out > d_in, qkv_bias=True", (2, 4), (6, 12), (((2, 4), (1, 6)),),
           bias=True),
    Module("SelfAttention, default qkv_bias", (4, 10), (2, 5), (((1, 2), (4, 8)), (1, 1))),
    Module("SelfAttention with extreme scores", (3, 6), 4, (((1, 3), (3, 7)),), kind="extreme",
           bias=True),
    Module("SelfAttention in float64", (2, 6), (2, 6), (((1, 3), (2, 6)),), kind="float64",
           bias=True),
])
