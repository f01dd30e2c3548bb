"""Hidden checks for 02-self-attention (PyTorch).

Every input, and every weight the grader loads into the student's ``SelfAttention``, is a
pure function of the case and its seed (``_common``); the judge rebuilds them and compares
the answers with ``autograder.reference.self_attention``. The "extreme" cases use integer
inputs (exact in float32) whose scores are around 1e3..1e4 with gaps of at least 50, so
the expected weights are exact while a softmax without max-subtraction overflows to NaN.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from autograder import data
from autograder.checks import Check, Student, Verdict
from autograder.checks._common import (
    EXTREME_TOLERANCE,
    STABLE_HINT,
    judge_no_bias,
    linear,
    no_bias,
    randn,
    rng,
    size,
)

ASSIGNMENT = "02-self-attention"

SDPA = "scaled_dot_product_attention"
SA = "SelfAttention"
PROJ = ("W_query", "W_key", "W_value")

CONTEXT_HINT = ("context is weights @ values with weights = softmax(queries @ keys^T / "
                "sqrt(d_k)) over the last dim")
WEIGHTS_HINT = "weights = softmax(queries @ keys^T / sqrt(d_k), dim=-1)"




def _extreme(seed: int, shape: tuple[int, ...], stream: int, scale: float = 1.0):
    """Integers in [-3, 3] times ``scale`` as float32: sums of products stay exact."""
    values = rng(seed, 6000 + stream).integers(-3, 4, shape) * scale
    return torch.from_numpy(values.astype(np.float32))


# --- scaled_dot_product_attention ---------------------------------------------------------
#
# A case: (label, kind, lead dims, n_q, n_k, d_k, d_v, scale of q and k, mask shape).
# Sizes are ints or (low, high) ranges drawn from the seed; n_k / d_v of None repeat n_q /
# d_k. The mask shape names its dims with "b" (the first lead dim), "q", "k" or an int.

def _sdpa_sizes(case: tuple, seed: int):
    _, kind, lead, n_q, n_k, d_k, d_v, _, _ = case
    lead = tuple(size(seed, s, 10 + i) for i, s in enumerate(lead))
    n_q = size(seed, n_q, 1)
    n_k = n_q if n_k is None else size(seed, n_k, 2)
    d_k = (4, 16, 64)[size(seed, (0, 2), 3)] if kind == "extreme" else size(seed, d_k, 3)
    if d_v is None:
        d_v = d_k
    else:  # a case that gives d_v its own range means d_v != d_k (a sqrt(d_v) scale shows)
        d_v = size(seed, d_v, 4)
        d_v = d_v + 1 if d_v == d_k else d_v
    return lead, n_q, n_k, d_k, d_v


def _mask(spec, seed: int, lead, n_q: int, n_k: int) -> torch.Tensor | None:
    """A bool mask (True = hidden) in which every query keeps at least one visible key."""
    if spec is None:
        return None
    if spec == "causal":
        return torch.triu(torch.ones(n_q, n_k, dtype=torch.bool), diagonal=1)
    dims = {"b": lead[0] if lead else 1, "q": n_q, "k": n_k}
    shape = tuple(dims.get(d, d) for d in spec)
    hidden = rng(seed, 7).random(shape) < 0.5
    hidden[..., 0] = False  # the first key stays visible to every query
    return torch.from_numpy(hidden)


def _sdpa_inputs(case: tuple, seed: int):
    """(queries, keys, values, mask or None) of a case."""
    kind = case[1]
    if kind == "visible":  # the visible cell's first call
        return (torch.zeros(2, 3, 4), torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(0)),
                torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(2, 5, 6), None)
    if kind == "visible mask":  # the visible cell's masked call
        return (torch.ones(1, 2, 3), torch.ones(1, 2, 3), torch.ones(1, 2, 1),
                torch.tensor([[False, True], [False, False]]))
    lead, n_q, n_k, d_k, d_v = _sdpa_sizes(case, seed)
    scale, mask_spec = case[7], case[8]
    if kind == "extreme":
        q = _extreme(seed, (*lead, n_q, d_k), 0, 1000.0)
        k = _extreme(seed, (*lead, n_k, d_k), 1)
    else:
        q = randn(seed, (*lead, n_q, d_k), 0, scale)
        k = randn(seed, (*lead, n_k, d_k), 1, scale)
    v = randn(seed, (*lead, n_k, d_v), 2)
    return q, k, v, _mask(mask_spec, seed, lead, n_q, n_k)


def _sdpa_call(q, k, v, mask) -> str:
    what = f"{SDPA}(q, k, v" + (")" if mask is None else f", mask of shape {tuple(mask.shape)})")
    return f"{what} with q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"


def _observe_sdpa(student: Student, case: tuple, seed: int) -> dict:
    q, k, v, mask = _sdpa_inputs(case, seed)
    args = (q, k, v) if mask is None else (q, k, v, mask)  # mask=None is left to the default
    try:
        result = student.get(SDPA)(*args)
    except Exception as exc:  # student code may raise anything
        return {"context": data.error(exc), "weights": data.error(exc)}
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        problem = TypeError(f"returned {type(result).__name__}; expected a pair "
                            "(context, weights)")
        return {"context": data.error(problem), "weights": data.error(problem)}
    return {"context": data.encode(result[0]), "weights": data.encode(result[1])}


def _seen_array(verdict: Verdict, field: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The recorded values of ``field`` for an extra explanation of a failure already
    recorded (never as evidence): None unless they decode to an array of ``shape``."""
    seen = verdict.seen
    if not isinstance(seen, dict) or field not in seen:
        return None
    try:
        found = data.decode(seen[field])
    except (data.Malformed, ValueError, TypeError):
        return None
    if isinstance(found, data.Array) and found.values is not None and found.shape == shape:
        return found.values
    return None


def _judge_sdpa(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference.self_attention import attention_bugs, reference_attention

    q, k, v, mask = _sdpa_inputs(case, seed)
    what = _sdpa_call(q, k, v, mask)
    context, weights = reference_attention(q, k, v, mask)
    bugs = functools.cache(lambda: attention_bugs(q, k, v, mask))
    extreme = case[1] == "extreme"
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
    found = _seen_array(verdict, "weights", weights.shape)
    if found is None or not np.isfinite(found).all():
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


def _sdpa_check(grade_id: str, cases: list[tuple]) -> Check:
    check = Check(grade_id, exercise=SDPA, cases=cases)
    check.observe(_observe_sdpa)
    check.judge(_judge_sdpa)
    return check


sdpa_basics = _sdpa_check("sdpa_basics", [  # the visible calls, then the same kinds seeded
    ("the visible call: zero queries, (2, 5, 4) keys", "visible", (), 0, 0, 0, 0, 1.0, None),
    ("the visible masked call: [[F, T], [F, F]] on equal scores", "visible mask", (), 0, 0, 0,
     0, 1.0, None),
    ("q, k, v of sizes drawn from the seed", "seeded", ((1, 3),), (1, 6), (1, 7), (1, 8),
     (1, 8), 1.0, None),
    ("a seeded mask on seeded inputs", "seeded", ((1, 3),), (1, 5), (2, 6), (2, 8), (1, 6), 1.0,
     ("b", "q", "k")),
    # what the visible cell also asserts: d_v != d_k, 4-d inputs, scores around 1e4
    ("extra leading dims, d_v > d_k", "seeded", ((1, 3), (2, 4)), (2, 5), (3, 7), (2, 5),
     (6, 9), 1.0, None),
    ("extreme scores (around 1e4)", "extreme", ((1, 3),), (2, 6), (2, 7), None, (1, 5), 1.0,
     None),
])

sdpa_values = _sdpa_check("sdpa_values", [
    ("a batch, n_q = n_k", "seeded", ((2, 4),), (3, 8), None, (4, 12), None, 1.0, None),
    ("n_q != n_k, d_v != d_k", "seeded", ((1, 4),), (2, 6), (5, 9), (3, 8), (1, 4), 1.0, None),
    ("extra leading dims, d_v > d_k", "seeded", ((1, 3), (2, 4)), (2, 5), (3, 7), (2, 5),
     (6, 9), 1.0, None),
    ("no batch dim", "seeded", (), (2, 7), (2, 7), (8, 20), None, 1.0, None),
    ("one token, batch of one", "seeded", (1,), 1, 1, (2, 6), None, 1.0, None),
    ("large scores: d_k = 64, inputs scaled by 2", "seeded", (1,), (4, 8), None, 64, (1, 3),
     2.0, None),
    ("odd sizes: d_k = 1", "seeded", ((1, 2),), (2, 4), (1, 3), 1, (5, 8), 1.0, None),
    ("extreme scores (around 1e4)", "extreme", ((1, 3),), (2, 6), (2, 7), None, (1, 5), 1.0,
     None),
])

sdpa_mask = _sdpa_check("sdpa_mask", [
    ("a causal (n, n) mask on a batch", "seeded", ((2, 3),), (3, 7), None, (4, 10), None, 1.0,
     "causal"),
    ("a random (b, n_q, n_k) mask", "seeded", ((2, 4),), (2, 6), (3, 8), (2, 6), (1, 4), 1.0,
     ("b", "q", "k")),
    ("a padding mask of shape (1, n_k) broadcast over the queries", "seeded", ((1, 3),),
     (2, 5), (3, 8), (2, 6), None, 1.0, (1, "k")),
    ("a (b, 1, n, n) mask on (b, h, n, d) inputs", "seeded", ((1, 3), (2, 4)), (3, 6), None,
     (4, 9), None, 1.0, ("b", 1, "q", "k")),
    ("a causal (1, 1) mask on one token", "seeded", (1,), 1, None, (2, 5), None, 1.0,
     "causal"),
    ("a random mask on extreme scores (around 1e4)", "extreme", ((1, 3),), (2, 6), (3, 7),
     None, (1, 4), 1.0, ("b", "q", "k")),
])


# --- SelfAttention --------------------------------------------------------------------------
#
# A case: (label, kind, d_in, d_out, qkv_bias (None: left to the default), input sizes
# [(batch, num_tokens), ...], claims). Kinds: "seeded" (weights from _common.linear),
# "zero query" (W_query = 0: uniform weights), "extreme" (integer weights and inputs, scores
# around 1e4), "float64" (the module moved with .to(torch.float64), float64 inputs).

def _sa_setup(case: tuple, seed: int):
    _, kind, d_in, d_out, bias, sizes, _ = case
    d_in, d_out = size(seed, d_in, 1), size(seed, d_out, 2)
    if kind == "extreme":
        d_out = 4  # sqrt(d_out) = 2: the scaled scores stay exact
    with_bias = bool(bias)
    weights = {}
    for stream, name in enumerate(PROJ):
        weights.update(linear(seed, name, d_in, d_out, with_bias, stream=stream))
    if kind == "zero query":
        weights["W_query.weight"] = torch.zeros(d_out, d_in)
    if kind == "extreme":
        weights["W_query.weight"] = _extreme(seed, (d_out, d_in), 10, 100.0)
        weights["W_key.weight"] = _extreme(seed, (d_out, d_in), 11)
        if with_bias:
            weights["W_query.bias"] = _extreme(seed, (d_out,), 12, 100.0)
            weights["W_key.bias"] = _extreme(seed, (d_out,), 13)
    xs = []
    for i, (b, n) in enumerate(sizes):
        shape = (size(seed, b, 20 + 2 * i), size(seed, n, 21 + 2 * i), d_in)
        x = _extreme(seed, shape, 30 + i) if kind == "extreme" else randn(seed, shape, 30 + i)
        xs.append(x.to(torch.float64) if kind == "float64" else x)
    return d_in, d_out, weights, xs


def _sa_what(case: tuple, d_in: int, d_out: int) -> str:
    bias = case[4]
    what = f"{SA}({d_in}, {d_out}" + (")" if bias is None else f", qkv_bias={bias})")
    notes = {"zero query": " with W_query = 0 (every weight uniform: each output is the mean "
                           "of the values)",
             "extreme": " with integer weights (scores around 1e4)",
             "float64": ".to(torch.float64) on float64 input"}
    return what + notes.get(case[1], " with the grader's weights")


def _observe_sa(student: Student, case: tuple, seed: int) -> dict:
    d_in, d_out, weights, xs = _sa_setup(case, seed)
    kwargs = {} if case[4] is None else {"qkv_bias": case[4]}
    module = student.build(SA, (d_in, d_out), kwargs, weights=weights, seed=seed)
    if case[1] == "float64":
        module.to(torch.float64)
    seen = {}
    if case[6]:  # the visible cell's structure asserts, as claims (judged with behaviour)
        seen["types"] = Student.attempt(
            lambda: [type(getattr(module, name, None)).__name__ for name in PROJ])
        seen["no bias"] = Student.attempt(lambda: no_bias(module, PROJ))
    with torch.no_grad():
        for i, x in enumerate(xs):
            seen[f"out {i}"] = Student.attempt(lambda x=x: module(x))
    return seen


def _judge_sa(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference.self_attention import reference_self_attention, self_attention_bugs

    d_in, d_out, weights, xs = _sa_setup(case, seed)
    what = _sa_what(case, d_in, d_out)
    float64 = case[1] == "float64"
    hint = (STABLE_HINT if case[1] == "extreme" else
            "after module.to(torch.float64) every parameter is float64: are the projections "
            "registered nn.Linear modules, and is nothing cast to float32?" if float64 else
            "queries, keys and values come from W_query, W_key and W_value (the loaded "
            "weights); weights = softmax(q @ k^T / sqrt(d_out), dim=-1); output = weights @ "
            "values")
    tolerance = EXTREME_TOLERANCE if case[1] == "extreme" else 2e-5
    if case[4] is None and not float64:
        hint += "; qkv_bias defaults to False: no projection has a bias"
    for i, x in enumerate(xs):
        verdict.array(f"out {i}", reference_self_attention(x, weights, d_out),
                      f"{what} on x of shape {tuple(x.shape)}",
                      atol=1e-10 if float64 else tolerance,
                      rtol=1e-9 if float64 else max(tolerance, 1e-4),
                      dtype="float64" if float64 else "float32", library="torch",
                      variants=lambda x=x: self_attention_bugs(x, weights, d_in), hint=hint)
    if case[6]:
        verdict.equal("types", ["Linear"] * 3, f"{what}: the types of W_query, W_key, W_value",
                      hint="each should be nn.Linear(d_in, d_out, bias=qkv_bias)")
        judge_no_bias(verdict, what, PROJ)


def _sa_check(grade_id: str, cases: list[tuple]) -> Check:
    check = Check(grade_id, exercise=SA, cases=cases)
    check.observe(_observe_sa)
    check.judge(_judge_sa)
    return check


self_attention_basics = _sa_check("self_attention_basics", [
    ("SelfAttention(3, 2), the visible sizes", "seeded", 3, 2, None, [(2, 6), (1, 1)], True),
    ("SelfAttention(3, 2) with W_query = 0", "zero query", 3, 2, None, [(2, 6)], False),
    ("SelfAttention of sizes drawn from the seed", "seeded", (2, 8), (1, 8), None,
     [((1, 3), (1, 7))], False),
    # what the visible cell also asserts: qkv_bias=True, scores around 1e4
    ("SelfAttention with qkv_bias=True", "seeded", (3, 8), (2, 8), True,
     [((2, 3), (2, 6))], False),
    ("SelfAttention with extreme scores", "extreme", (3, 6), 4, True, [((1, 3), (3, 7))],
     False),
])

self_attention_values = _sa_check("self_attention_values", [
    ("SelfAttention with qkv_bias=True", "seeded", (3, 8), (2, 8), True,
     [((2, 3), (2, 6)), (1, (2, 5)), (1, 1)], False),
    ("SelfAttention with qkv_bias=False", "seeded", (2, 6), (3, 9), False,
     [((1, 3), (3, 7))], False),
    ("SelfAttention, d_out > d_in, qkv_bias=True", "seeded", (2, 4), (6, 12), True,
     [((2, 4), (1, 6))], False),
    ("SelfAttention, default qkv_bias", "seeded", (4, 10), (2, 5), None,
     [((1, 2), (4, 8)), (1, 1)], False),
    ("SelfAttention with extreme scores", "extreme", (3, 6), 4, True, [((1, 3), (3, 7))],
     False),
    ("SelfAttention in float64", "float64", (2, 6), (2, 6), True, [((1, 3), (2, 6))], False),
])
