"""Hidden checks for 06-rope (split-halves, "rotate half" convention).

Every size, input, angle table and weight is a pure function of ``(case, seed)``: observe
makes the calls a case asks for with the student's code, judge rebuilds the same inputs and
compares the answers with ``autograder.reference.rope`` (complex multiplication in float64,
attention on ``F.scaled_dot_product_attention``). ``compute_rope`` is handed tables the
grader built (random angles in some cases), so it is judged on its own; the RoPE attention
modules are built with the grader's weights loaded by the contract's attribute paths.

Points and claims (spec section 6): every point rests on answers compared with the reference;
the relative-position and norm properties and causality only name the bug, and
``rope_dtypes`` compares with the reference (not with the learner's own float32 call). The
mask buffer is judged by behaviour (the grader's windowed mask swapped into the registered
``mask`` buffer). Claims, read with unbound ``nn.Module`` methods and judged beside passing
outputs of the same case: the buffer and parameter names, the layer types, ``d_out``,
``num_heads``, ``head_dim``, the mask's shape and the meta-device forward
(``rope_mha_basics``, ``rope_mha_contract``).
"""

from __future__ import annotations

import numpy as np
import torch

from autograder.checks import Check, Student, Verdict
from autograder.checks._common import (
    MASK_FOLLOWS_HINT,
    _peek,
    causal_diagnosis,
    forward,
    future_changed,
    integer,
    linear,
    mask_window,
    meta_forward,
    randn,
    rng,
    size,
    swapped_mask_forward,
    uniform,
    window_hidden,
)

ASSIGNMENT = "06-rope"

PRE = "precompute_rope_params"
ROPE = "compute_rope"
MHA = "RoPEMultiHeadAttention"
LAYERS = ("W_query", "W_key", "W_value", "out_proj")
DEFAULT_BASE = 10000.0
DEFAULT_CONTEXT = 4096
MHA_NEEDS = (ROPE, PRE)  # RoPEMultiHeadAttention builds its tables and rotates with these


def _base(seed: int, stream: int = 7) -> float:
    """A theta_base drawn log-uniformly between about 30 and 10**6."""
    return round(10 ** uniform(seed, 1.5, 6.0, stream), 1)


def _label(exercise: str):
    return lambda case: f"{exercise} [{case[0]}]"


# --- precompute_rope_params -----------------------------------------------------------------

def _pre_call(case: tuple, seed: int) -> tuple[tuple, dict]:
    """The arguments of a case's call: ("fixed", args, kwargs), or ("seeded", half range,
    base (None: default, "seeded"), context length (None: default, or a range), positional)."""
    _, kind, *spec = case
    if kind == "fixed":
        args, kwargs = spec
        return tuple(args), dict(kwargs)
    halves, base, lengths, positional = spec
    head_dim = 2 * size(seed, halves, 0)
    base = None if base is None else _base(seed)
    length = None if lengths is None else size(seed, lengths, 1)
    if positional:
        return (head_dim, base, length), {}
    kwargs = {k: v for k, v in (("theta_base", base), ("context_length", length)) if v is not None}
    return (head_dim,), kwargs


def _pre_resolve(args: tuple, kwargs: dict) -> tuple[int, float, int]:
    """(head_dim, theta_base, context_length) with the contract's defaults filled in."""
    full = dict(zip(("head_dim", "theta_base", "context_length"), args, strict=False), **kwargs)
    return (full["head_dim"], full.get("theta_base", DEFAULT_BASE),
            full.get("context_length", DEFAULT_CONTEXT))


def _pre_rows(context_length: int, seed: int) -> list[int] | None:
    """Every row of a small table; the ends and rows drawn from the seed of a large one."""
    if context_length <= 512:
        return None
    drawn = {integer(seed, 3, context_length - 2, 10 + i) for i in range(6)}
    return sorted({0, 1, 2, context_length - 1} | drawn)


def _pre_what(args: tuple, kwargs: dict) -> str:
    text = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    return f"{PRE}({text})"


def _pair(result):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"{PRE} returned {type(result).__name__}; expected a pair (cos, sin)")
    return result


def _observe_tables(student: Student, args: tuple, kwargs: dict, rows, prefix: str = "") -> dict:
    """``<prefix>cos shape``, ``<prefix>cos`` (the rows compared), the same for sin."""
    holder = {}

    def call(index: int):
        if "pair" not in holder:
            holder["pair"] = _pair(student.get(PRE)(*args, **kwargs))
        return list(holder["pair"][index].shape)

    seen = {}
    for index, name in enumerate(("cos", "sin")):
        seen[f"{prefix}{name} shape"] = Student.attempt(lambda i=index: call(i))
        seen[f"{prefix}{name}"] = Student.attempt(
            lambda i=index: holder["pair"][i] if rows is None else holder["pair"][i][rows])
    return seen


def _judge_tables(verdict: Verdict, args: tuple, kwargs: dict, rows, prefix: str = "") -> None:
    from autograder.reference.rope import table_bugs

    head_dim, base, length = _pre_resolve(args, kwargs)
    positions = np.arange(length) if rows is None else np.asarray(rows)
    expected, bugs = table_bugs(positions, head_dim, base)
    # float32 angles p * inv_freq are off by about 1e-7 * p (2e-4 at p = 4095; float64 then
    # cast is exact to 6e-8): a tolerance that grows with the last position compared
    atol = 2e-7 + 5e-7 * float(positions.max())
    what = _pre_what(args, kwargs)
    for index, name in enumerate(("cos", "sin")):
        if not verdict.equal(f"{prefix}{name} shape", [length, head_dim],
                             f"{what}: the shape of {name}",
                             hint="one row per position 0..context_length-1, and the "
                                  "head_dim / 2 angles duplicated as [angles, angles]"):
            continue
        where = "" if rows is None else f" at rows {list(rows)}"
        verdict.array(f"{prefix}{name}", expected[index], f"{what}: {name}{where}", atol=atol,
                      rtol=1e-6, dtype="float32", library="torch",
                      variants={label: pair[index] for label, pair in bugs.items()},
                      hint="inv_freq[i] = theta_base ** (-2i / head_dim), angles[p] = p * "
                           "inv_freq for p = 0 .. context_length - 1, tables cos and sin of "
                           "[angles, angles], float32")


def _observe_pre(student: Student, case: tuple, seed: int) -> dict:
    args, kwargs = _pre_call(case, seed)
    return _observe_tables(student, args, kwargs, _pre_rows(_pre_resolve(args, kwargs)[2], seed))


def _judge_pre(verdict: Verdict, case: tuple, seed: int) -> None:
    args, kwargs = _pre_call(case, seed)
    _judge_tables(verdict, args, kwargs, _pre_rows(_pre_resolve(args, kwargs)[2], seed))


precompute_basics = Check(  # the visible call, plus sizes drawn from the seed
    "precompute_basics", exercise=PRE, label=_label(PRE),
    cases=[("the visible call", "fixed", (4,), {"context_length": 3}),
           ("seeded", "seeded", (1, 6), None, (1, 12), False)])
precompute_basics.observe(_observe_pre)
precompute_basics.judge(_judge_pre)

precompute_values = Check(
    "precompute_values", exercise=PRE, label=_label(PRE),
    cases=[("head_dim 2", "fixed", (2,), {"context_length": 5}),
           ("one row", "seeded", (1, 8), None, 1, False),
           ("all positional", "seeded", (2, 12), "seeded", (8, 64), True),
           ("theta_base and context_length by keyword", "seeded", (1, 8), "seeded", (2, 40),
            False),
           ("default theta_base and context_length (4096 rows)", "seeded", (8, 40), None, None,
            False),
           ("theta_base 500000, 4096 rows", "fixed", (128,),
            {"theta_base": 500000.0, "context_length": 4096}),
           ("long table, seeded theta_base", "seeded", (4, 32), "seeded", (600, 3000), False)])
precompute_values.observe(_observe_pre)
precompute_values.judge(_judge_pre)


def _odd_call(case: tuple, seed: int) -> tuple[tuple, dict]:
    _, kind, *spec = case
    if kind == "fixed":
        return tuple(spec[0]), dict(spec[1])
    head_dim = 2 * integer(seed, 0, 40) + 1
    return (head_dim,), {"context_length": integer(seed, 1, 64, 1)}


def _valid_call(seed: int) -> tuple[tuple, dict]:
    return (2 * integer(seed, 1, 4, 3),), {"context_length": integer(seed, 1, 6, 4)}


precompute_errors = Check(
    "precompute_errors", exercise=PRE, label=_label(PRE),
    cases=[("head_dim 7", "fixed", (7,), {}), ("head_dim 5", "fixed", (5,), {"context_length": 8}),
           ("head_dim 1", "fixed", (1,), {"context_length": 4}), ("odd head_dim", "seeded")])


@precompute_errors.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    args, kwargs = _odd_call(case, seed)
    seen = {"error": Student.attempt(lambda: student.get(PRE)(*args, **kwargs))}
    seen.update(_observe_tables(student, *_valid_call(seed), None, prefix="valid "))
    return seen  # the valid call: a function that always raises does not pass


@precompute_errors.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    args, kwargs = _odd_call(case, seed)
    verdict.raises("error", f"{_pre_what(args, kwargs)} (head_dim is odd)", "ValueError",
                   mentions="head_dim")
    _judge_tables(verdict, *_valid_call(seed), None, prefix="valid ")


# --- compute_rope -----------------------------------------------------------------------------

VISIBLE = "visible"  # the inputs of the visible grade cell
ROPE_HINT = ("out = x * cos + cat(-x2, x1) * sin, with cos/sin sliced to the first seq_len rows "
             "(x is (batch, num_heads, seq_len, head_dim))")


def _rope_inputs(case: tuple, seed: int, dtype=torch.float32):
    """``x`` (a torch tensor of ``dtype``) and the angles ``(rows, head_dim // 2)`` (float64)
    of the tables handed to compute_rope. ``case``: (name, spec) with spec "visible" or
    (batch, heads, seq_len, head_dim / 2, extra rows, angles), each an int or a range; angles
    a theta_base, "base" (drawn) or "random"."""
    spec = case[1]
    if spec == VISIBLE:
        x = torch.randn(1, 1, 3, 4, generator=torch.Generator().manual_seed(0))
        angles = (torch.arange(3.0)[:, None] * torch.tensor([1.0, 0.01])).double().numpy()
        return x.to(dtype), np.concatenate([angles, angles])  # a table of 6 rows for 3 tokens
    batch, heads, n, half, extra, kind = spec
    shape = tuple(size(seed, v, i) for i, v in enumerate((batch, heads, n)))
    half = size(seed, half, 3)
    rows = shape[-1] + size(seed, extra, 4)
    if kind == "random":
        angles = rng(seed, 8).uniform(-np.pi, np.pi, (rows, half))
    else:
        base = _base(seed) if kind == "base" else float(kind)
        omega = base ** (-np.arange(0, 2 * half, 2) / (2 * half))
        angles = np.arange(rows, dtype=np.float64)[:, None] * omega[None, :]
    return randn(seed, shape + (2 * half,), stream=1).to(dtype), angles


def _tables(angles: np.ndarray, columns: int | None = None):
    """float32 cos/sin tables of duplicated angles (``columns`` trims or pads them)."""
    full = np.concatenate([angles, angles], axis=-1)
    if columns is not None:
        full = np.resize(full, (full.shape[0], columns))
    return (torch.tensor(np.cos(full), dtype=torch.float32),
            torch.tensor(np.sin(full), dtype=torch.float32))


def _rope_what(x, angles: np.ndarray, name: str) -> str:
    return (f"{ROPE}(x, cos, sin) for x of shape {tuple(x.shape)}, {str(x.dtype)[6:]} ({name}), "
            f"cos/sin of {angles.shape[0]} rows")


def _observe_rope(student: Student, case: tuple, seed: int) -> dict:
    x, angles = _rope_inputs(case, seed)
    return {"out": student.call(ROPE, x, *_tables(angles))}


def _judge_rope(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference.rope import rope_bugs, rotate

    x, angles = _rope_inputs(case, seed)
    x64 = x.double().numpy()
    tight = case[1] == VISIBLE  # the visible cell compares with atol=1e-6
    verdict.array("out", rotate(x64, angles[: x.shape[-2]]), _rope_what(x, angles, case[0]),
                  atol=1e-6 if tight else 1e-5, rtol=1e-5, dtype="float32", library="torch",
                  variants=lambda: rope_bugs(x64, angles), hint=ROPE_HINT)


rope_basics = Check(
    "rope_basics", exercise=ROPE, label=_label(ROPE),
    cases=[("the visible example", VISIBLE),
           ("seeded", ((1, 2), (1, 3), (2, 6), (1, 4), (1, 4), DEFAULT_BASE))])
rope_basics.observe(_observe_rope)
rope_basics.judge(_judge_rope)

rope_values = Check(
    "rope_values", exercise=ROPE, label=_label(ROPE),
    cases=[("tables longer than seq_len", ((1, 3), (1, 4), (2, 9), (1, 6), (1, 12), DEFAULT_BASE)),
           ("a table of exactly seq_len rows", (1, (2, 4), (2, 8), (1, 5), 0, DEFAULT_BASE)),
           ("one token", ((1, 3), (1, 3), 1, (1, 6), (0, 8), DEFAULT_BASE)),
           ("head_dim 2", ((1, 2), (1, 3), (2, 9), 1, (0, 4), DEFAULT_BASE)),
           ("more heads than tokens", ((1, 2), (5, 8), (1, 4), (2, 5), (4, 10), DEFAULT_BASE)),
           ("tables for a theta_base drawn from the seed", ((1, 2), (1, 4), (2, 10), (2, 8),
                                                            (0, 6), "base")),
           ("tables of random angles", ((1, 2), (1, 3), (2, 10), (1, 6), (0, 4), "random")),
           ("4096 tokens", (1, 1, 4096, (1, 3), 0, DEFAULT_BASE))])
rope_values.observe(_observe_rope)
rope_values.judge(_judge_rope)


# --- compute_rope: properties ---------------------------------------------------------------

def _relative_setup(seed: int):
    """(head_dim, theta_base, positions): three starts across 4096 positions, each with the
    two positions an offset drawn from the seed after it."""
    head_dim = 2 * integer(seed, 4, 12)
    offset = integer(seed, 1, 5, 1)
    starts = [integer(seed, 0, 60, 2), integer(seed, 1000, 2000, 3), integer(seed, 3000, 4080, 4)]
    positions = sorted({s + k * offset for s in starts for k in range(3)})
    return head_dim, _base(seed), positions


def _relative_what(head_dim: int, base: float) -> str:
    return (f"{ROPE} on one query and one key repeated at 4096 positions (head_dim {head_dim}, "
            f"tables for theta_base {base})")


rope_properties = Check(
    "rope_properties", exercise=ROPE, label=_label(ROPE),
    cases=[("scores depend only on the offset", "relative"), ("lengths are preserved", "norm")])


@rope_properties.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    if case[1] == "norm":
        x = randn(seed, (2, 3, 64, 2 * integer(seed, 2, 10)), stream=1)
        angles = rng(seed, 8).uniform(-np.pi, np.pi, (64, x.shape[-1] // 2))
        return {"out": student.call(ROPE, x, *_tables(angles))}
    head_dim, base, positions = _relative_setup(seed)
    omega = base ** (-np.arange(0, head_dim, 2) / head_dim)
    cos, sin = _tables(np.arange(4096, dtype=np.float64)[:, None] * omega[None, :])
    holder = {}

    def call(name: str, stream: int):
        vector = randn(seed, (head_dim,), stream=stream)
        holder[name] = student.get(ROPE)(vector.expand(1, 1, 4096, head_dim).contiguous(), cos,
                                         sin)
        return list(holder[name].shape)

    seen = {}
    for name, stream in (("q", 2), ("k", 3)):
        seen[f"{name} shape"] = Student.attempt(lambda n=name, s=stream: call(n, s))
        seen[name] = Student.attempt(lambda n=name: holder[n][0, 0, positions])
    return seen


@rope_properties.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference.rope import angles as reference_angles
    from autograder.reference.rope import rotate

    if case[1] == "norm":
        x = randn(seed, (2, 3, 64, 2 * integer(seed, 2, 10)), stream=1).double().numpy()
        what = f"{ROPE} on x of shape {x.shape} with tables of random angles"
        angles = rng(seed, 8).uniform(-np.pi, np.pi, (64, x.shape[-1] // 2))
        hint = ROPE_HINT
        out = _peek(verdict, "out")
        if out is not None and out.shape == x.shape:  # the property names the bug, no more
            before, after = np.linalg.norm(x, axis=-1), np.linalg.norm(out, axis=-1)
            gap = np.abs(after - before)
            gap = np.where(np.isfinite(gap), gap, np.inf)
            worst = np.unravel_index(int(np.argmax(gap)), gap.shape)
            if gap[worst] > 1e-4:
                hint = (f"a rotation keeps every head vector's length, but at (batch, head, "
                        f"position) = {tuple(int(i) for i in worst)} the length went from "
                        f"{before[worst]:.5g} to {after[worst]:.5g}: rotate_half mixes "
                        "dimensions of different pairs, or the two dimensions of a pair (i, i + "
                        "head_dim/2) get cos/sin of different angles")
        verdict.array("out", rotate(x, angles), what, atol=1e-5, rtol=1e-5, library="torch",
                      hint=hint)
        return
    head_dim, base, positions = _relative_setup(seed)
    what = _relative_what(head_dim, base)
    if not (verdict.equal("q shape", [1, 1, 4096, head_dim], f"{what}: the shape of rope(q)")
            & verdict.equal("k shape", [1, 1, 4096, head_dim], f"{what}: the shape of rope(k)")):
        return
    found = {name: verdict.array_of(name, (len(positions), head_dim),
                                    f"{what}: rope({name}) at positions {positions}").values
             for name in ("q", "k")}
    scores = found["q"] @ found["k"].T
    q = randn(seed, (head_dim,), stream=2).double().numpy()
    k = randn(seed, (head_dim,), stream=3).double().numpy()
    theta = reference_angles(positions, head_dim, base).numpy()
    expected = (rotate(np.broadcast_to(q, (len(positions), head_dim)), theta)
                @ rotate(np.broadcast_to(k, (len(positions), head_dim)), theta).T)
    tol = 1e-4 * float(np.linalg.norm(q) * np.linalg.norm(k))
    # the points: rope(q) and rope(k) against the reference; the relative-position property
    # of their scores only names the bug
    both = True
    for name, vector in (("q", q), ("k", k)):
        both &= verdict.array(name, rotate(np.broadcast_to(vector, (len(positions), head_dim)),
                                           theta),
                              f"{what}: rope({name}) at positions {positions}", atol=1e-5,
                              rtol=1e-5, library="torch", hint=ROPE_HINT)
    if both:
        return
    if not np.isfinite(scores).all():
        verdict.fail(f"{what}: the scores rope(q)_m . rope(k)_n are not all finite")
        return
    offsets = np.subtract.outer(positions, positions)
    for offset in sorted(set(offsets.ravel().tolist()), key=abs):
        values = scores[offsets == offset]
        if values.size > 1 and values.max() - values.min() > tol:
            pairs = np.argwhere(offsets == offset)
            low = pairs[int(np.argmin(values))]
            high = pairs[int(np.argmax(values))]
            verdict.fail(
                f"relative position: rope(q)_m . rope(k)_n should depend only on m - n, but for "
                f"m - n = {offset} the score is {values.min():.5g} at (m, n) = "
                f"({positions[low[0]]}, {positions[low[1]]}) and {values.max():.5g} at "
                f"({positions[high[0]]}, {positions[high[1]]}). Likely cause: each pair (i, "
                "i + head_dim/2) must be rotated by one angle p * omega_i (split halves, cos "
                "then sin)")
            return
    gap = float(np.max(np.abs(scores - expected)))
    if gap <= tol:
        return
    message = (f"{what}: the scores rope(q)_m . rope(k)_n depend only on m - n, but differ from "
               f"RoPE's by up to {gap:.3g}")
    if np.allclose(scores, float(q @ k), atol=tol):
        message += ": they equal q . k at every offset, so nothing is rotated"
    else:
        message += ". Likely cause: the rotation angle or its direction (rotate_half is "\
                   "cat(-x2, x1))"
    verdict.fail(message)


# --- compute_rope: dtypes ---------------------------------------------------------------------

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


def _dtype_case(case: tuple) -> tuple:
    return (case[0], ((1, 3), (1, 3), (2, 12), (1, 6), (0, 6), DEFAULT_BASE))


rope_dtypes = Check("rope_dtypes", exercise=ROPE, label=_label(ROPE),
                    cases=[("bfloat16",), ("float16",), ("float64",)])


@rope_dtypes.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    x, angles = _rope_inputs(_dtype_case(case), seed, DTYPES[case[0]])
    return {"out": student.call(ROPE, x, *_tables(angles))}


@rope_dtypes.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    """The result has x's dtype and equals the reference (float64, from the same float32
    tables) up to that dtype's rounding."""

    name = case[0]
    x, angles = _rope_inputs(_dtype_case(case), seed, DTYPES[name])
    what = _rope_what(x, angles, "float32 tables")
    found = verdict.array_of("out", tuple(x.shape), what, library="torch",
                             hint="the result has the shape of x")
    if found.dtype != name:
        verdict.fail(f"{what} returned {found.dtype}; expected {name}, the dtype of x (float32 "
                     "cos/sin promote the result: cast it back with .to(x.dtype))")
        return
    x64 = x.double().numpy()
    cos, sin = (t.double().numpy()[: x.shape[-2]] for t in _tables(angles))
    half = x64.shape[-1] // 2
    expected = x64 * cos + np.concatenate([-x64[..., half:], x64[..., :half]], axis=-1) * sin
    # one rounding of the tables, two products and a sum in x's dtype (float32 at best: the
    # tables are float32), or float32 arithmetic cast back
    eps = float(torch.finfo(torch.float32 if name == "float64" else x.dtype).eps)
    # any rotation of x mixes at most two of its numbers: the largest of a row bounds them
    tol = 6 * eps * np.abs(x64).max(axis=-1, keepdims=True) + 1e-3 * eps
    error = np.abs(found.values.astype(np.float64) - expected)
    error = np.where(np.isfinite(error), error, np.inf)
    if np.all(error <= tol):
        verdict.ok("out")
        return
    excess = error - tol
    index = np.unravel_index(int(np.argmax(excess)), error.shape)
    verdict.fail(f"{what} differs from the reference by more than {name} rounding: at index "
                 f"{tuple(int(i) for i in index)} found {found.values[index]:.6g}, expected "
                 f"{expected[index]:.6g} (tolerance {float(tol[index[:-1]][0]):.2g}): rotate x * cos + "
                 "rotate_half(x) * sin in float32 and cast the result back with .to(x.dtype)")


# --- compute_rope: errors ---------------------------------------------------------------------

def _error_inputs(case: tuple, seed: int):
    """(why, x, cos, sin) of an error case: ("fixed", why, x shape, rows, columns) or a seeded
    kind: "short" (seq_len past the rows), "odd", "columns" (last dims differ)."""
    name, kind, *spec = case
    if kind == "fixed":
        shape, rows, columns = spec
    elif kind == "short":
        rows = integer(seed, 1, 10)
        shape, columns = (1, integer(seed, 1, 3, 1), rows + integer(seed, 1, 5, 2), 4), 4
    elif kind == "odd":
        columns = 2 * integer(seed, 1, 6) + 1
        shape, rows = (integer(seed, 1, 2, 1), 2, integer(seed, 1, 5, 2), columns), 8
    else:
        half = integer(seed, 1, 4)
        columns = 2 * half + 2 * integer(seed, 1, 3, 1) * (1 if integer(seed, 0, 1, 2) else -1)
        columns = columns if columns > 0 else 2 * half + 2
        shape, rows = (1, 2, integer(seed, 1, 5, 3), 2 * half), 8
    x = randn(seed, shape, stream=1)
    angles = rng(seed, 8).uniform(-np.pi, np.pi, (rows, (columns + 1) // 2))
    return name, x, *_tables(angles, columns)


ROPE_ERRORS = [
    ("head_dim is odd", "fixed", (1, 1, 3, 5), 8, 5),
    ("seq_len 9 exceeds the 8 rows of cos", "fixed", (1, 1, 9, 4), 8, 4),
    ("seq_len 5 exceeds the single row of cos", "fixed", (1, 2, 5, 4), 1, 4),
    ("x has head_dim 4 but cos/sin have 6 columns", "fixed", (1, 1, 3, 4), 8, 6),
    ("x has head_dim 8 but cos/sin have 4 columns", "fixed", (1, 1, 3, 8), 8, 4),
    ("seq_len exceeds the rows of cos", "short"),
    ("head_dim is odd", "odd"),
    ("the last dims of x and cos/sin differ", "columns"),
]
VALID = ("a valid call", ((1, 2), (1, 3), (2, 6), (1, 4), (0, 4), "random"))

rope_errors = Check("rope_errors", exercise=ROPE, label=_label(ROPE), cases=ROPE_ERRORS)


@rope_errors.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    _, x, cos, sin = _error_inputs(case, seed)
    seen = {"error": student.call(ROPE, x, cos, sin)}
    seen.update(valid=_observe_rope(student, VALID, seed)["out"])  # it does not always raise
    return seen


@rope_errors.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference.rope import rotate

    why, x, cos, _ = _error_inputs(case, seed)
    verdict.raises("error", f"{ROPE}(x, cos, sin) when {why} (x {tuple(x.shape)}, cos/sin "
                   f"{tuple(cos.shape)})", "ValueError")
    valid, angles = _rope_inputs(VALID, seed)
    verdict.array("valid", rotate(valid.double().numpy(), angles[: valid.shape[-2]]),
                  _rope_what(valid, angles, "valid"), atol=1e-5, rtol=1e-5, dtype="float32",
                  library="torch", hint=ROPE_HINT)


# --- RoPEMultiHeadAttention -------------------------------------------------------------------

def _config(case: tuple, seed: int) -> dict:
    """A module configuration and its input. ``case``: (name, spec); spec values are ints,
    ranges, or: bias None (qkv_bias omitted) / True / False, base None (theta_base omitted) /
    "seeded", dropout a float or a range of floats (train mode), scale of x."""
    spec = dict(case[1])
    cfg = {}
    for stream, key in enumerate(("d_in", "heads", "half", "n", "extra", "batch")):
        cfg[key] = size(seed, spec[key], 20 + stream)
    cfg["head_dim"] = 2 * cfg["half"]
    cfg["d_out"] = cfg["heads"] * cfg["head_dim"]
    cfg["ctx"] = cfg["n"] + cfg["extra"]
    dropout = spec.get("dropout", 0.0)
    cfg["dropout"] = dropout if isinstance(dropout, float) else round(uniform(seed, *dropout, 3), 2)
    cfg["bias"] = spec.get("bias")
    cfg["base"] = None if spec.get("base") is None else _base(seed)
    cfg["scale"] = spec.get("scale", 1.0)
    return cfg


def _args(cfg: dict) -> tuple[tuple, dict]:
    kwargs = {}
    if cfg["bias"] is not None:
        kwargs["qkv_bias"] = cfg["bias"]
    if cfg["base"] is not None:
        kwargs["theta_base"] = cfg["base"]
    return (cfg["d_in"], cfg["d_out"], cfg["ctx"], cfg["dropout"], cfg["heads"]), kwargs


def _weights(cfg: dict, seed: int) -> dict:
    """The grader's weights, by the contract's attribute paths (a bias on each projection
    when qkv_bias=True)."""
    weights = {}
    for stream, name in enumerate(LAYERS):
        d_in = cfg["d_out"] if name == "out_proj" else cfg["d_in"]
        weights.update(linear(seed, name, d_in, cfg["d_out"],
                              True if name == "out_proj" else bool(cfg["bias"]), stream=stream))
    return weights


def _x(cfg: dict, seed: int, n: int | None = None, stream: int = 10) -> torch.Tensor:
    return randn(seed, (cfg["batch"], cfg["n"] if n is None else n, cfg["d_in"]), stream=stream,
                 scale=cfg["scale"])


def _build(student: Student, cfg: dict, seed: int, weights: bool = True):
    args, kwargs = _args(cfg)
    return student.build(MHA, args, kwargs, weights=_weights(cfg, seed) if weights else None,
                         seed=seed)



def _mha_what(case: tuple, cfg: dict) -> str:
    args, kwargs = _args(cfg)
    text = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    return f"{MHA}({text}) [{case[0]}]"


MHA_HINT = ("split the heads to (b, num_heads, num_tokens, head_dim) first, then rotate queries "
            "and keys (not values) with tables of head_dim columns, sliced to num_tokens rows")


def _judge_out(verdict: Verdict, field: str, case: tuple, cfg: dict, seed: int,
               x: torch.Tensor, train_seed: int | None = None, atol: float = 2e-5,
               rtol: float = 1e-4) -> bool:
    from autograder.reference.rope import attention

    weights = _weights(cfg, seed)
    base = DEFAULT_BASE if cfg["base"] is None else cfg["base"]
    common = {"dropout": cfg["dropout"] if train_seed is not None else 0.0, "seed": train_seed}
    x64 = x.double().numpy()

    def reference(**changes):
        options = {"theta_base": base, **common, **changes}
        return attention(x64, weights, cfg["heads"], **options)

    def variants() -> dict:
        found = {
            "RoPE applied to the values too (rotate queries and keys only)": reference(rope_v=True),
            "RoPE applied to the queries only, not the keys": reference(rope_k=False),
            "RoPE applied to the keys only, not the queries": reference(rope_q=False),
            "no RoPE at all (also what rotating queries and keys in the (b, num_tokens, num_heads, "
            "head_dim) layout gives: every token of a head gets the same angle, which cancels in "
            "the scores)": reference(rope_q=False, rope_k=False),
            "attention without the causal mask": reference(causal=False),
        }
        if base != DEFAULT_BASE:
            found["theta_base ignored (10000 used)"] = reference(theta_base=DEFAULT_BASE)
        if train_seed is not None:
            found["no dropout in train mode"] = reference(dropout=0.0)
        return found

    expected = reference()
    mode = "" if train_seed is None else f", train mode after torch.manual_seed({train_seed})"
    return verdict.array(field, expected, f"{_mha_what(case, cfg)}: output for x of shape "
                         f"{tuple(x.shape)}{mode}", atol=atol * max(1.0, cfg["scale"]),
                         rtol=rtol, dtype="float32", library="torch", variants=variants,
                         hint=MHA_HINT)


def _meta(model, cfg: dict):
    """``module.to("meta")`` and a forward on a meta input: every tensor the module uses must
    be a registered buffer or parameter (a plain tensor attribute stays on the CPU)."""
    return meta_forward(model, (cfg["batch"], cfg["n"], cfg["d_in"]))


def _swapped(model, cfg: dict, seed: int, x: torch.Tensor):
    """The forward with the grader's mask swapped into the registered 'mask' buffer."""
    return swapped_mask_forward(model, x, mask_window(seed, cfg["n"]))


def _judge_swapped(verdict: Verdict, case: tuple, cfg: dict, seed: int) -> None:
    """The mask buffer through behaviour: the forward with the grader's mask swapped into it,
    against the reference under that mask (the point; the buffer names are claims)."""
    from autograder.reference.rope import attention

    x = _x(cfg, seed)
    window = mask_window(seed, cfg["n"])
    base = DEFAULT_BASE if cfg["base"] is None else cfg["base"]
    expected = attention(x.double().numpy(), _weights(cfg, seed), cfg["heads"],
                         theta_base=base, hidden=window_hidden(cfg["n"], window))
    verdict.array("swapped", expected, f"{_mha_what(case, cfg)}: output for x of shape "
                  f"{tuple(x.shape)} with the grader's mask (each query sees itself and the "
                  f"{window} keys before it) swapped into its registered 'mask' buffer",
                  atol=2e-5 * max(1.0, cfg["scale"]), rtol=1e-4, dtype="float32",
                  library="torch", hint=MASK_FOLLOWS_HINT)


def _judge_meta(verdict: Verdict, case: tuple, cfg: dict, seed: int) -> None:
    _judge_swapped(verdict, case, cfg, seed)
    verdict.equal("meta", ["meta", cfg["batch"], cfg["n"], cfg["d_out"]],
                  f"{_mha_what(case, cfg)} after .to('meta'), a forward on a meta input as "
                  "[device, shape] (the mask and the cos/sin tables must be registered "
                  "buffers, so .to(device) moves them)",
                  hint="register the mask and the RoPE tables with self.register_buffer")


def _observe_fresh(student: Student, cfg: dict, seed: int, x: torch.Tensor):
    """The output of a module left with its own initial weights (the grader's are loaded into
    every other module, which would undo a weight zeroed in __init__)."""
    fresh = _build(student, cfg, seed, weights=False)
    # unscaled: with scores around 1e4 a correct module's every query can pick the same key
    # (token 0), and then every output is the same
    return Student.attempt(lambda: forward(fresh, x / cfg["scale"]))


def _judge_fresh(verdict: Verdict, case: tuple, cfg: dict) -> None:
    what = _mha_what(case, cfg)
    fresh = verdict.array_of("fresh", (cfg["batch"], cfg["n"], cfg["d_out"]),
                             f"{what} with its own initial weights: output")
    spread = np.ptp(fresh.values.reshape(-1, cfg["d_out"]), axis=0)
    if np.isfinite(fresh.values).all() and float(spread.max()) > 1e-6:
        verdict.ok("fresh")
    else:
        verdict.fail(f"{what} with its own initial weights gives the same output for every "
                     "token: W_query, W_key, W_value and out_proj must start as nn.Linear "
                     "initialises them (is a weight zeroed in __init__?)")


def _dropout_seed(seed: int) -> int:
    return integer(seed, 0, 2**31 - 1, 40)


# rope_mha_basics: the visible configuration (with the grader's weights), its one-token
# property, the buffers the visible cell asserts, .to("meta"); and a seeded configuration.
MHA_BASICS = [
    ("the visible configuration", {"d_in": 6, "heads": 3, "half": 2, "n": 7, "extra": 3,
                                   "batch": 2}),
    ("seeded", {"d_in": (3, 10), "heads": (1, 4), "half": (1, 4), "n": (2, 9), "extra": (1, 4),
                "batch": (1, 3)}),
    # what the visible cell also asserts: qkv_bias both ways, a theta_base, large scores
    ("qkv_bias=False and a theta_base drawn from the seed",
     {"d_in": (3, 10), "heads": (1, 3), "half": (2, 4), "n": (4, 10), "extra": (1, 3),
      "batch": (1, 2), "bias": False, "base": "seeded"}),
    ("qkv_bias=True, a theta_base drawn from the seed, num_tokens = context_length",
     {"d_in": (3, 10), "heads": (1, 3), "half": (1, 4), "n": (3, 10), "extra": 0,
      "batch": (1, 2), "bias": True, "base": "seeded"}),
    ("inputs scaled so the scores reach about 1e4 (a softmax must subtract the row maximum)",
     {"d_in": (4, 8), "heads": (1, 3), "half": (1, 4), "n": (3, 9), "extra": (0, 3),
      "batch": (1, 2), "scale": 60.0}),
]

rope_mha_basics = Check("rope_mha_basics", exercise=MHA, label=_label(MHA), cases=MHA_BASICS,
                        needs=MHA_NEEDS)


@rope_mha_basics.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    cfg = _config(case, seed)
    model = _build(student, cfg, seed)
    x = _x(cfg, seed)
    seen = {"out": Student.attempt(lambda: forward(model, x)),
            "one token": Student.attempt(lambda: forward(model, x[:, :1])),
            "buffers": Student.attempt(
                lambda: sorted(n for n, _ in torch.nn.Module.named_buffers(model)))}
    seen["swapped"] = Student.attempt(lambda: _swapped(model, cfg, seed, x))
    seen["meta"] = Student.attempt(lambda: _meta(model, cfg))  # last: it empties the module
    seen["fresh"] = _observe_fresh(student, cfg, seed, x)
    return seen


@rope_mha_basics.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    cfg = _config(case, seed)
    x = _x(cfg, seed)
    what = _mha_what(case, cfg)
    extreme = cfg["scale"] > 1.0  # scores of 1e4 in float32: output errors up to ~2e-4 x scale
    tolerance = {"atol": 2e-3, "rtol": 1e-3} if extreme else {}
    _judge_out(verdict, "out", case, cfg, seed, x, **tolerance)
    # one token sits at position 0, where RoPE is the identity: MultiHeadAttention's output
    _judge_out(verdict, "one token", case, cfg, seed, x[:, :1], **tolerance)
    _judge_meta(verdict, case, cfg, seed)
    _judge_fresh(verdict, case, cfg)
    # a claim, judged beside the behaviour above: what the visible cell asserts
    names = verdict.value("buffers", f"{what}: the names of its buffers", list)
    if "mask" in names and len(names) >= 2:
        verdict.ok("buffers")
    else:
        verdict.fail(f"{what} has buffers {names}; expected the mask and the cos/sin tables "
                     "registered with self.register_buffer (not nn.Parameter, not plain "
                     "attributes)")


MHA_VALUES = [
    ("default qkv_bias and theta_base, fewer tokens than context_length",
     {"d_in": (3, 10), "heads": (1, 4), "half": (1, 4), "n": (2, 9), "extra": (1, 6),
      "batch": (1, 3)}),
    ("qkv_bias=True, all context_length tokens",
     {"d_in": (3, 10), "heads": (2, 4), "half": (1, 3), "n": (2, 8), "extra": 0, "batch": (1, 2),
      "bias": True}),
    ("qkv_bias=False and a theta_base drawn from the seed",
     {"d_in": (3, 10), "heads": (1, 3), "half": (2, 4), "n": (4, 10), "extra": (0, 3),
      "batch": (1, 2), "bias": False, "base": "seeded"}),
    ("qkv_bias=True and a theta_base drawn from the seed",
     {"d_in": (3, 10), "heads": (1, 3), "half": (1, 4), "n": (3, 10), "extra": (0, 3),
      "batch": (1, 2), "bias": True, "base": "seeded"}),
    ("one head, one token", {"d_in": (2, 8), "heads": 1, "half": (1, 4), "n": 1, "extra": (0, 8),
                             "batch": (1, 3)}),
    ("2 heads, 40 to 64 tokens", {"d_in": (8, 16), "heads": 2, "half": (2, 6), "n": (40, 64),
                                  "extra": (0, 8), "batch": 1}),
    ("inputs scaled so the scores reach about 1e4 (a softmax must subtract the row maximum)",
     {"d_in": (4, 8), "heads": (1, 3), "half": (1, 4), "n": (3, 9), "extra": (0, 3),
      "batch": (1, 2), "scale": 60.0}),
    ("train mode, dropout drawn from the seed",
     {"d_in": (3, 8), "heads": (1, 3), "half": (1, 3), "n": (3, 8), "extra": (0, 3),
      "batch": (1, 2), "dropout": (0.1, 0.6)}),
]

rope_mha_values = Check("rope_mha_values", exercise=MHA, label=_label(MHA), cases=MHA_VALUES,
                        needs=MHA_NEEDS)


@rope_mha_values.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    cfg = _config(case, seed)
    model = _build(student, cfg, seed)
    train = _dropout_seed(seed) if cfg["dropout"] else None
    return {"out": Student.attempt(lambda: forward(model, _x(cfg, seed), train))}


@rope_mha_values.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    cfg = _config(case, seed)
    train = _dropout_seed(seed) if cfg["dropout"] else None
    extreme = cfg["scale"] > 1.0  # scores of 1e4 in float32: output errors up to ~2e-4 x scale
    _judge_out(verdict, "out", case, cfg, seed, _x(cfg, seed), train,
               atol=2e-3 if extreme else 2e-5, rtol=1e-3 if extreme else 1e-4)


MHA_CONTRACT = [
    ("the contract configuration", {"d_in": 6, "heads": 3, "half": 2, "n": 6, "extra": 3,
                                    "batch": 2, "dropout": 0.25, "bias": True}),
    ("seeded", {"d_in": (3, 10), "heads": (2, 4), "half": (1, 4), "n": (2, 8), "extra": (0, 4),
                "batch": (1, 2), "dropout": (0.1, 0.5), "bias": True, "base": "seeded"}),
]

rope_mha_contract = Check("rope_mha_contract", exercise=MHA, label=_label(MHA),
                          cases=MHA_CONTRACT, needs=MHA_NEEDS)


def _indivisible(cfg: dict) -> tuple:
    """d_out not divisible by num_heads, but d_out // num_heads even: the ValueError must come
    from the divisibility check, not from precompute_rope_params on an odd head_dim."""
    heads = max(cfg["heads"], 2)
    return (cfg["d_in"], heads * 2 * cfg["half"] + 1, cfg["ctx"], 0.0, heads)


@rope_mha_contract.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    cfg = _config(case, seed)
    seen = {"indivisible": Student.attempt(lambda: student.get(MHA)(*_indivisible(cfg)))}
    model = _build(student, cfg, seed)
    x = _x(cfg, seed)
    seen["out"] = Student.attempt(lambda: forward(model, x))
    seen["train out"] = Student.attempt(lambda: forward(model, x, _dropout_seed(seed)))
    for attr in ("d_out", "num_heads", "head_dim"):
        seen[attr] = Student.attempt(lambda a=attr: getattr(model, a))
    seen["layer types"] = Student.attempt(lambda: [type(getattr(model, n)).__name__
                                                   for n in LAYERS])
    seen["parameters"] = Student.attempt(
        lambda: sorted(n for n, _ in torch.nn.Module.named_parameters(model)))
    seen["buffers"] = Student.attempt(
        lambda: sorted(n for n, _ in torch.nn.Module.named_buffers(model)))
    seen["mask shape"] = Student.attempt(
        lambda: list(dict(torch.nn.Module.named_buffers(model))["mask"].shape))
    seen["swapped"] = Student.attempt(lambda: _swapped(model, cfg, seed, x))
    seen["meta"] = Student.attempt(lambda: _meta(model, cfg))  # empties the module
    seen["fresh"] = _observe_fresh(student, cfg, seed, x)
    return seen


@rope_mha_contract.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    cfg = _config(case, seed)
    what = _mha_what(case, cfg)
    x = _x(cfg, seed)
    bad = _indivisible(cfg)
    verdict.raises("indivisible", f"{MHA}{bad} (d_out not divisible by num_heads)", "ValueError")
    _judge_out(verdict, "out", case, cfg, seed, x)
    _judge_out(verdict, "train out", case, cfg, seed, x, _dropout_seed(seed))
    _judge_meta(verdict, case, cfg, seed)
    _judge_fresh(verdict, case, cfg)
    # claims about structure, judged beside the behaviour above
    for attr, expected in (("d_out", cfg["d_out"]), ("num_heads", cfg["heads"]),
                           ("head_dim", cfg["head_dim"])):
        verdict.equal(attr, expected, f"{what}.{attr}")
    verdict.equal("layer types", ["Linear"] * 4, f"{what}: the types of {', '.join(LAYERS)}",
                  hint="W_query, W_key, W_value are nn.Linear(d_in, d_out, bias=qkv_bias); "
                       "out_proj is nn.Linear(d_out, d_out)")
    expected = sorted(f"{layer}.{p}" for layer in LAYERS for p in ("weight", "bias"))
    parameters = verdict.value("parameters", f"{what}: parameter names", list)
    if parameters == expected:
        verdict.ok("parameters")
    else:
        verdict.fail(f"{what} has parameters {parameters}; expected exactly {expected} (the "
                     "RoPE tables are fixed buffers, not nn.Parameter)")
    buffers = verdict.value("buffers", f"{what}: buffer names", list)
    if "mask" in buffers and [b for b in buffers if b != "mask"]:
        verdict.ok("buffers")
    elif "mask" not in buffers:
        verdict.fail(f"{what} has buffers {buffers}; expected a causal mask registered with "
                     "register_buffer under the name 'mask'")
    else:
        verdict.fail(f"{what} registers no buffer for the RoPE tables: store cos and sin with "
                     "self.register_buffer so they move with .to(device)")
    verdict.equal("mask shape", [cfg["ctx"], cfg["ctx"]], f"{what}: the shape of the mask buffer",
                  hint="(context_length, context_length)")


rope_mha_causal = Check(
    "rope_mha_causal", exercise=MHA, label=_label(MHA), needs=MHA_NEEDS,
    cases=[("seeded", {"d_in": (3, 10), "heads": (1, 4), "half": (1, 4), "n": (3, 12),
                       "extra": 0, "batch": (1, 3)}),
           ("qkv_bias=True, theta_base drawn", {"d_in": (3, 10), "heads": (1, 3), "half": (1, 3),
                                                "n": (3, 10), "extra": (0, 4), "batch": (1, 2),
                                                "bias": True, "base": "seeded"})])


def _changed_at(cfg: dict, seed: int) -> int:
    return integer(seed, 0, cfg["n"] - 2, 41)


@rope_mha_causal.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    cfg = _config(case, seed)
    model = _build(student, cfg, seed)
    x = _x(cfg, seed)
    changed = future_changed(x, _changed_at(cfg, seed), seed)
    return {"out": Student.attempt(lambda: forward(model, x)),
            "changed": Student.attempt(lambda: forward(model, changed)),
            "too long": Student.attempt(lambda: forward(model, _x(cfg, seed, cfg["ctx"] + 1,
                                                                   stream=11)))}


@rope_mha_causal.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    cfg = _config(case, seed)
    what = _mha_what(case, cfg)
    verdict.raises("too long", f"{what} on {cfg['ctx'] + 1} tokens (context_length is "
                   f"{cfg['ctx']})", "ValueError")
    # every answer against the reference; causality only names the bug
    x = _x(cfg, seed)
    t = _changed_at(cfg, seed)
    changed = future_changed(x, t, seed)
    _judge_out(verdict, "out", case, cfg, seed, x)
    if not _judge_out(verdict, "changed", case, cfg, seed, changed):
        from autograder.reference.rope import attention

        base = DEFAULT_BASE if cfg["base"] is None else cfg["base"]
        expected = attention(changed.double().numpy(), _weights(cfg, seed), cfg["heads"],
                             theta_base=base, dropout=0.0, seed=None)
        diagnosis = causal_diagnosis(verdict, "out", "changed", expected, t)
        if diagnosis:
            verdict.fail(f"{what}: {diagnosis}")
