"""Hidden checks for 07-numpy-decoder (NumPy only; the references use PyTorch).

A table of typed cases per exercise; one ``inputs`` per exercise builds a case's inputs,
weight matrices and ``params`` dict from the case and its seed (once with the student's
code, once with ``autograder.reference.numpy_decoder``). Sizes are drawn from the seed too.
The ``visible`` cases repeat what the visible grade cells assert on; every check also has
seeded cases whose answers no table can hold. A case that makes several calls gives each
its own copy of the weights, so that a function that writes into its arguments changes
none of the other answers.

The exercises build on each other, as the capstone's solution does: the attention calls
``softmax``, ``decoder_forward`` calls ``layer_norm``, ``gelu`` and the attention (and may call
``softmax``), ``generate`` calls ``decoder_forward``; each ``needs`` those, so that a bug in an
earlier exercise is named there first.

Points (spec section 6): every point rests on answers compared with the reference on the
grader's inputs, with tolerances from the reference's values. Causality (the answer with the
tokens after ``t`` changed) and the answer with the first token changed are compared with the
reference on their own inputs; the properties between the answers only name the bug. No
point rests on a claim: these are functions of arrays, with no structure to report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from autograder import data
from autograder.checks import Case, Check, Student, Verdict
from autograder.checks._common import (
    Size,
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


def _copy(weights):
    """A copy of a weight tuple or ``params`` dict, for one call of several in a case."""
    if isinstance(weights, dict):
        return {k: v.copy() for k, v in weights.items()}
    return tuple(w.copy() for w in weights)


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


# --- softmax ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scores(Case):
    """``softmax`` of ``fixed`` (nested tuples), or of ``scale * N(0, 1) + offset`` of a shape
    drawn from ``dims``; ``masked``: about 40% of the entries -inf (never a row's first);
    ``axis`` None: the default."""

    dims: tuple = ()
    axis: int | None = None
    scale: float = 1.0
    offset: float = 0.0
    fixed: tuple | None = None
    masked: bool = False


@dataclass(frozen=True)
class SoftmaxCall:
    x: np.ndarray
    axis: int | None
    what: str


def _scores(case: Scores, seed: int) -> SoftmaxCall:
    if case.fixed is not None:
        x = np.array(case.fixed, dtype=np.float64)
    else:
        x = normal(seed, _shape(seed, case.dims), scale=case.scale) + case.offset
    if case.masked:
        hidden = rng(seed, 1).random(x.shape) < 0.4
        hidden[..., 0] = False
        x = np.where(hidden, -np.inf, x)
    shown = x.tolist() if x.size <= 8 else f"x of shape {x.shape}"
    what = f"softmax({shown}" + (")" if case.axis is None else f", axis={case.axis})")
    if case.scale >= 1000 or abs(case.offset) >= 1000:
        what += f" (scores of order {max(case.scale, abs(case.offset)):g})"
    return SoftmaxCall(x, case.axis, what)


SOFTMAX_HINT = "exp(x - max) divided by its sum along the given axis (keepdims=True)"


def _observe_softmax(student: Student, case: Scores, call: SoftmaxCall) -> dict:
    with np.errstate(all="ignore"):
        if call.axis is None:
            return {"p": student.call(SOFTMAX, call.x)}
        return {"p": student.call(SOFTMAX, call.x, axis=call.axis)}


def _judge_softmax(verdict: Verdict, case: Scores, call: SoftmaxCall) -> None:
    from autograder.reference import numpy_decoder as ref

    x, what = call.x, call.what
    dim = -1 if call.axis is None else call.axis
    found = _finite(verdict, "p", x.shape, what, "exp overflows or underflows for scores far "
                    "from 0; subtract the maximum along the axis before exponentiating")
    if found is None:
        return
    values = found.values.astype(np.float64)
    if not verdict.array("p", ref.softmax(x, dim), what, atol=1e-8, rtol=1e-5,
                         variants=lambda: ref.softmax_bugs(x, dim),
                         hint=SOFTMAX_HINT if call.axis is None else
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


softmax_check = partial(Check, exercise=SOFTMAX, inputs=_scores, observe=_observe_softmax,
                        judge=_judge_softmax)

softmax_basics = softmax_check("softmax_basics", cases=[  # the visible asserts, plus a seeded x
    Scores("visible", fixed=((1.0, 2.0, 3.0), (0.0, 0.0, 0.0))),
    Scores("visible, axis=0", fixed=((1.0,), (3.0,)), axis=0),
    Scores("visible, large scores", fixed=((1000.0, 0.0), (0.0, -1000.0))),
    Scores("seeded", ((2, 5), (2, 7)), scale=2.0),
])

softmax_values = softmax_check("softmax_values", cases=[
    Scores("a vector", ((2, 9),)),
    Scores("rows", ((2, 6), (2, 8)), scale=3.0),
    Scores("axis=0", ((2, 6), (2, 8)), axis=0),
    Scores("axis=-1", ((2, 6), (2, 8)), axis=-1, scale=5.0),
    Scores("3-D, axis=1", ((1, 3), (2, 5), (2, 6)), axis=1, scale=2.0),
    Scores("3-D, offset", ((1, 3), (2, 5), (2, 6)), offset=0.5),
    Scores("3-D, axis=0", ((2, 4), (2, 4), (2, 4)), axis=0),
    Scores("3-D, axis=-2", ((2, 4), (2, 4), (2, 4)), axis=-2, scale=1.5),
    Scores("one column", ((2, 7), 1)),
    Scores("one entry", fixed=((0.7,),)),
])

softmax_stability = softmax_check("softmax_stability", cases=[
    Scores("large scores", fixed=((1000.0, 1001.0, 1002.0), (-1000.0, -1001.0, -1003.0))),
    Scores("very large scores", fixed=((3e4, 0.0, -3e4, 2.99e4),), axis=-1),
    Scores("-inf entries", fixed=((0.0, -np.inf, 1.0, -np.inf), (-np.inf, 2.0, 2.0, 0.5))),
    Scores("-inf entries among large scores", fixed=((800.0, -np.inf, 805.0, 790.0),), axis=-1),
    Scores("scores around +-1e4", ((2, 6), (2, 8)), scale=1e4),
    Scores("scores around +-1e4, axis=0", ((2, 6), (2, 8)), axis=0, scale=1e4),
    Scores("all large: exp overflows", ((2, 4), (3, 8)), offset=1e4),
    Scores("all very negative: exp underflows", ((1, 3), (2, 4), (3, 8)), offset=-1e4),
    Scores("scores around +-1000, axis=0", ((2, 5), (2, 6)), axis=0, scale=1000.0),
    Scores("seeded -inf entries", ((2, 6), (3, 8)), scale=3.0, masked=True),
])


# --- layer_norm -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rows(Case):
    """``layer_norm`` of ``scale * N(0, 1) + offset`` of a shape drawn from ``dims``, with
    seeded gamma and beta; ``eps`` a float, None for the default, or "drawn" from the seed.
    ``visible``: the visible cell's x, with gamma, beta = ones, zeros and then 2s, ones."""

    dims: tuple = ()
    scale: float = 1.0
    offset: float = 0.0
    eps: float | str | None = None
    visible: bool = False


@dataclass(frozen=True)
class NormCall:
    field: str
    x: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    eps: float | None  # None: the default, omitted from the call
    what: str


LN_VISIBLE = ((1.0, 2.0, 3.0, 4.0), (0.0, 0.5, -0.5, 2.0))
LN_HINT = "(x - mean) / sqrt(var + eps) over the last axis (biased variance), then * gamma + beta"


def _rows(case: Rows, seed: int) -> tuple[NormCall, ...]:
    if case.visible:
        shown = [list(row) for row in LN_VISIBLE]
        return tuple(NormCall(field, np.array(LN_VISIBLE), gamma, beta, None,
                              f"layer_norm(x, {gamma.tolist()}, {beta.tolist()}) for x = {shown}")
                     for field, gamma, beta in (("y", np.ones(4), np.zeros(4)),
                                                ("scaled", np.full(4, 2.0), np.ones(4))))
    shape = _shape(seed, case.dims)
    x = normal(seed, shape, scale=case.scale) + case.offset
    gamma = 1 + 0.5 * normal(seed, shape[-1:], stream=1)
    beta = 0.5 * normal(seed, shape[-1:], stream=2)
    eps = round(uniform(seed, 0.01, 0.5), 4) if case.eps == "drawn" else case.eps
    what = "layer_norm(x, gamma, beta" + (")" if eps is None else f", eps={eps})")
    what += f" for x of shape {x.shape}"
    if case.scale < 0.1:
        what += f" (rows with a spread of about {case.scale:g}: eps matters)"
    if case.offset >= 10:
        what += f" (values around {case.offset:g})"
    return (NormCall("y", x, gamma, beta, eps, what),)


def _observe_layer_norm(student: Student, case: Rows, calls: tuple[NormCall, ...]) -> dict:
    return {c.field: student.call(LAYER_NORM, c.x, c.gamma, c.beta) if c.eps is None else
            student.call(LAYER_NORM, c.x, c.gamma, c.beta, eps=c.eps) for c in calls}


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


def _judge_layer_norm(verdict: Verdict, case: Rows, calls: tuple[NormCall, ...]) -> None:
    from autograder.reference import numpy_decoder as ref

    for c in calls:
        verdict.array(c.field, ref.layer_norm(c.x, c.gamma, c.beta, 1e-5 if c.eps is None
                                              else c.eps), c.what, atol=1e-8, rtol=1e-6,
                      library="numpy", variants=lambda c=c: _ln_variants(c.x, c.gamma, c.beta,
                                                                         c.eps),
                      hint=LN_HINT + ("; the default eps is 1e-5" if c.eps is None else ""))


layer_norm_check = partial(Check, exercise=LAYER_NORM, inputs=_rows,
                           observe=_observe_layer_norm, judge=_judge_layer_norm)

layer_norm_basics = layer_norm_check("layer_norm_basics", cases=[
    Rows("visible", visible=True), Rows("seeded", ((2, 5), (3, 9)), offset=0.5)])

layer_norm_values = layer_norm_check("layer_norm_values", cases=[
    Rows("eps=1e-5 passed", ((2, 6), (4, 12)), offset=0.5, eps=1e-5),
    Rows("small spread: the default eps changes the result", ((2, 5), (8, 20)), scale=0.01),
    Rows("var below eps: eps dominates", ((2, 5), (8, 20)), scale=0.001, offset=0.2),
    Rows("a drawn eps: is the eps argument used?", ((2, 5), (3, 8)), offset=0.5, eps="drawn"),
    Rows("a drawn eps, small spread", ((2, 5), (4, 10)), scale=0.05, eps="drawn"),
    Rows("a vector", ((3, 9),), scale=2.0, offset=0.5),
    Rows("3-D", ((1, 3), (2, 4), (4, 12)), offset=0.5),
    Rows("one long row", (1, (32, 64)), scale=0.3, eps=1e-5),
    Rows("values around 100", ((1, 3), (2, 3), (3, 8)), offset=100.0),
])


# --- gelu -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Activations(Case):
    """``gelu`` of ``fixed`` values, or of ``scale * N(0, 1)`` of a shape drawn from ``dims``;
    ``exact_zero``: the visible cell asserts gelu(0) == 0 exactly."""

    dims: tuple = ()
    scale: float = 1.0
    fixed: tuple | None = None
    exact_zero: bool = False


@dataclass(frozen=True)
class GeluCall:
    x: np.ndarray
    what: str


def _activations(case: Activations, seed: int) -> GeluCall:
    if case.fixed is None:
        x = normal(seed, _shape(seed, case.dims), scale=case.scale)
        return GeluCall(x, f"gelu(x) for x of shape {x.shape} (scale {case.scale:g})")
    x = np.array(case.fixed)
    return GeluCall(x, f"gelu({x.tolist()})" if x.size <= 8 else f"gelu(x) for {case.label}")


GELU_HINT = ("0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3))) elementwise, any shape; large "
             "inputs must stay finite (gelu(x) = x for large x, 0 for large negative x)")


def _observe_gelu(student: Student, case: Activations, call: GeluCall) -> dict:
    with np.errstate(all="ignore"):
        return {"y": student.call(GELU, call.x)}


def _judge_gelu(verdict: Verdict, case: Activations, call: GeluCall) -> None:
    from autograder.reference import numpy_decoder as ref

    x, what = call.x, call.what
    if not verdict.array("y", ref.gelu(x), what, atol=1e-6, rtol=1e-6, library="numpy",
                         variants=lambda: ref.gelu_bugs(x), hint=GELU_HINT):
        return
    if case.exact_zero:
        y = verdict.array_of("y", x.shape, what).values
        wrong = y[(x == 0) & (y != 0)]
        if wrong.size:
            verdict.fail(f"gelu(0) should be exactly 0, found {float(wrong[0])!r}")


gelu_check = partial(Check, exercise=GELU, inputs=_activations, observe=_observe_gelu,
                     judge=_judge_gelu)

gelu_basics = gelu_check("gelu_basics", cases=[
    Activations("visible", fixed=(-3.0, -1.0, 0.0, 0.5, 1.0, 2.7), exact_zero=True),
    Activations("seeded", ((3, 12),), scale=2.0),
])

gelu_values = gelu_check("gelu_values", cases=[
    Activations("linspace(-6, 6, 241)", fixed=tuple(np.linspace(-6.0, 6.0, 241).tolist())),
    Activations("rows", ((2, 6), (3, 10)), scale=2.0),
    Activations("3-D", ((1, 3), (2, 4), (2, 5)), scale=1.5),
    Activations("a single value", fixed=(1.3,)),
    Activations("large values", fixed=(-1000.0, -50.0, 50.0, 1000.0, 1e4, -1e4)),
    Activations("values of order 300", ((4, 12),), scale=300.0),
    Activations("small values", ((5, 20),), scale=0.3),
])


# --- multi_head_causal_attention -----------------------------------------------------------

@dataclass(frozen=True)
class Attention(Case):
    """``x`` of ``tokens`` rows and ``heads * head_dim`` columns with seeded weights, sizes
    fixed or drawn from ``(low, high)``; ``scale`` "extreme": x scaled so that the largest
    score is 1e4 in absolute value. ``t`` (causal cases): the last position whose outputs
    must not change, "t" for one drawn from the seed. ``visible``: the visible cell's inputs,
    and the same with 1 added to tokens 2 and 3; with a ``scale`` of 100, its x scaled by 100
    alone (scores of order 1e4)."""

    tokens: Size = 1
    heads: Size = 1
    head_dim: Size = 1
    scale: float | str = 1.0
    t: str | int | None = None
    visible: bool = False


@dataclass(frozen=True)
class AttentionCall:
    xs: dict            # field -> x: "out", and "changed" / "past" where the case asks
    W: tuple            # W_q, W_k, W_v, W_o
    heads: int
    t: int | None
    what: str

    @property
    def x(self) -> np.ndarray:
        return self.xs["out"]


ATTENTION_HINT = ("compare with F.scaled_dot_product_attention(is_causal=True) per head (head i "
                  "uses columns i*head_dim:(i+1)*head_dim), then the merged heads @ W_o")
EXTREME_SCORE = 1e4


def _past_changed(x: np.ndarray, seed: int) -> np.ndarray:
    """``x`` with the first token replaced: the last position attends to it."""
    changed = x.copy()
    changed[0] = normal(seed, x.shape[1:], stream=5001, scale=3.0)
    return changed


def _attention(case: Attention, seed: int) -> AttentionCall:
    if case.visible:
        g = np.random.default_rng(0)
        x = g.standard_normal((4, 6))
        W, h = tuple(g.standard_normal((6, 6)) / 2 for _ in range(4)), 2
        x = x * case.scale
    else:
        n, h, hd = size(seed, case.tokens, 1), size(seed, case.heads, 2), size(seed, case.head_dim, 3)
        W = tuple(_matrix(seed, h * hd, h * hd, stream=20 + k) for k in range(4))
        x = normal(seed, (n, h * hd))
        if case.scale == "extreme":
            q = (x @ W[0]).reshape(n, h, hd).transpose(1, 0, 2)
            k = (x @ W[1]).reshape(n, h, hd).transpose(1, 0, 2)
            largest = float(np.max(np.abs(q @ k.transpose(0, 2, 1)))) / math.sqrt(hd)
            x = x * math.sqrt(EXTREME_SCORE / largest)
        else:
            x = x * case.scale
    what = (f"multi_head_causal_attention(x, W_q, W_k, W_v, W_o, num_heads={h}) for x of shape "
            f"{x.shape}")
    if case.scale == "extreme":
        what += f" (scores up to {EXTREME_SCORE:g} in absolute value)"
    elif _large(case):
        what += f" (inputs scaled by {case.scale:g}: scores of order 1e4)"
    xs, t = {"out": x}, None
    if case.visible and case.scale == 1.0:  # the visible cell adds 1 to tokens 2 and 3
        xs["changed"] = x.copy()
        xs["changed"][2:] += 1.0
    elif case.t is not None:
        t = integer(seed, 0, len(x) - 2, 4) if case.t == "t" else case.t
        xs["changed"], xs["past"] = future_changed(x, t, seed), _past_changed(x, seed)
    return AttentionCall(xs, W, h, t, what)


def _large(case: Attention) -> bool:
    """The visible cell's inputs scaled so that the scores reach about 1e4."""
    return case.visible and case.scale != 1.0


def _observe_attention(student: Student, case: Attention, call: AttentionCall) -> dict:
    calls = {field: (x, _copy(call.W)) for field, x in call.xs.items()}
    with np.errstate(all="ignore"):
        return {field: student.call(ATTENTION, x, *W, call.heads)
                for field, (x, W) in calls.items()}


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


def _judge_attention(verdict: Verdict, case: Attention, call: AttentionCall) -> None:
    from autograder.reference import numpy_decoder as ref

    x, W, h, what = call.x, call.W, call.heads, call.what
    expected = {field: ref.attention(xs, *W, h) for field, xs in call.xs.items()}
    if call.t is not None:
        _judge_related(verdict, expected, call.t, what, "outputs", atol=1e-8, rtol=1e-5,
                       library="numpy")
        return
    cause = ("the scores are around +-1e4 here: the softmax must subtract the row maximum "
             "before exponentiating" if case.scale == "extreme" or _large(case) else
             "is the diagonal masked too (np.triu(..., k=1) keeps it visible; a row whose "
             "keys are all hidden gives 0 / 0), or does exp overflow in the softmax?")
    if _finite(verdict, "out", x.shape, what, cause) is None:
        return
    verdict.array("out", expected["out"], what, atol=1e-8, rtol=1e-5, library="numpy",
                  variants=lambda: ref.attention_bugs(x, *W, h), hint=ATTENTION_HINT)
    if "changed" in call.xs:  # the visible cell's change: every answer against the reference
        verdict.array("changed", expected["changed"], f"{what}, tokens 2 and 3 changed",
                      atol=1e-8, rtol=1e-5, library="numpy",
                      hint=causal_diagnosis(verdict, "out", "changed", expected["changed"], 1)
                      or ATTENTION_HINT)


attention_check = partial(Check, exercise=ATTENTION, inputs=_attention,
                          observe=_observe_attention, judge=_judge_attention, needs=(SOFTMAX,))

attention_basics = attention_check("attention_basics", cases=[
    Attention("visible", visible=True), Attention("visible, inputs scaled by 100", scale=100.0,
                                                  visible=True),
    Attention("seeded", (2, 7), (1, 3), (2, 4))])

attention_values = attention_check("attention_values", cases=[
    Attention("seeded", (3, 9), (2, 3), (2, 4)),
    Attention("one token", 1, (2, 4), (2, 3)),
    Attention("one head", (3, 8), 1, (3, 7)),
    Attention("inputs scaled by 1.5", (4, 12), (3, 5), (1, 3), scale=1.5),
    Attention("many tokens", (12, 16), (2, 4), (2, 4)),
    Attention("scores up to 1e4", (4, 10), (2, 4), (2, 4), scale="extreme"),
    Attention("scores up to 1e4, one head", (3, 6), 1, (2, 5), scale="extreme"),
])

attention_causal = attention_check("attention_causal", cases=[
    Attention("the future changed after a drawn t", (5, 9), (1, 3), (2, 4), t="t"),
    Attention("the future changed after a drawn t, several heads", (4, 8), (2, 3), (2, 4),
              t="t"),
    Attention("every token after the first changed", (3, 7), 1, (3, 6), t=0),
])


# --- decoder_forward and generate ---------------------------------------------------------------

@dataclass(frozen=True)
class Model(Case):
    """A decoder with sizes fixed or drawn from ``(low, high)``: ``vocab`` token ids,
    ``heads`` heads of ``head_dim`` (made even in total: d_model = heads * head_dim), ``d_ff``
    and ``tokens`` ids (the prompt's, for generate). ``visible``: the visible cell's weights
    and ids instead."""

    vocab: Size = 0
    heads: Size = 0
    head_dim: Size = 0
    d_ff: Size = 0
    tokens: Size = 0
    visible: bool = False


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


def _model(case: Model, seed: int) -> tuple[np.ndarray, dict, int]:
    """(token ids, params, num_heads) of a seeded case."""
    V, h = size(seed, case.vocab, 1), size(seed, case.heads, 2)
    hd, d_ff, n = _even_width(seed, h, case.head_dim), size(seed, case.d_ff, 4), size(seed, case.tokens, 5)
    return rng(seed, 6).integers(0, V, n), _params(seed, V, h * hd, d_ff), h


@dataclass(frozen=True)
class Decoding(Model):
    """``t`` (causal cases): the last position whose logits must not change, "t" for one
    drawn from the seed."""

    t: str | int | None = None


@dataclass(frozen=True)
class DecoderCall:
    ids: dict           # field -> token ids: "logits", or "out", "changed", "past" (causal)
    params: dict
    heads: int
    t: int | None
    what: str


def _visible_decoder_params() -> dict[str, np.ndarray]:
    V, d, d_ff = 10, 8, 16
    return {"W_emb": np.random.default_rng(1).standard_normal((V, d)),
            "ln1_gamma": np.ones(d), "ln1_beta": np.zeros(d), "ln2_gamma": np.ones(d),
            "ln2_beta": np.zeros(d), "W_q": np.zeros((d, d)), "W_k": np.zeros((d, d)),
            "W_v": np.zeros((d, d)), "W_o": np.zeros((d, d)), "W_1": np.zeros((d, d_ff)),
            "b_1": np.zeros(d_ff), "W_2": np.zeros((d_ff, d)), "b_2": np.zeros(d)}


def _decoding(case: Decoding, seed: int) -> DecoderCall:
    if case.visible:
        ids, params, h = np.array([3, 0, 9, 3]), _visible_decoder_params(), 2
    else:
        ids, params, h = _model(case, seed)
    (V, d), n = params["W_emb"].shape, len(ids)
    what = (f"decoder_forward(token_ids, params, num_heads={h}) for {n} token(s), "
            f"vocab_size={V}, d_model={d}, d_ff={params['W_1'].shape[1]}")
    if case.t is None:
        return DecoderCall({"logits": ids}, params, h, None, what)
    t = integer(seed, 0, n - 2, 7) if case.t == "t" else case.t
    changed = ids.copy()  # every id after position t replaced by a different one
    changed[t + 1:] = (ids[t + 1:] + rng(seed, 8).integers(1, V, n - t - 1)) % V
    past = ids.copy()  # the first id replaced by a different one
    past[0] = (ids[0] + integer(seed, 1, V - 1, 9)) % V
    return DecoderCall({"out": ids, "changed": changed, "past": past}, params, h, t, what)


def _observe_decoder(student: Student, case: Decoding, call: DecoderCall) -> dict:
    calls = {field: (ids, _copy(call.params)) for field, ids in call.ids.items()}
    with np.errstate(all="ignore"):
        return {field: student.call(DECODER, ids, params, call.heads)
                for field, (ids, params) in calls.items()}


DECODER_HINT = ("check the wiring: pre-LN residual branches, the positional encoding, "
                "logits = h @ W_emb.T; if the four functions above pass, compare step by step "
                "with a PyTorch decoder holding the same weights")
DECODER_TOLERANCE = {"atol": 1e-8, "rtol": 1e-5, "library": "numpy"}


def _judge_decoder(verdict: Verdict, case: Decoding, call: DecoderCall) -> None:
    from autograder.reference import numpy_decoder as ref

    params, h = call.params, call.heads
    model = ref.TorchDecoder.from_params(params, h)
    expected = {field: ref.logits(model, ids) for field, ids in call.ids.items()}
    if call.t is not None:
        _judge_related(verdict, expected, call.t, call.what, "logits", **DECODER_TOLERANCE)
        return
    hint = DECODER_HINT
    if case.visible:
        hint = ("with zero attention and MLP weights both residual branches add 0, so logits = "
                "(W_emb[ids] + pe) @ W_emb.T: check the embedding, the positional encoding, the "
                "residuals and the tied output")
    ids = call.ids["logits"]
    verdict.array("logits", expected["logits"], call.what, **DECODER_TOLERANCE,
                  variants=lambda: ref.decoder_bugs(ids, params, h), hint=hint)


decoder_check = partial(Check, exercise=DECODER, inputs=_decoding, observe=_observe_decoder,
                        judge=_judge_decoder, needs=(SOFTMAX, LAYER_NORM, GELU, ATTENTION))

decoder_basics = decoder_check("decoder_basics", cases=[
    Decoding("visible: zero attention and MLP weights", visible=True),
    Decoding("seeded", (6, 14), 2, (2, 4), (8, 32), (3, 8)),
])

decoder_values = decoder_check("decoder_values", cases=[
    Decoding("two heads", (6, 14), 2, (2, 4), (16, 32), (4, 9)),
    Decoding("three heads", (5, 9), 3, (2, 4), (12, 24), (6, 12)),
    Decoding("one token", (4, 8), 1, (4, 8), (8, 16), 1),
    Decoding("many tokens", (9, 16), 2, (2, 3), (12, 24), (10, 14)),
    Decoding("four heads", (15, 24), 4, (2, 4), (32, 64), (6, 12)),
])

decoder_causal = decoder_check("decoder_causal", cases=[
    Decoding("the ids after a drawn t changed", (6, 12), 2, (2, 4), (8, 24), (6, 10), t="t"),
    Decoding("the ids after a drawn t changed, three heads", (4, 8), 3, (2, 4), (12, 24),
             (4, 7), t="t"),
    Decoding("every id after the first changed", (6, 10), 1, (4, 6), (8, 16), (3, 5), t=0),
])


@dataclass(frozen=True)
class Generation(Model):
    """``new`` (max_new_tokens): fixed or drawn; ``prompt``: the visible cell's."""

    new: Size = 0
    prompt: tuple[int, ...] = ()


@dataclass(frozen=True)
class GenerateCall:
    prompt: list
    params: dict
    heads: int
    new: int

    @property
    def what(self) -> str:
        return (f"generate({self.prompt}, params, num_heads={self.heads}, max_new_tokens="
                f"{self.new}) (vocab_size={len(self.params['W_emb'])})")


def _visible_generate_params() -> dict[str, np.ndarray]:
    g = np.random.default_rng(2)
    V, d, d_ff = 12, 8, 32
    return {"W_emb": g.standard_normal((V, d)), "ln1_gamma": np.ones(d), "ln1_beta": np.zeros(d),
            "ln2_gamma": np.ones(d), "ln2_beta": np.zeros(d), "b_1": np.zeros(d_ff),
            "b_2": np.zeros(d),
            **{k: g.standard_normal((d, d)) / 2 for k in ("W_q", "W_k", "W_v", "W_o")},
            "W_1": g.standard_normal((d, d_ff)) / 2, "W_2": g.standard_normal((d_ff, d)) / 4}


def _generation(case: Generation, seed: int) -> GenerateCall:
    if case.visible:
        return GenerateCall(list(case.prompt), _visible_generate_params(), 2, case.new)
    ids, params, h = _model(case, seed)
    new = size(seed, case.new, 6)
    return GenerateCall([int(i) for i in ids], params, h, new)


def _observe_generate(student: Student, case: Generation, call: GenerateCall) -> dict:
    with np.errstate(all="ignore"):
        return {"ids": student.call(GENERATE, call.prompt, call.params, call.heads, call.new)}


def _judge_generate(verdict: Verdict, case: Generation, call: GenerateCall) -> None:
    from autograder.reference import numpy_decoder as ref

    prompt, params, h, k, what = call.prompt, call.params, call.heads, call.new, call.what
    V = len(params["W_emb"])
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
    model = ref.TorchDecoder.from_params(params, h)
    for i in range(len(prompt), len(found)):
        logits = ref.logits(model, found[:i])[-1]
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


generate_check = partial(Check, exercise=GENERATE, inputs=_generation,
                         observe=_observe_generate, judge=_judge_generate, needs=(DECODER,))

generate_basics = generate_check("generate_basics", cases=[
    Generation("visible", visible=True, prompt=(3, 1, 4), new=5),
    Generation("visible, no new tokens", visible=True, prompt=(5,), new=0),
    Generation("seeded", (8, 14), 2, (2, 4), (16, 32), (2, 4), new=(3, 6)),
])

generate_contract = generate_check("generate_contract", cases=[
    Generation("a longer prompt", (8, 14), 2, (2, 4), (16, 32), (3, 5), new=(6, 9)),
    Generation("a prompt of one token", (6, 10), 3, (2, 4), (12, 24), 1, new=(4, 7)),
    Generation("no new tokens", (10, 16), 1, (4, 8), (8, 16), (2, 4), new=0),
    Generation("one new token", (6, 10), 2, (2, 3), (8, 16), (1, 3), new=1),
    Generation("many new tokens, four heads", (12, 20), 4, (2, 4), (16, 32), (5, 8),
               new=(8, 10)),
])
