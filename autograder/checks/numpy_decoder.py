"""Hidden checks for 07-numpy-decoder (NumPy only; the references use PyTorch).

Every input, weight matrix and ``params`` dict is a pure function of ``(case, seed)``: the
observing side builds it to call the student's function, the judging side builds it again
to compute the expected answer with ``autograder.reference.numpy_decoder``. Sizes are drawn
from the seed too. The ``fixed`` / ``visible`` cases repeat what the visible grade cells
assert on; every check also has seeded cases whose answers no table can hold.
"""

from __future__ import annotations

import math

import numpy as np

from autograder import data
from autograder.checks import Check, Student, Verdict
from autograder.checks._common import (
    _peek,
    causal_diagnosis,
    future_changed,
    integer,
    judge_causal,
    normal,
    rng,
    size,
    uniform,
)

ASSIGNMENT = "07-numpy-decoder"
SOFTMAX = "softmax"
LAYER_NORM = "layer_norm"
GELU = "gelu"
ATTENTION = "multi_head_causal_attention"
DECODER = "decoder_forward"
GENERATE = "generate"


def _shape(seed: int, dims: tuple) -> tuple[int, ...]:
    return tuple(size(seed, spec, 10 + i) for i, spec in enumerate(dims))


def _matrix(seed: int, rows: int, cols: int, stream: int, gain: float = 1.0) -> np.ndarray:
    """A (rows, cols) float64 weight matrix used as ``x @ W``, scaled like a trained layer."""
    return normal(seed, (rows, cols), stream=stream, scale=gain / math.sqrt(rows))


# --- softmax ----------------------------------------------------------------------------------
# A case: ("fixed", name) for an input of SOFTMAX_FIXED, or ("seeded", dims, axis, scale,
# offset): x = scale * N(0, 1) + offset of a shape drawn from dims; axis None = the default.

SOFTMAX_FIXED = {  # name: (x, axis or None for the default)
    "visible": ([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], None),
    "visible, axis=0": ([[1.0], [3.0]], 0),
    "one entry": ([[0.7]], None),
    "large scores": ([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1003.0]], None),
    "very large scores": ([[3e4, 0.0, -3e4, 2.99e4]], -1),
    "-inf entries": ([[0.0, -np.inf, 1.0, -np.inf], [-np.inf, 2.0, 2.0, 0.5]], None),
    "-inf entries among large scores": ([[800.0, -np.inf, 805.0, 790.0]], -1),
}

SOFTMAX_HINT = "exp(x - max) divided by its sum along the given axis (keepdims=True)"


def _finite(verdict: Verdict, field: str, shape: tuple, what: str, cause: str):
    """The answer as a NumPy ``Array`` of ``shape`` with no NaN or inf; None (failure
    recorded, naming ``cause``) when some value is not finite."""
    found = verdict.array_of(field, shape, what, library="numpy", finite=False)
    values = found.values.astype(np.float64)
    if np.all(np.isfinite(values)):
        return found
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
    verdict.fail(f"{what} contains nan or inf (at index {bad}): {cause}")
    return None


def _softmax_input(case: tuple, seed: int) -> tuple[np.ndarray, int | None]:
    if case[0] == "fixed":
        x, axis = SOFTMAX_FIXED[case[1]]
        return np.array(x, dtype=np.float64), axis
    if case[0] == "masked":  # seeded scores with -inf entries; every row keeps finite ones
        _, dims, scale = case
        x = normal(seed, _shape(seed, dims), scale=scale)
        hidden = rng(seed, 1).random(x.shape) < 0.4
        hidden[..., 0] = False
        return np.where(hidden, -np.inf, x), None
    _, dims, axis, scale, offset = case
    return normal(seed, _shape(seed, dims), scale=scale) + offset, axis


def _softmax_what(case: tuple, x: np.ndarray, axis: int | None) -> str:
    shown = x.tolist() if x.size <= 8 else f"x of shape {x.shape}"
    call = f"softmax({shown}" + (")" if axis is None else f", axis={axis})")
    if case[0] == "seeded" and (case[3] >= 1000 or abs(case[4]) >= 1000):
        call += f" (scores of order {max(case[3], abs(case[4])):g})"
    return call


def _observe_softmax(student: Student, case: tuple, seed: int) -> dict:
    x, axis = _softmax_input(case, seed)
    with np.errstate(all="ignore"):
        if axis is None:
            return {"p": student.call(SOFTMAX, x)}
        return {"p": student.call(SOFTMAX, x, axis=axis)}


def _judge_softmax(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference import numpy_decoder as ref

    x, axis = _softmax_input(case, seed)
    dim = -1 if axis is None else axis
    what = _softmax_what(case, x, axis)
    found = _finite(verdict, "p", x.shape, what, "exp overflows or underflows for scores far "
                    "from 0; subtract the maximum along the axis before exponentiating")
    if found is None:
        return
    values = found.values.astype(np.float64)
    if not verdict.array("p", ref.softmax(x, dim), what, atol=1e-8, rtol=1e-5,
                         variants=lambda: ref.softmax_bugs(x, dim),
                         hint=SOFTMAX_HINT if axis is None else
                         "normalise along the given axis: is the axis argument used?"):
        return
    # Rows must sum to 1 to rounding (of the output's dtype, and of x - max or x - logsumexp
    # for large scores): an eps added to the denominator (a published "safe" softmax) is
    # off by about eps / sum, and the sum is between 1 and the row length.
    unit = {"float32": 1.2e-7, "float16": 1e-3}.get(found.dtype, 2.3e-16)
    largest = float(np.max(np.abs(x[np.isfinite(x)]), initial=0.0))
    gap = float(np.max(np.abs(values.sum(axis=dim) - 1.0)))
    if gap > 8 * unit * (x.shape[dim] + largest):
        verdict.fail(f"{what}: the weights along axis {dim} should sum to exactly 1 (to "
                     f"rounding), but they are off by up to {gap:.3g}: is something (an eps?) "
                     "added to the denominator? exp(x - max) always sums to at least 1")
        return
    if np.any(values[np.isneginf(x)] != 0):
        verdict.fail(f"{what}: entries that are -inf must get weight exactly 0")
        return
    verdict.ok("p")


def _softmax_check(grade_id: str, cases: list) -> Check:
    check = Check(grade_id, exercise=SOFTMAX, cases=cases)
    check.observe(_observe_softmax)
    check.judge(_judge_softmax)
    return check


softmax_basics = _softmax_check("softmax_basics", [  # the visible asserts, plus a seeded input
    ("fixed", "visible"), ("fixed", "visible, axis=0"),
    ("seeded", ((2, 5), (2, 7)), None, 2.0, 0.0)])

softmax_values = _softmax_check("softmax_values", [
    ("seeded", ((2, 9),), None, 1.0, 0.0),
    ("seeded", ((2, 6), (2, 8)), None, 3.0, 0.0),
    ("seeded", ((2, 6), (2, 8)), 0, 1.0, 0.0),
    ("seeded", ((2, 6), (2, 8)), -1, 5.0, 0.0),
    ("seeded", ((1, 3), (2, 5), (2, 6)), 1, 2.0, 0.0),
    ("seeded", ((1, 3), (2, 5), (2, 6)), None, 1.0, 0.5),
    ("seeded", ((2, 4), (2, 4), (2, 4)), 0, 1.0, 0.0),
    ("seeded", ((2, 4), (2, 4), (2, 4)), -2, 1.5, 0.0),
    ("seeded", ((2, 7), 1), None, 1.0, 0.0),
    ("fixed", "one entry"),
])

softmax_stability = _softmax_check("softmax_stability", [
    ("fixed", "large scores"), ("fixed", "very large scores"), ("fixed", "-inf entries"),
    ("fixed", "-inf entries among large scores"),
    ("seeded", ((2, 6), (2, 8)), None, 1e4, 0.0),          # scores around +-1e4
    ("seeded", ((2, 6), (2, 8)), 0, 1e4, 0.0),
    ("seeded", ((2, 4), (3, 8)), None, 1.0, 1e4),          # all large: exp overflows
    ("seeded", ((1, 3), (2, 4), (3, 8)), None, 1.0, -1e4),  # all very negative: exp underflows
    ("seeded", ((2, 5), (2, 6)), 0, 1000.0, 0.0),
    ("masked", ((2, 6), (3, 8)), 3.0),
])


# --- layer_norm -------------------------------------------------------------------------------
# A case: ("fixed",) for the visible input, or ("seeded", dims, scale, offset, eps) with eps a
# float, None for the default, or "drawn" for one drawn from the seed.

LN_VISIBLE = [[1.0, 2.0, 3.0, 4.0], [0.0, 0.5, -0.5, 2.0]]
LN_HINT = "(x - mean) / sqrt(var + eps) over the last axis (biased variance), then * gamma + beta"


def _ln_inputs(case: tuple, seed: int):
    """(x, gamma, beta, eps or None for the default) of a seeded case."""
    _, dims, scale, offset, eps = case
    shape = _shape(seed, dims)
    x = normal(seed, shape, scale=scale) + offset
    gamma = 1 + 0.5 * normal(seed, shape[-1:], stream=1)
    beta = 0.5 * normal(seed, shape[-1:], stream=2)
    if eps == "drawn":
        eps = round(uniform(seed, 0.01, 0.5), 4)
    return x, gamma, beta, eps


def _ln_variants(x, gamma, beta, eps: float | None) -> dict:
    """Known bugs; with the default eps (``None``), other libraries' defaults first."""
    from autograder.reference import numpy_decoder as ref

    variants = {}
    if eps is None:
        for other in (1e-6, 1e-12):
            variants[f"LayerNorm with a default eps of {other:g} (the contract's default is "
                     "1e-5)"] = ref.layer_norm(x, gamma, beta, other)
    variants.update(ref.layer_norm_bugs(x, gamma, beta, 1e-5 if eps is None else eps))
    return variants


def _ln_what(x: np.ndarray, eps: float | None, detail: str = "") -> str:
    call = "layer_norm(x, gamma, beta" + (")" if eps is None else f", eps={eps})")
    return f"{call} for x of shape {x.shape}{detail}"


def _observe_layer_norm(student: Student, case: tuple, seed: int) -> dict:
    if case[0] == "fixed":
        x = np.array(LN_VISIBLE)
        return {"y": student.call(LAYER_NORM, x, np.ones(4), np.zeros(4)),
                "scaled": student.call(LAYER_NORM, np.array(LN_VISIBLE), np.full(4, 2.0),
                                       np.ones(4))}
    x, gamma, beta, eps = _ln_inputs(case, seed)
    if eps is None:
        return {"y": student.call(LAYER_NORM, x, gamma, beta)}
    return {"y": student.call(LAYER_NORM, x, gamma, beta, eps=eps)}


def _judge_layer_norm(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference import numpy_decoder as ref

    if case[0] == "fixed":
        x = np.array(LN_VISIBLE)
        for field, gamma, beta in (("y", np.ones(4), np.zeros(4)),
                                   ("scaled", np.full(4, 2.0), np.ones(4))):
            what = (f"layer_norm(x, {gamma.tolist()}, {beta.tolist()}) for x = {LN_VISIBLE}")
            verdict.array(field, ref.layer_norm(x, gamma, beta), what, atol=1e-8, rtol=1e-6,
                          library="numpy", variants=lambda g=gamma, b=beta: _ln_variants(x, g, b, None),
                          hint=LN_HINT)
        return
    x, gamma, beta, eps = _ln_inputs(case, seed)
    spread = case[2]
    detail = f" (rows with a spread of about {spread:g}: eps matters)" if spread < 0.1 else ""
    if case[3] >= 10:
        detail += f" (values around {case[3]:g})"
    e = 1e-5 if eps is None else eps
    hint = LN_HINT
    if eps is None:
        hint += "; the default eps is 1e-5"
    verdict.array("y", ref.layer_norm(x, gamma, beta, e), _ln_what(x, eps, detail), atol=1e-8,
                  rtol=1e-6, library="numpy", variants=lambda: _ln_variants(x, gamma, beta, eps),
                  hint=hint)


def _layer_norm_check(grade_id: str, cases: list) -> Check:
    check = Check(grade_id, exercise=LAYER_NORM, cases=cases)
    check.observe(_observe_layer_norm)
    check.judge(_judge_layer_norm)
    return check


layer_norm_basics = _layer_norm_check("layer_norm_basics", [
    ("fixed",), ("seeded", ((2, 5), (3, 9)), 1.0, 0.5, None)])

layer_norm_values = _layer_norm_check("layer_norm_values", [
    ("seeded", ((2, 6), (4, 12)), 1.0, 0.5, 1e-5),
    ("seeded", ((2, 5), (8, 20)), 0.01, 0.0, None),    # the default eps changes the result
    ("seeded", ((2, 5), (8, 20)), 0.001, 0.2, None),   # var below eps: eps dominates
    ("seeded", ((2, 5), (3, 8)), 1.0, 0.5, "drawn"),   # is the eps argument used?
    ("seeded", ((2, 5), (4, 10)), 0.05, 0.0, "drawn"),
    ("seeded", ((3, 9),), 2.0, 0.5, None),
    ("seeded", ((1, 3), (2, 4), (4, 12)), 1.0, 0.5, None),
    ("seeded", (1, (32, 64)), 0.3, 0.0, 1e-5),
    ("seeded", ((1, 3), (2, 3), (3, 8)), 1.0, 100.0, None),
])


# --- gelu -------------------------------------------------------------------------------------
# A case: ("fixed", name) or ("seeded", dims, scale).

GELU_FIXED = {
    "visible": [-3.0, -1.0, 0.0, 0.5, 1.0, 2.7],
    "linspace(-6, 6, 241)": np.linspace(-6.0, 6.0, 241).tolist(),
    "a single value": [1.3],
    "large values": [-1000.0, -50.0, 50.0, 1000.0, 1e4, -1e4],
}
GELU_HINT = ("0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3))) elementwise, any shape; large "
             "inputs must stay finite (gelu(x) = x for large x, 0 for large negative x)")


def _gelu_input(case: tuple, seed: int) -> np.ndarray:
    if case[0] == "fixed":
        return np.array(GELU_FIXED[case[1]])
    return normal(seed, _shape(seed, case[1]), scale=case[2])


def _observe_gelu(student: Student, case: tuple, seed: int) -> dict:
    with np.errstate(all="ignore"):
        return {"y": student.call(GELU, _gelu_input(case, seed))}


def _judge_gelu(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference import numpy_decoder as ref

    x = _gelu_input(case, seed)
    what = (f"gelu({x.tolist()})" if case[0] == "fixed" and x.size <= 8 else
            f"gelu(x) for {case[1]}" if case[0] == "fixed" else
            f"gelu(x) for x of shape {x.shape} (scale {case[2]:g})")
    if not verdict.array("y", ref.gelu(x), what, atol=1e-6, rtol=1e-6, library="numpy",
                         variants=lambda: ref.gelu_bugs(x), hint=GELU_HINT):
        return
    if case == ("fixed", "visible"):  # the visible cell asserts gelu(0) == 0 exactly
        y = verdict.array_of("y", x.shape, what)
        if y.values[2] != 0:
            verdict.fail(f"gelu(0) should be exactly 0, found {float(y.values[2])!r}")


def _gelu_check(grade_id: str, cases: list) -> Check:
    check = Check(grade_id, exercise=GELU, cases=cases)
    check.observe(_observe_gelu)
    check.judge(_judge_gelu)
    return check


gelu_basics = _gelu_check("gelu_basics", [("fixed", "visible"), ("seeded", ((3, 12),), 2.0)])

gelu_values = _gelu_check("gelu_values", [
    ("fixed", "linspace(-6, 6, 241)"), ("seeded", ((2, 6), (3, 10)), 2.0),
    ("seeded", ((1, 3), (2, 4), (2, 5)), 1.5), ("fixed", "a single value"),
    ("fixed", "large values"), ("seeded", ((4, 12),), 300.0), ("seeded", ((5, 20),), 0.3),
])


# --- multi_head_causal_attention -----------------------------------------------------------
# A case: ("visible",) for the visible cell's inputs, or ("seeded", n, num_heads, head_dim,
# scale, t) with sizes drawn from ranges; scale "extreme" scales x so the largest score is
# 1e4 in absolute value; t (causal cases) is the last position whose outputs must not change.

ATTENTION_HINT = ("compare with F.scaled_dot_product_attention(is_causal=True) per head (head i "
                  "uses columns i*head_dim:(i+1)*head_dim), then the merged heads @ W_o")
EXTREME_SCORE = 1e4


def _attention_weights(seed: int, d: int) -> tuple[np.ndarray, ...]:
    """W_q, W_k, W_v, W_o: distinct seeded (d, d) matrices."""
    return tuple(_matrix(seed, d, d, stream=20 + k) for k in range(4))


def _attention_inputs(case: tuple, seed: int) -> tuple[np.ndarray, tuple, int]:
    """(x, (W_q, W_k, W_v, W_o), num_heads) of a case."""
    if case[0] == "visible":
        g = np.random.default_rng(0)
        x = g.standard_normal((4, 6))
        return x, tuple(g.standard_normal((6, 6)) / 2 for _ in range(4)), 2
    _, n, h, hd, scale, _ = case
    n, h, hd = size(seed, n, 1), size(seed, h, 2), size(seed, hd, 3)
    W = _attention_weights(seed, h * hd)
    x = normal(seed, (n, h * hd))
    if scale == "extreme":
        q = (x @ W[0]).reshape(n, h, hd).transpose(1, 0, 2)
        k = (x @ W[1]).reshape(n, h, hd).transpose(1, 0, 2)
        largest = float(np.max(np.abs(q @ k.transpose(0, 2, 1)))) / math.sqrt(hd)
        x = x * math.sqrt(EXTREME_SCORE / largest)
    else:
        x = x * scale
    return x, W, h


def _attention_t(case: tuple, seed: int, n: int) -> int:
    return integer(seed, 0, n - 2, 4) if case[5] == "t" else case[5]


def _attention_what(case: tuple, x: np.ndarray, h: int) -> str:
    what = (f"multi_head_causal_attention(x, W_q, W_k, W_v, W_o, num_heads={h}) for x of shape "
            f"{x.shape}")
    if case[0] == "seeded" and case[4] == "extreme":
        what += f" (scores up to {EXTREME_SCORE:g} in absolute value)"
    return what


def _observe_attention(student: Student, case: tuple, seed: int) -> dict:
    x, W, h = _attention_inputs(case, seed)
    with np.errstate(all="ignore"):
        seen = {"out": student.call(ATTENTION, x, *W, h)}
        if case[0] == "visible":  # the visible cell adds 1 to tokens 2 and 3
            x, W, h = _attention_inputs(case, seed)
            x[2:] += 1.0
            seen["changed"] = student.call(ATTENTION, x, *W, h)
    return seen


def _judge_attention(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference import numpy_decoder as ref

    x, W, h = _attention_inputs(case, seed)
    what = _attention_what(case, x, h)
    extreme = case[0] == "seeded" and case[4] == "extreme"
    cause = ("the scores are around +-1e4 here: the softmax must subtract the row maximum "
             "before exponentiating" if extreme else
             "is the diagonal masked too (np.triu(..., k=1) keeps it visible; a row whose "
             "keys are all hidden gives 0 / 0), or does exp overflow in the softmax?")
    if _finite(verdict, "out", x.shape, what, cause) is None:
        return
    verdict.array("out", ref.attention(x, *W, h), what, atol=1e-8, rtol=1e-5, library="numpy",
                  variants=lambda: ref.attention_bugs(x, *W, h), hint=ATTENTION_HINT)
    if case[0] != "visible":
        return
    x = x.copy()
    x[2:] += 1.0  # the visible cell's change: every answer against the reference
    verdict.array("changed", ref.attention(x, *W, h), f"{what}, tokens 2 and 3 changed",
                  atol=1e-8, rtol=1e-5, library="numpy",
                  hint=causal_diagnosis(verdict, "out", "changed", ref.attention(x, *W, h), 1)
                  or ATTENTION_HINT)


attention_basics = Check("attention_basics", exercise=ATTENTION,
                         needs=(SOFTMAX,),
                         cases=[("visible",), ("seeded", (2, 7), (1, 3), (2, 4), 1.0, None)])
attention_basics.observe(_observe_attention)
attention_basics.judge(_judge_attention)

attention_values = Check("attention_values", exercise=ATTENTION, needs=(SOFTMAX,),
                         cases=[("seeded", (3, 9), (2, 3), (2, 4), 1.0, None),
                                ("seeded", 1, (2, 4), (2, 3), 1.0, None),      # one token
                                ("seeded", (3, 8), 1, (3, 7), 1.0, None),      # one head
                                ("seeded", (4, 12), (3, 5), (1, 3), 1.5, None),
                                ("seeded", (12, 16), (2, 4), (2, 4), 1.0, None),
                                ("seeded", (4, 10), (2, 4), (2, 4), "extreme", None),
                                ("seeded", (3, 6), 1, (2, 5), "extreme", None)])
attention_values.observe(_observe_attention)
attention_values.judge(_judge_attention)

attention_causal = Check("attention_causal", exercise=ATTENTION, needs=(SOFTMAX,),
                         cases=[("seeded", (5, 9), (1, 3), (2, 4), 1.0, "t"),
                                ("seeded", (4, 8), (2, 3), (2, 4), 1.0, "t"),
                                ("seeded", (3, 7), 1, (3, 6), 1.0, 0)])


def _past_changed(x: np.ndarray, seed: int) -> np.ndarray:
    """``x`` with the first token replaced: the last position attends to it."""
    changed = x.copy()
    changed[0] = normal(seed, x.shape[1:], stream=5001, scale=3.0)
    return changed


@attention_causal.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    x, W, h = _attention_inputs(case, seed)
    t = _attention_t(case, seed, len(x))
    with np.errstate(all="ignore"):
        return {"out": student.call(ATTENTION, x, *W, h),
                "changed": student.call(ATTENTION, future_changed(x, t, seed),
                                        *_attention_inputs(case, seed)[1], h),
                "past": student.call(ATTENTION, _past_changed(x, seed),
                                     *_attention_inputs(case, seed)[1], h)}


def _judge_related(verdict: Verdict, expected: dict, t: int, what: str, thing: str,
                   **compare) -> None:
    """Every answer of a causal case ("out" on x, "changed" with the tokens after ``t``
    changed, "past" with the first token changed) against the reference on its own input; the
    properties between them (causality, and that the outputs do mix tokens) only name the bug
    in a failure's message."""
    verdict.array("out", expected["out"], what, **compare)
    judge_causal(verdict, "out", "changed", expected["changed"], t, what, **compare)
    past = _peek(verdict, "past")
    out = _peek(verdict, "out")
    hint = ""
    if past is not None and out is not None and past.shape == out.shape and \
            float(np.max(np.abs(out[1:] - past[1:]), initial=0.0)) < 1e-9:
        hint = (f"changing the first token did not change the {thing} at any later position: "
                "each position attends to every position up to itself (the mask hides only "
                "the future, strictly above the diagonal)")
    verdict.array("past", expected["past"], f"{what} with the first token changed",
                  **compare, hint=hint)


@attention_causal.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference import numpy_decoder as ref

    x, W, h = _attention_inputs(case, seed)
    t = _attention_t(case, seed, len(x))
    what = _attention_what(case, x, h)
    expected = {"out": ref.attention(x, *W, h),
                "changed": ref.attention(future_changed(x, t, seed), *W, h),
                "past": ref.attention(_past_changed(x, seed), *W, h)}
    _judge_related(verdict, expected, t, what, "outputs", atol=1e-8, rtol=1e-5,
                   library="numpy")


# --- decoder_forward --------------------------------------------------------------------------
# A case: ("visible",) for the visible cell (zero attention and MLP weights), or ("seeded",
# vocab_size, num_heads, head_dim, d_ff, n, t) with sizes drawn from ranges.

DECODER_NEEDS = (SOFTMAX, LAYER_NORM, GELU, ATTENTION)
DECODER_HINT = ("check the wiring: pre-LN residual branches, the positional encoding, "
                "logits = h @ W_emb.T; if the four functions above pass, compare step by step "
                "with a PyTorch decoder holding the same weights")


def _even_width(seed: int, h: int, hd) -> int:
    """head_dim drawn from ``hd`` such that d_model = h * head_dim is even (the positional
    encoding needs an even d_model)."""
    hd = size(seed, hd, 3)
    return hd + 1 if h * hd % 2 else hd


def _params(seed: int, V: int, d: int, d_ff: int) -> dict[str, np.ndarray]:
    """Seeded decoder weights in which positions matter (greedy decoding does not just repeat)."""
    return {
        "W_emb": normal(seed, (V, d), stream=30, scale=0.5),
        "ln1_gamma": 1 + normal(seed, (d,), stream=31, scale=0.1),
        "ln1_beta": normal(seed, (d,), stream=32, scale=0.1),
        "W_q": _matrix(seed, d, d, 33, 2.0), "W_k": _matrix(seed, d, d, 34, 2.0),
        "W_v": _matrix(seed, d, d, 35, 2.0), "W_o": _matrix(seed, d, d, 36, 2.0),
        "ln2_gamma": 1 + normal(seed, (d,), stream=37, scale=0.1),
        "ln2_beta": normal(seed, (d,), stream=38, scale=0.1),
        "W_1": _matrix(seed, d, d_ff, 39, 2.0), "b_1": normal(seed, (d_ff,), stream=40, scale=0.1),
        "W_2": _matrix(seed, d_ff, d, 41, 2.0), "b_2": normal(seed, (d,), stream=42, scale=0.1),
    }


def _visible_decoder_params() -> dict[str, np.ndarray]:
    V, d, d_ff = 10, 8, 16
    return {"W_emb": np.random.default_rng(1).standard_normal((V, d)),
            "ln1_gamma": np.ones(d), "ln1_beta": np.zeros(d), "ln2_gamma": np.ones(d),
            "ln2_beta": np.zeros(d), "W_q": np.zeros((d, d)), "W_k": np.zeros((d, d)),
            "W_v": np.zeros((d, d)), "W_o": np.zeros((d, d)), "W_1": np.zeros((d, d_ff)),
            "b_1": np.zeros(d_ff), "W_2": np.zeros((d_ff, d)), "b_2": np.zeros(d)}


def _decoder_inputs(case: tuple, seed: int) -> tuple[np.ndarray, dict, int]:
    """(token_ids, params, num_heads) of a case."""
    if case[0] == "visible":
        return np.array([3, 0, 9, 3]), _visible_decoder_params(), 2
    _, V, h, hd, d_ff, n, _ = case
    V, h, hd = size(seed, V, 1), size(seed, h, 2), _even_width(seed, h, hd)
    d_ff, n = size(seed, d_ff, 4), size(seed, n, 5)
    ids = rng(seed, 6).integers(0, V, n)
    return ids, _params(seed, V, h * hd, d_ff), h


def _decoder_what(ids: np.ndarray, params: dict, h: int) -> str:
    V, d = params["W_emb"].shape
    return (f"decoder_forward(token_ids, params, num_heads={h}) for {len(ids)} token(s), "
            f"vocab_size={V}, d_model={d}, d_ff={params['W_1'].shape[1]}")


def _observe_decoder(student: Student, case: tuple, seed: int) -> dict:
    with np.errstate(all="ignore"):
        return {"logits": student.call(DECODER, *_decoder_inputs(case, seed))}


DECODER_TOLERANCE = {"atol": 1e-8, "rtol": 1e-5, "library": "numpy"}


def _judge_decoder(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference import numpy_decoder as ref

    ids, params, h = _decoder_inputs(case, seed)
    hint = DECODER_HINT
    if case[0] == "visible":
        hint = ("with zero attention and MLP weights both residual branches add 0, so logits = "
                "(W_emb[ids] + pe) @ W_emb.T: check the embedding, the positional encoding, the "
                "residuals and the tied output")
    verdict.array("logits", ref.decoder(ids, params, h), _decoder_what(ids, params, h),
                  **DECODER_TOLERANCE,
                  variants=lambda: ref.decoder_bugs(ids, params, h), hint=hint)


decoder_basics = Check("decoder_basics", exercise=DECODER, needs=DECODER_NEEDS,
                       cases=[("visible",), ("seeded", (6, 14), 2, (2, 4), (8, 32), (3, 8), None)])
decoder_basics.observe(_observe_decoder)
decoder_basics.judge(_judge_decoder)

decoder_values = Check("decoder_values", exercise=DECODER, needs=DECODER_NEEDS,
                       cases=[("seeded", (6, 14), 2, (2, 4), (16, 32), (4, 9), None),
                              ("seeded", (5, 9), 3, (2, 4), (12, 24), (6, 12), None),
                              ("seeded", (4, 8), 1, (4, 8), (8, 16), 1, None),   # one token
                              ("seeded", (9, 16), 2, (2, 3), (12, 24), (10, 14), None),
                              ("seeded", (15, 24), 4, (2, 4), (32, 64), (6, 12), None)])
decoder_values.observe(_observe_decoder)
decoder_values.judge(_judge_decoder)

decoder_causal = Check("decoder_causal", exercise=DECODER, needs=DECODER_NEEDS,
                       cases=[("seeded", (6, 12), 2, (2, 4), (8, 24), (6, 10), "t"),
                              ("seeded", (4, 8), 3, (2, 4), (12, 24), (4, 7), "t"),
                              ("seeded", (6, 10), 1, (4, 6), (8, 16), (3, 5), 0)])


def _changed_ids(case: tuple, seed: int) -> tuple[np.ndarray, int]:
    """The token ids with every one after position t replaced by a different id; t."""
    ids, params, _ = _decoder_inputs(case, seed)
    V, n = len(params["W_emb"]), len(ids)
    t = integer(seed, 0, n - 2, 7) if case[6] == "t" else case[6]
    changed = ids.copy()
    changed[t + 1:] = (ids[t + 1:] + rng(seed, 8).integers(1, V, n - t - 1)) % V
    return changed, t


@decoder_causal.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    ids, params, h = _decoder_inputs(case, seed)
    changed, _ = _changed_ids(case, seed)
    with np.errstate(all="ignore"):
        return {"out": student.call(DECODER, ids, params, h),
                "changed": student.call(DECODER, changed, _decoder_inputs(case, seed)[1], h),
                "past": student.call(DECODER, _first_changed(case, seed),
                                     _decoder_inputs(case, seed)[1], h)}


def _first_changed(case: tuple, seed: int) -> np.ndarray:
    """The token ids with the first one replaced by a different id."""
    ids, params, _ = _decoder_inputs(case, seed)
    changed = ids.copy()
    changed[0] = (ids[0] + integer(seed, 1, len(params["W_emb"]) - 1, 9)) % len(params["W_emb"])
    return changed


@decoder_causal.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference import numpy_decoder as ref

    ids, params, h = _decoder_inputs(case, seed)
    changed, t = _changed_ids(case, seed)
    what = _decoder_what(ids, params, h)
    expected = {"out": ref.decoder(ids, params, h), "changed": ref.decoder(changed, params, h),
                "past": ref.decoder(_first_changed(case, seed), params, h)}
    _judge_related(verdict, expected, t, what, "logits", **DECODER_TOLERANCE)


# --- generate ---------------------------------------------------------------------------------
# A case: ("visible", prompt, max_new_tokens) with the visible cell's weights, or ("seeded",
# vocab_size, num_heads, head_dim, d_ff, prompt_length, max_new_tokens) drawn from ranges.


def _visible_generate_params() -> dict[str, np.ndarray]:
    g = np.random.default_rng(2)
    V, d, d_ff = 12, 8, 32
    return {"W_emb": g.standard_normal((V, d)), "ln1_gamma": np.ones(d), "ln1_beta": np.zeros(d),
            "ln2_gamma": np.ones(d), "ln2_beta": np.zeros(d), "b_1": np.zeros(d_ff),
            "b_2": np.zeros(d),
            **{k: g.standard_normal((d, d)) / 2 for k in ("W_q", "W_k", "W_v", "W_o")},
            "W_1": g.standard_normal((d, d_ff)) / 2, "W_2": g.standard_normal((d_ff, d)) / 4}


def _generate_inputs(case: tuple, seed: int) -> tuple[list[int], dict, int, int]:
    """(prompt, params, num_heads, max_new_tokens) of a case."""
    if case[0] == "visible":
        return list(case[1]), _visible_generate_params(), 2, case[2]
    _, V, h, hd, d_ff, n, k = case
    V, h, hd = size(seed, V, 1), size(seed, h, 2), _even_width(seed, h, hd)
    d_ff, n, k = size(seed, d_ff, 4), size(seed, n, 5), size(seed, k, 6)
    prompt = [int(i) for i in rng(seed, 6).integers(0, V, n)]
    return prompt, _params(seed, V, h * hd, d_ff), h, k


def _observe_generate(student: Student, case: tuple, seed: int) -> dict:
    with np.errstate(all="ignore"):
        return {"ids": student.call(GENERATE, *_generate_inputs(case, seed))}


def _judge_generate(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference import numpy_decoder as ref

    prompt, params, h, k = _generate_inputs(case, seed)
    V = len(params["W_emb"])
    what = f"generate({prompt}, params, num_heads={h}, max_new_tokens={k}) (vocab_size={V})"
    found = verdict.value("ids", what)
    if not isinstance(found, list):
        kind = (found.type if isinstance(found, data.Opaque) else
                "a tuple" if isinstance(found, tuple) else
                f"a {found.library} array" if isinstance(found, data.Array) else
                type(found).__name__)
        verdict.fail(f"{what} returned {kind}; expected a list of token ids (list(...))")
        return
    if not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < V for t in found):
        verdict.fail(f"{what} returned {found!r:.300}; expected a list of integer token ids "
                     f"in 0..{V - 1}")
        return
    if len(found) != len(prompt) + k:
        hint = ""
        if len(found) == k and k:
            hint = ": it returned only the new tokens; return the prompt followed by them"
        elif abs(len(found) - len(prompt) - k) == 1:
            hint = ": is the loop off by one?"
        verdict.fail(f"{what} returned {len(found)} ids {found}; expected {len(prompt) + k} "
                     f"(the {len(prompt)} prompt ids followed by exactly {k} new ones){hint}")
        return
    if found[:len(prompt)] != prompt:
        verdict.fail(f"{what} returned {found}: it should start with the prompt {prompt}")
        return
    # Each new id must be an argmax of the reference logits after the ids before it (a near
    # tie, within rounding, may go either way).
    for i in range(len(prompt), len(found)):
        logits = ref.decoder(found[:i], params, h)[-1]
        if logits[found[i]] < logits.max() - 1e-9 * max(1.0, float(np.abs(logits).max())):
            break
    else:
        verdict.ok("ids")
        return
    expected = ref.generate(prompt, params, h, k)
    message = f"{what} returned {found}; expected {expected}"
    for label, variant in ref.generate_bugs(prompt, params, h, k).items():
        if found == variant:
            message += f". It matches {label}"
            break
    else:
        message += (". Each new id is the argmax of the last row of "
                    "decoder_forward(all ids so far); check decoder_forward first")
    verdict.fail(message)


generate_basics = Check("generate_basics", exercise=GENERATE, needs=(DECODER,),
                        cases=[("visible", (3, 1, 4), 5), ("visible", (5,), 0),
                               ("seeded", (8, 14), 2, (2, 4), (16, 32), (2, 4), (3, 6))])
generate_basics.observe(_observe_generate)
generate_basics.judge(_judge_generate)

generate_contract = Check("generate_contract", exercise=GENERATE,
                          needs=(DECODER,),
                          cases=[("seeded", (8, 14), 2, (2, 4), (16, 32), (3, 5), (6, 9)),
                                 ("seeded", (6, 10), 3, (2, 4), (12, 24), 1, (4, 7)),
                                 ("seeded", (10, 16), 1, (4, 8), (8, 16), (2, 4), 0),
                                 ("seeded", (6, 10), 2, (2, 3), (8, 16), (1, 3), 1),
                                 ("seeded", (12, 20), 4, (2, 4), (16, 32), (5, 8), (8, 10))])
generate_contract.observe(_observe_generate)
generate_contract.judge(_judge_generate)
