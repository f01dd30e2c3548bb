"""Hidden checks for 06-rope (split-halves, "rotate half" convention).

Three families of typed cases, in the form of ``positional_encoding.py``: for each, one
``inputs`` builds a case's sizes, tensors, angle tables and weights from the case and its seed
(once on each side), one ``observe`` makes the calls with the student's code, and one
``judge`` compares the answers with ``autograder.reference.rope`` (complex multiplication in
float64, attention on ``F.scaled_dot_product_attention``). ``compute_rope`` is handed tables
the grader built (random angles in some cases), so it is judged on its own; the RoPE attention
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

from dataclasses import dataclass
from functools import partial
from typing import Any, Union

import numpy as np
import torch

from autograder.checks import Case, Check, Student, Verdict
from autograder.checks._common import (
    ATTENTION_LAYERS,
    MASK_FOLLOWS_HINT,
    _peek,
    attention_weights,
    call_text,
    causal_diagnosis,
    forward,
    future_changed,
    integer,
    keywords,
    mask_window,
    meta_forward,
    moderate_future,
    randn,
    rate,
    rng,
    rope_base,
    size,
    swapped_mask_forward,
    window_hidden,
)

ASSIGNMENT = "06-rope"

PRE = "precompute_rope_params"
ROPE = "compute_rope"
MHA = "RoPEMultiHeadAttention"
DEFAULT_BASE = 10000.0
DEFAULT_CONTEXT = 4096
MHA_NEEDS = (ROPE, PRE)  # RoPEMultiHeadAttention builds its tables and rotates with these

Size = Union[int, tuple]  # a fixed size, or (low, high) drawn from the seed


# --- precompute_rope_params -----------------------------------------------------------------

@dataclass(frozen=True)
class Tables(Case):
    """A call of precompute_rope_params with head_dim ``2 * halves``; ``base``: None
    (theta_base omitted), a number, or "seeded" (drawn); ``length``: None (context_length
    omitted), a size or a range; ``positional``: all three arguments passed by position."""

    halves: Size
    base: float | str | None = None
    length: Size | None = None
    positional: bool = False


@dataclass(frozen=True)
class TablesCall:
    args: tuple
    kwargs: dict
    head_dim: int
    base: float            # the defaults filled in
    length: int
    rows: list | None      # the rows compared (None: every row)

    @property
    def what(self) -> str:
        return call_text(PRE, self.args, self.kwargs)


def _tables_call(seed: int, head_dim: int, base: float | None = None,
                 length: int | None = None, positional: bool = False) -> TablesCall:
    args, kwargs = (head_dim,), keywords(theta_base=base, context_length=length)
    if positional:
        args, kwargs = (head_dim, base, length), {}
    length = DEFAULT_CONTEXT if length is None else length
    # every row of a small table; the ends and rows drawn from the seed of a large one
    rows = None if length <= 512 else sorted(
        {0, 1, 2, length - 1} | {integer(seed, 3, length - 2, 10 + i) for i in range(6)})
    return TablesCall(args, kwargs, head_dim, DEFAULT_BASE if base is None else base, length,
                      rows)


def _precompute(case: Tables, seed: int) -> TablesCall:
    base = rope_base(seed) if case.base == "seeded" else case.base
    length = None if case.length is None else size(seed, case.length, 1)
    return _tables_call(seed, 2 * size(seed, case.halves, 0), base, length, case.positional)


def _pair(result):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"{PRE} returned {type(result).__name__}; expected a pair (cos, sin)")
    return result


def _observe_tables(student: Student, case: Case, call: TablesCall, prefix: str = "") -> dict:
    """``<prefix>cos shape``, ``<prefix>cos`` (the rows compared), the same for sin."""
    holder = {}

    def shape(index: int):
        if "pair" not in holder:
            holder["pair"] = _pair(student.get(PRE)(*call.args, **call.kwargs))
        return list(holder["pair"][index].shape)

    seen = {}
    for index, name in enumerate(("cos", "sin")):
        seen[f"{prefix}{name} shape"] = Student.attempt(lambda i=index: shape(i))
        seen[f"{prefix}{name}"] = Student.attempt(
            lambda i=index: holder["pair"][i] if call.rows is None else holder["pair"][i][call.rows])
    return seen


def _judge_tables(verdict: Verdict, case: Case, call: TablesCall, prefix: str = "") -> None:
    from autograder.reference.rope import table_bugs

    positions = np.arange(call.length) if call.rows is None else np.asarray(call.rows)
    expected, bugs = table_bugs(positions, call.head_dim, call.base)
    # float32 angles p * inv_freq are off by about 1e-7 * p (2e-4 at p = 4095; float64 then
    # cast is exact to 6e-8): a tolerance that grows with the last position compared
    atol = 2e-7 + 5e-7 * float(positions.max())
    for index, name in enumerate(("cos", "sin")):
        if not verdict.equal(f"{prefix}{name} shape", [call.length, call.head_dim],
                             f"{call.what}: the shape of {name}",
                             hint="one row per position 0..context_length-1, and the "
                                  "head_dim / 2 angles duplicated as [angles, angles]"):
            continue
        where = "" if call.rows is None else f" at rows {call.rows}"
        verdict.array(f"{prefix}{name}", expected[index], f"{call.what}: {name}{where}",
                      atol=atol, rtol=1e-6, dtype="float32", library="torch",
                      variants={label: pair[index] for label, pair in bugs.items()},
                      hint="inv_freq[i] = theta_base ** (-2i / head_dim), angles[p] = p * "
                           "inv_freq for p = 0 .. context_length - 1, tables cos and sin of "
                           "[angles, angles], float32")


tables_check = partial(Check, exercise=PRE, inputs=_precompute, observe=_observe_tables,
                       judge=_judge_tables)

precompute_basics = tables_check(  # the visible call, plus sizes drawn from the seed
    "precompute_basics",
    cases=[Tables("the visible call", 2, length=3), Tables("seeded", (1, 6), length=(1, 12))])

precompute_values = tables_check(
    "precompute_values",
    cases=[Tables("head_dim 2", 1, length=5), Tables("one row", (1, 8), length=1),
           Tables("all positional", (2, 12), "seeded", (8, 64), positional=True),
           Tables("theta_base and context_length by keyword", (1, 8), "seeded", (2, 40)),
           Tables("default theta_base and context_length (4096 rows)", (8, 40)),
           Tables("theta_base 500000, 4096 rows", 64, 500000.0, 4096),
           Tables("long table, seeded theta_base", (4, 32), "seeded", (600, 3000))])


@dataclass(frozen=True)
class OddDim(Case):
    """A call with an odd ``head_dim`` (and ``length`` rows, None: context_length omitted);
    ``head_dim`` None: both drawn from the seed."""

    head_dim: int | None = None
    length: int | None = None


@dataclass(frozen=True)
class Invalid:
    """A call that must raise, and a valid call beside it: a function that always raises
    does not pass."""

    bad: Any
    valid: Any


def _odd(case: OddDim, seed: int) -> Invalid:
    head_dim, length = case.head_dim, case.length
    if head_dim is None:
        head_dim, length = 2 * integer(seed, 0, 40) + 1, integer(seed, 1, 64, 1)
    # the valid call: head_dim >= 4 and two rows or more, where the layout of the tables
    # shows (head_dim 2 or row 0 alone are the same in every layout); a draw of 2 or 1 moves
    # up, so other draws keep their sizes
    return Invalid(_tables_call(seed, head_dim, length=length),
                   _tables_call(seed, 2 * max(2, integer(seed, 1, 4, 3)),
                                length=max(2, integer(seed, 1, 6, 4))))


def _observe_odd(student: Student, case: OddDim, call: Invalid) -> dict:
    return {"error": student.call(PRE, *call.bad.args, **call.bad.kwargs),
            **_observe_tables(student, case, call.valid, prefix="valid ")}


def _judge_odd(verdict: Verdict, case: OddDim, call: Invalid) -> None:
    verdict.raises("error", f"{call.bad.what} (head_dim is odd)", "ValueError",
                   mentions="head_dim")
    _judge_tables(verdict, case, call.valid, prefix="valid ")


precompute_errors = Check(
    "precompute_errors", exercise=PRE, inputs=_odd, observe=_observe_odd, judge=_judge_odd,
    blame=False,
    cases=[OddDim("head_dim 7", 7), OddDim("head_dim 5", 5, 8), OddDim("head_dim 1", 1, 4),
           OddDim("odd head_dim")])


# --- compute_rope -----------------------------------------------------------------------------

ROPE_HINT = ("out = x * cos + cat(-x2, x1) * sin, with cos/sin sliced to the first seq_len rows "
             "(x is (batch, num_heads, seq_len, head_dim))")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
          "float64": torch.float64}


@dataclass(frozen=True)
class Rotation(Case):
    """compute_rope on x of shape (batch, heads, tokens, 2 * halves) and ``dtype``, with
    tables of tokens + extra rows; each size fixed or a range. The tables' angles: those of a
    theta_base (a number, or "base": drawn from the seed), or "random" (uniform in [-pi, pi]).
    ``visible``: the visible cell's x and tables (6 rows for 3 tokens) instead; with angles
    "quarter", its tables of 3 rows where every angle is pi/2 (cos 0, sin 1)."""

    batch: Size = 1
    heads: Size = 1
    tokens: Size = 1
    halves: Size = 1
    extra: Size = 0
    angles: float | str = DEFAULT_BASE
    dtype: str = "float32"
    visible: bool = False


@dataclass(frozen=True)
class RotationCall:
    x: torch.Tensor
    angles: np.ndarray  # (rows, head_dim / 2), float64: the angles of the tables' rows
    cos: torch.Tensor   # float32 tables of [angles, angles]
    sin: torch.Tensor

    def what(self, name: str) -> str:
        return (f"{ROPE}(x, cos, sin) for x of shape {tuple(self.x.shape)}, "
                f"{str(self.x.dtype)[6:]} ({name}), cos/sin of {self.angles.shape[0]} rows")


def _cos_sin(angles: np.ndarray, columns: int | None = None):
    """float32 cos/sin tables of duplicated angles (``columns`` trims or pads them)."""
    full = np.concatenate([angles, angles], axis=-1)
    if columns is not None:
        full = np.resize(full, (full.shape[0], columns))
    return (torch.tensor(np.cos(full), dtype=torch.float32),
            torch.tensor(np.sin(full), dtype=torch.float32))


def _random_angles(seed: int, rows: int, half: int) -> np.ndarray:
    return rng(seed, 8).uniform(-np.pi, np.pi, (rows, half))


def _base_angles(base: float, rows: int, half: int) -> np.ndarray:
    omega = base ** (-np.arange(0, 2 * half, 2) / (2 * half))
    return np.arange(rows, dtype=np.float64)[:, None] * omega[None, :]


def _rotation(case: Rotation, seed: int) -> RotationCall:
    if case.visible:
        x = torch.randn(1, 1, 3, 4, generator=torch.Generator().manual_seed(0))
        if case.angles == "quarter":  # a quarter turn: cos 0 and sin 1, not the default tables
            angles = np.full((3, 2), np.pi / 2)
        else:
            angles = (torch.arange(3.0)[:, None] * torch.tensor([1.0, 0.01])).double().numpy()
            angles = np.concatenate([angles, angles])
    else:
        shape = tuple(size(seed, v, i) for i, v in enumerate((case.batch, case.heads,
                                                              case.tokens)))
        half = size(seed, case.halves, 3)
        rows = shape[-1] + size(seed, case.extra, 4)
        if case.angles == "random":
            angles = _random_angles(seed, rows, half)
        else:
            base = rope_base(seed) if case.angles == "base" else float(case.angles)
            angles = _base_angles(base, rows, half)
        x = randn(seed, shape + (2 * half,), stream=1)
    return RotationCall(x.to(DTYPES[case.dtype]), angles, *_cos_sin(angles))


def _observe_rope(student: Student, case: Case, call: RotationCall) -> dict:
    return {"out": student.call(ROPE, call.x, call.cos, call.sin)}


def _judge_rotation(verdict: Verdict, field: str, call: RotationCall, name: str,
                    atol: float = 1e-5) -> None:
    from autograder.reference.rope import rope_bugs, rotate

    x64 = call.x.double().numpy()
    verdict.array(field, rotate(x64, call.angles[: x64.shape[-2]]), call.what(name), atol=atol,
                  rtol=1e-5, dtype="float32", library="torch",
                  variants=lambda: rope_bugs(x64, call.angles), hint=ROPE_HINT)


def _judge_rope(verdict: Verdict, case: Rotation, call: RotationCall) -> None:
    # the visible cell compares with atol=1e-6
    _judge_rotation(verdict, "out", call, case.label, atol=1e-6 if case.visible else 1e-5)


rotation_check = partial(Check, exercise=ROPE, inputs=_rotation, observe=_observe_rope,
                         judge=_judge_rope)

rope_basics = rotation_check(
    "rope_basics",
    cases=[Rotation("the visible example", visible=True),
           Rotation("the visible example, every angle pi/2", angles="quarter", visible=True),
           Rotation("seeded", (1, 2), (1, 3), (2, 6), (1, 4), (1, 4))])

rope_values = rotation_check(
    "rope_values",
    cases=[Rotation("tables longer than seq_len", (1, 3), (1, 4), (2, 9), (1, 6), (1, 12)),
           Rotation("a table of exactly seq_len rows", 1, (2, 4), (2, 8), (1, 5), 0),
           Rotation("one token", (1, 3), (1, 3), 1, (1, 6), (0, 8)),
           Rotation("head_dim 2", (1, 2), (1, 3), (2, 9), 1, (0, 4)),
           Rotation("more heads than tokens", (1, 2), (5, 8), (1, 4), (2, 5), (4, 10)),
           Rotation("tables for a theta_base drawn from the seed", (1, 2), (1, 4), (2, 10),
                    (2, 8), (0, 6), "base"),
           Rotation("tables of random angles", (1, 2), (1, 3), (2, 10), (1, 6), (0, 4),
                    "random"),
           Rotation("4096 tokens", 1, 1, 4096, (1, 3), 0)])


# --- compute_rope: dtypes ---------------------------------------------------------------------

def _judge_dtypes(verdict: Verdict, case: Rotation, call: RotationCall) -> None:
    """The result has x's dtype and equals the reference (float64, from the same float32
    tables) up to that dtype's rounding."""
    x, name = call.x, case.dtype
    what = call.what("float32 tables")
    found = verdict.array_of("out", tuple(x.shape), what, library="torch",
                             hint="the result has the shape of x")
    if found.dtype != name:
        verdict.fail(f"{what} returned {found.dtype}; expected {name}, the dtype of x (float32 "
                     "cos/sin promote the result: cast it back with .to(x.dtype))")
        return
    x64 = x.double().numpy()
    cos, sin = (t.double().numpy()[: x.shape[-2]] for t in (call.cos, call.sin))
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
    index = np.unravel_index(int(np.argmax(error - tol)), error.shape)
    verdict.fail(f"{what} differs from the reference by more than {name} rounding: at index "
                 f"{tuple(int(i) for i in index)} found {found.values[index]:.6g}, expected "
                 f"{expected[index]:.6g} (tolerance {float(tol[index[:-1]][0]):.2g}): rotate "
                 "x * cos + rotate_half(x) * sin in float32 and cast the result back with "
                 ".to(x.dtype)")


rope_dtypes = rotation_check(
    "rope_dtypes", judge=_judge_dtypes, blame=False,
    cases=[Rotation(name, (1, 3), (1, 3), (2, 12), (1, 6), (0, 6), dtype=name)
           for name in ("bfloat16", "float16", "float64")])


# --- compute_rope: errors ---------------------------------------------------------------------

@dataclass(frozen=True)
class BadRope(Case):
    """Inputs compute_rope must reject (the label says why): x of ``shape`` and tables of
    ``rows`` x ``columns``, or inputs drawn from the seed of a ``kind``: "short" (seq_len
    past the rows), "odd" (head_dim odd), "columns" (the last dims differ)."""

    shape: tuple = ()
    rows: int = 0
    columns: int = 0
    kind: str = "fixed"


VALID = Rotation("a valid call", (1, 2), (1, 3), (2, 6), (1, 4), (0, 4), "random")


def _bad_rope(case: BadRope, seed: int) -> Invalid:
    shape, rows, columns = case.shape, case.rows, case.columns
    if case.kind == "short":
        rows = integer(seed, 1, 10)
        shape, columns = (1, integer(seed, 1, 3, 1), rows + integer(seed, 1, 5, 2), 4), 4
    elif case.kind == "odd":
        columns = 2 * integer(seed, 1, 6) + 1
        shape, rows = (integer(seed, 1, 2, 1), 2, integer(seed, 1, 5, 2), columns), 8
    elif case.kind == "columns":
        half = integer(seed, 1, 4)
        columns = 2 * half + 2 * integer(seed, 1, 3, 1) * (1 if integer(seed, 0, 1, 2) else -1)
        columns = columns if columns > 0 else 2 * half + 2
        shape, rows = (1, 2, integer(seed, 1, 5, 3), 2 * half), 8
    angles = _random_angles(seed, rows, (columns + 1) // 2)
    bad = RotationCall(randn(seed, shape, stream=1), angles, *_cos_sin(angles, columns))
    return Invalid(bad, _rotation(VALID, seed))


def _observe_bad_rope(student: Student, case: BadRope, call: Invalid) -> dict:
    return {"error": _observe_rope(student, case, call.bad)["out"],
            "valid": _observe_rope(student, case, call.valid)["out"]}


def _judge_bad_rope(verdict: Verdict, case: BadRope, call: Invalid) -> None:
    verdict.raises("error", f"{ROPE}(x, cos, sin) when {case.label} (x "
                   f"{tuple(call.bad.x.shape)}, cos/sin {tuple(call.bad.cos.shape)})",
                   "ValueError")
    _judge_rotation(verdict, "valid", call.valid, "valid")


rope_errors = Check(
    "rope_errors", exercise=ROPE, inputs=_bad_rope, observe=_observe_bad_rope,
    judge=_judge_bad_rope, blame=False,
    cases=[BadRope("head_dim is odd", (1, 1, 3, 5), 8, 5),
           BadRope("seq_len 9 exceeds the 8 rows of cos", (1, 1, 9, 4), 8, 4),
           BadRope("seq_len 5 exceeds the single row of cos", (1, 2, 5, 4), 1, 4),
           BadRope("x has head_dim 4 but cos/sin have 6 columns", (1, 1, 3, 4), 8, 6),
           BadRope("x has head_dim 8 but cos/sin have 4 columns", (1, 1, 3, 8), 8, 4),
           BadRope("seq_len exceeds the rows of cos", kind="short"),
           BadRope("head_dim is odd", kind="odd"),
           BadRope("the last dims of x and cos/sin differ", kind="columns")])


# --- compute_rope: properties ---------------------------------------------------------------

@dataclass(frozen=True)
class Property(Case):
    """"relative": one query and one key rotated at every one of 4096 positions (tables of a
    theta_base drawn from the seed), compared at three starts each with two positions an
    offset after it; "norm": x rotated by tables of random angles."""

    kind: str


@dataclass(frozen=True)
class OffsetsCall:
    head_dim: int
    base: float
    positions: list       # the positions compared
    q: torch.Tensor       # (head_dim,): repeated at every position
    k: torch.Tensor
    cos: torch.Tensor     # 4096 rows
    sin: torch.Tensor

    @property
    def what(self) -> str:
        return (f"{ROPE} on one query and one key repeated at 4096 positions (head_dim "
                f"{self.head_dim}, tables for theta_base {self.base})")


def _property(case: Property, seed: int) -> RotationCall | OffsetsCall:
    if case.kind == "norm":
        x = randn(seed, (2, 3, 64, 2 * integer(seed, 2, 10)), stream=1)
        angles = _random_angles(seed, 64, x.shape[-1] // 2)
        return RotationCall(x, angles, *_cos_sin(angles))
    head_dim, base, offset = 2 * integer(seed, 4, 12), rope_base(seed), integer(seed, 1, 5, 1)
    starts = [integer(seed, 0, 60, 2), integer(seed, 1000, 2000, 3), integer(seed, 3000, 4080, 4)]
    return OffsetsCall(head_dim, base, sorted({s + k * offset for s in starts for k in range(3)}),
                       randn(seed, (head_dim,), stream=2), randn(seed, (head_dim,), stream=3),
                       *_cos_sin(_base_angles(base, 4096, head_dim // 2)))


def _observe_property(student: Student, case: Property, call) -> dict:
    if isinstance(call, RotationCall):
        return _observe_rope(student, case, call)
    holder = {}

    def rotated(name: str, vector: torch.Tensor):
        whole = vector.expand(1, 1, 4096, call.head_dim).contiguous()
        holder[name] = student.get(ROPE)(whole, call.cos, call.sin)
        return list(holder[name].shape)

    seen = {}
    for name, vector in (("q", call.q), ("k", call.k)):
        seen[f"{name} shape"] = Student.attempt(lambda n=name, v=vector: rotated(n, v))
        seen[name] = Student.attempt(lambda n=name: holder[n][0, 0, call.positions])
    return seen


def _judge_norm(verdict: Verdict, call: RotationCall) -> None:
    from autograder.reference.rope import rotate

    x = call.x.double().numpy()
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
    verdict.array("out", rotate(x, call.angles), f"{ROPE} on x of shape {x.shape} with tables "
                  "of random angles", atol=1e-5, rtol=1e-5, library="torch", hint=hint)


def _judge_offsets(verdict: Verdict, call: OffsetsCall) -> None:
    from autograder.reference.rope import angles as reference_angles
    from autograder.reference.rope import rotate

    head_dim, positions, what = call.head_dim, call.positions, call.what
    if not (verdict.equal("q shape", [1, 1, 4096, head_dim], f"{what}: the shape of rope(q)")
            & verdict.equal("k shape", [1, 1, 4096, head_dim], f"{what}: the shape of rope(k)")):
        return
    found = {name: verdict.array_of(name, (len(positions), head_dim),
                                    f"{what}: rope({name}) at positions {positions}").values
             for name in ("q", "k")}
    theta = reference_angles(positions, head_dim, call.base).numpy()
    q, k = call.q.double().numpy(), call.k.double().numpy()
    rotated = {name: rotate(np.broadcast_to(vector, (len(positions), head_dim)), theta)
               for name, vector in (("q", q), ("k", k))}
    # the points: rope(q) and rope(k) against the reference; the relative-position property
    # of their scores only names the bug
    both = True
    for name in ("q", "k"):
        both &= verdict.array(name, rotated[name], f"{what}: rope({name}) at positions "
                              f"{positions}", atol=1e-5, rtol=1e-5, library="torch",
                              hint=ROPE_HINT)
    if both:
        return
    scores = found["q"] @ found["k"].T
    if not np.isfinite(scores).all():
        verdict.fail(f"{what}: the scores rope(q)_m . rope(k)_n are not all finite")
        return
    tol = 1e-4 * float(np.linalg.norm(q) * np.linalg.norm(k))
    offsets = np.subtract.outer(positions, positions)
    for offset in sorted(set(offsets.ravel().tolist()), key=abs):
        values = scores[offsets == offset]
        if values.size > 1 and values.max() - values.min() > tol:
            pairs = np.argwhere(offsets == offset)
            low, high = pairs[int(np.argmin(values))], pairs[int(np.argmax(values))]
            verdict.fail(
                f"relative position: rope(q)_m . rope(k)_n should depend only on m - n, but for "
                f"m - n = {offset} the score is {values.min():.5g} at (m, n) = "
                f"({positions[low[0]]}, {positions[low[1]]}) and {values.max():.5g} at "
                f"({positions[high[0]]}, {positions[high[1]]}). Likely cause: each pair (i, "
                "i + head_dim/2) must be rotated by one angle p * omega_i (split halves, cos "
                "then sin)")
            return
    gap = float(np.max(np.abs(scores - rotated["q"] @ rotated["k"].T)))
    if gap <= tol:
        return
    message = (f"{what}: the scores rope(q)_m . rope(k)_n depend only on m - n, but differ from "
               f"RoPE's by up to {gap:.3g}")
    if np.allclose(scores, float(q @ k), atol=tol):
        message += ": they equal q . k at every offset, so nothing is rotated"
    else:
        message += (". Likely cause: the rotation angle or its direction (rotate_half is "
                    "cat(-x2, x1))")
    verdict.fail(message)


def _judge_property(verdict: Verdict, case: Property, call) -> None:
    if isinstance(call, RotationCall):
        _judge_norm(verdict, call)
    else:
        _judge_offsets(verdict, call)


rope_properties = Check(
    "rope_properties", exercise=ROPE, inputs=_property, observe=_observe_property,
    judge=_judge_property,
    cases=[Property("scores depend only on the offset", "relative"),
           Property("lengths are preserved", "norm")])


# --- RoPEMultiHeadAttention -------------------------------------------------------------------

@dataclass(frozen=True)
class Module(Case):
    """A RoPEMultiHeadAttention and its input x of shape (batch, tokens, d_in), each size
    fixed or a range: head_dim ``2 * halves``, d_out ``heads * head_dim``, context_length
    ``tokens + extra``. ``bias``: None (qkv_bias omitted), True or False; ``base``: None
    (theta_base omitted) or "seeded"; ``dropout``: a rate, or a range (a rate drawn from the
    seed); ``scale`` of x (60: scores of about 1e4)."""

    d_in: Size
    heads: Size
    halves: Size
    tokens: Size
    extra: Size
    batch: Size
    bias: bool | None = None
    base: str | None = None
    dropout: float | tuple = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class ModuleCall:
    label: str
    seed: int                # torch.manual_seed before the module is built
    d_in: int
    heads: int
    head_dim: int
    context: int
    batch: int
    dropout: float
    bias: bool | None        # None: qkv_bias omitted
    base: float | None       # None: theta_base omitted
    scale: float
    weights: dict            # the grader's, by attribute path
    x: torch.Tensor          # (batch, tokens, d_in)
    train_seed: int          # torch.manual_seed before a train-mode forward
    window: int              # the swapped mask: each query sees itself and `window` keys back
    changed_at: int | None   # the causality probe changes the tokens after this position
    changed: torch.Tensor | None
    too_long: torch.Tensor   # context_length + 1 tokens

    @property
    def d_out(self) -> int:
        return self.heads * self.head_dim

    @property
    def tokens(self) -> int:
        return self.x.shape[1]

    @property
    def theta_base(self) -> float:
        return DEFAULT_BASE if self.base is None else self.base

    @property
    def args(self) -> tuple:
        return (self.d_in, self.d_out, self.context, self.dropout, self.heads)

    @property
    def kwargs(self) -> dict:
        return keywords(qkv_bias=self.bias, theta_base=self.base)

    @property
    def what(self) -> str:
        return f"{call_text(MHA, self.args, self.kwargs)} [{self.label}]"

    @property
    def indivisible(self) -> tuple:
        """d_out not divisible by num_heads, but d_out // num_heads even: the ValueError must
        come from the divisibility check, not from precompute_rope_params on an odd head_dim."""
        heads = max(self.heads, 2)
        return (self.d_in, heads * self.head_dim + 1, self.context, 0.0, heads)


def _module(case: Module, seed: int) -> ModuleCall:
    d_in, heads, halves, tokens, extra, batch = (
        size(seed, spec, 20 + stream) for stream, spec in
        enumerate((case.d_in, case.heads, case.halves, case.tokens, case.extra, case.batch)))
    if case.base is not None:  # inv_freq[0] is 1 for every theta_base: head_dim 2 hides it
        halves = max(2, halves)
    x = randn(seed, (batch, tokens, d_in), stream=10, scale=case.scale)
    t = integer(seed, 0, tokens - 2, 41) if tokens >= 2 else None
    return ModuleCall(
        case.label, seed, d_in=d_in, heads=heads, head_dim=2 * halves, context=tokens + extra,
        batch=batch, dropout=rate(seed, case.dropout, 3), bias=case.bias,
        base=None if case.base is None else rope_base(seed), scale=case.scale,
        weights=attention_weights(seed, d_in, heads * 2 * halves, case.bias), x=x,
        train_seed=integer(seed, 0, 2**31 - 1, 40), window=mask_window(seed, tokens),
        changed_at=t, changed=None if t is None else _moderate(
            future_changed(x, t, seed), t, attention_weights(seed, d_in, heads * 2 * halves,
                                                             case.bias),
            heads, DEFAULT_BASE if case.base is None else rope_base(seed)),
        too_long=randn(seed, (batch, tokens + extra + 1, d_in), stream=11, scale=case.scale))


def _moderate(changed: torch.Tensor, t: int, weights: dict, heads: int,
              base: float) -> torch.Tensor:
    """``_common.moderate_future`` with the scaled scores after RoPE, computed here (this runs
    where the student's code runs, which never imports the reference): only their size
    matters."""
    def scores(x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        head_dim = weights["W_query.weight"].shape[0] // heads

        def project(name: str) -> torch.Tensor:
            found = x.double() @ weights[f"{name}.weight"].double().T
            if weights.get(f"{name}.bias") is not None:
                found = found + weights[f"{name}.bias"].double()
            found = found.view(b, n, heads, head_dim).transpose(1, 2)
            theta = torch.arange(n, dtype=torch.float64)[:, None] * base ** (
                -torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
            theta = torch.cat([theta, theta], dim=-1)
            half = torch.cat([-found[..., head_dim // 2:], found[..., :head_dim // 2]], dim=-1)
            return found * theta.cos() + half * theta.sin()

        return project("W_query") @ project("W_key").transpose(-1, -2) / head_dim ** 0.5

    return moderate_future(changed, t, scores)


MHA_HINT = ("split the heads to (b, num_heads, num_tokens, head_dim) first, then rotate queries "
            "and keys (not values) with tables of head_dim columns, sliced to num_tokens rows")


def _build(student: Student, call: ModuleCall, weights: bool = True):
    return student.build(MHA, call.args, call.kwargs, weights=call.weights if weights else None,
                         seed=call.seed)


def _names(model, kind: str) -> list[str]:
    """The names of the module's ``buffers`` or ``parameters``, read with the unbound
    nn.Module method (the module's own may be overridden): a claim."""
    return sorted(name for name, _ in getattr(torch.nn.Module, f"named_{kind}")(model))


def _observe_common(student: Student, call: ModuleCall, model) -> dict:
    """What basics and contract both ask, last: the forward with the grader's mask swapped
    into the registered 'mask' buffer, the meta-device forward (it empties the module), and
    the output of a module left with its own initial weights."""
    return {"swapped": Student.attempt(lambda: swapped_mask_forward(model, call.x, call.window)),
            "meta": Student.attempt(
                lambda: meta_forward(model, (call.batch, call.tokens, call.d_in))),
            # unscaled: with scores around 1e4 a correct module's every query can pick the same
            # key (token 0), and then every output is the same
            "fresh": Student.attempt(lambda: forward(_build(student, call, weights=False),
                                                     call.x / call.scale))}


def _judge_out(verdict: Verdict, field: str, call: ModuleCall, x: torch.Tensor,
               train_seed: int | None = None) -> bool:
    from autograder.reference.rope import attention

    x64 = x.double().numpy()
    common = {"dropout": call.dropout if train_seed is not None else 0.0, "seed": train_seed}

    def reference(**changes):
        return attention(x64, call.weights, call.heads,
                         **{"theta_base": call.theta_base, **common, **changes})

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
        if call.theta_base != DEFAULT_BASE:
            found["theta_base ignored (10000 used)"] = reference(theta_base=DEFAULT_BASE)
        if train_seed is not None:
            found["no dropout in train mode"] = reference(dropout=0.0)
        return found

    # scores of 1e4 in float32 (scale 60): output errors up to ~2e-4 x scale
    extreme = call.scale > 1.0
    mode = "" if train_seed is None else f", train mode after torch.manual_seed({train_seed})"
    return verdict.array(field, reference(), f"{call.what}: output for x of shape "
                         f"{tuple(x.shape)}{mode}",
                         atol=(2e-3 if extreme else 2e-5) * max(1.0, call.scale),
                         rtol=1e-3 if extreme else 1e-4, dtype="float32", library="torch",
                         variants=variants, hint=MHA_HINT)


def _judge_common(verdict: Verdict, call: ModuleCall) -> None:
    """The mask buffer through behaviour (the point; the buffer names are claims), the meta
    forward beside it, and the module's own initial weights."""
    from autograder.reference.rope import attention

    expected = attention(call.x.double().numpy(), call.weights, call.heads,
                         theta_base=call.theta_base,
                         hidden=window_hidden(call.tokens, call.window))
    verdict.array("swapped", expected, f"{call.what}: output for x of shape "
                  f"{tuple(call.x.shape)} with the grader's mask (each query sees itself and the "
                  f"{call.window} keys before it) swapped into its registered 'mask' buffer",
                  atol=2e-5 * max(1.0, call.scale), rtol=1e-4, dtype="float32",
                  library="torch", hint=MASK_FOLLOWS_HINT)
    verdict.equal("meta", ["meta", call.batch, call.tokens, call.d_out],
                  f"{call.what} after .to('meta'), a forward on a meta input as "
                  "[device, shape] (the mask and the cos/sin tables must be registered "
                  "buffers, so .to(device) moves them)",
                  hint="register the mask and the RoPE tables with self.register_buffer")
    fresh = verdict.array_of("fresh", (call.batch, call.tokens, call.d_out),
                             f"{call.what} with its own initial weights: output")
    spread = np.ptp(fresh.values.reshape(-1, call.d_out), axis=0)
    if np.isfinite(fresh.values).all() and float(spread.max()) > 1e-6:
        verdict.ok("fresh")
    else:
        verdict.fail(f"{call.what} with its own initial weights gives the same output for "
                     "every token: W_query, W_key, W_value and out_proj must start as nn.Linear "
                     "initialises them (is a weight zeroed in __init__?)")


module_check = partial(Check, exercise=MHA, inputs=_module, needs=MHA_NEEDS)


# rope_mha_basics: the visible configuration (with the grader's weights), its one-token
# property, the buffers the visible cell asserts, .to("meta"); and a seeded configuration.

def _observe_basics(student: Student, case: Module, call: ModuleCall) -> dict:
    model = _build(student, call)
    return {"out": Student.attempt(lambda: forward(model, call.x)),
            "one token": Student.attempt(lambda: forward(model, call.x[:, :1])),
            "buffers": Student.attempt(lambda: _names(model, "buffers")),
            **_observe_common(student, call, model)}


def _judge_basics(verdict: Verdict, case: Module, call: ModuleCall) -> None:
    _judge_out(verdict, "out", call, call.x)
    # one token sits at position 0, where RoPE is the identity: MultiHeadAttention's output
    _judge_out(verdict, "one token", call, call.x[:, :1])
    _judge_common(verdict, call)
    # a claim, judged beside the behaviour above: what the visible cell asserts
    names = verdict.value("buffers", f"{call.what}: the names of its buffers", list)
    if "mask" in names and len(names) >= 2:
        verdict.ok("buffers")
    else:
        verdict.fail(f"{call.what} has buffers {names}; expected the mask and the cos/sin "
                     "tables registered with self.register_buffer (not nn.Parameter, not plain "
                     "attributes)")


SCALED = "inputs scaled so the scores reach about 1e4 (a softmax must subtract the row maximum)"

rope_mha_basics = module_check(
    "rope_mha_basics", observe=_observe_basics, judge=_judge_basics,
    cases=[Module("the visible configuration", 6, 3, 2, 7, 3, 2),
           Module("seeded", (3, 10), (1, 4), (1, 4), (2, 9), (1, 4), (1, 3)),
           # what the visible cell also asserts: qkv_bias both ways, a theta_base, large scores
           Module("qkv_bias=False and a theta_base drawn from the seed",
                  (3, 10), (1, 3), (2, 4), (4, 10), (1, 3), (1, 2), False, "seeded"),
           Module("qkv_bias=True, a theta_base drawn from the seed, num_tokens = context_length",
                  (3, 10), (1, 3), (1, 4), (3, 10), 0, (1, 2), True, "seeded"),
           Module(SCALED, (4, 8), (1, 3), (1, 4), (3, 9), (0, 3), (1, 2), scale=60.0)])


def _observe_values(student: Student, case: Module, call: ModuleCall) -> dict:
    model = _build(student, call)
    train = call.train_seed if call.dropout else None
    return {"out": Student.attempt(lambda: forward(model, call.x, train))}


def _judge_values(verdict: Verdict, case: Module, call: ModuleCall) -> None:
    _judge_out(verdict, "out", call, call.x, call.train_seed if call.dropout else None)


rope_mha_values = module_check(
    "rope_mha_values", observe=_observe_values, judge=_judge_values,
    cases=[Module("default qkv_bias and theta_base, fewer tokens than context_length",
                  (3, 10), (1, 4), (1, 4), (2, 9), (1, 6), (1, 3)),
           Module("qkv_bias=True, all context_length tokens",
                  (3, 10), (2, 4), (1, 3), (2, 8), 0, (1, 2), True),
           Module("qkv_bias=False and a theta_base drawn from the seed",
                  (3, 10), (1, 3), (2, 4), (4, 10), (0, 3), (1, 2), False, "seeded"),
           Module("qkv_bias=True and a theta_base drawn from the seed",
                  (3, 10), (1, 3), (1, 4), (3, 10), (0, 3), (1, 2), True, "seeded"),
           Module("one head, one token", (2, 8), 1, (1, 4), 1, (0, 8), (1, 3)),
           Module("2 heads, 40 to 64 tokens", (8, 16), 2, (2, 6), (40, 64), (0, 8), 1),
           Module(SCALED, (4, 8), (1, 3), (1, 4), (3, 9), (0, 3), (1, 2), scale=60.0),
           Module("train mode, dropout drawn from the seed",
                  (3, 8), (1, 3), (1, 3), (3, 8), (0, 3), (1, 2), dropout=(0.1, 0.6))])


def _observe_contract(student: Student, case: Module, call: ModuleCall) -> dict:
    seen = {"indivisible": Student.attempt(lambda: student.get(MHA)(*call.indivisible))}
    model = _build(student, call)
    seen["out"] = Student.attempt(lambda: forward(model, call.x))
    seen["train out"] = Student.attempt(lambda: forward(model, call.x, call.train_seed))
    for attr in ("d_out", "num_heads", "head_dim"):
        seen[attr] = Student.attempt(lambda a=attr: getattr(model, a))
    seen["layer types"] = Student.attempt(lambda: [type(getattr(model, n)).__name__
                                                   for n in ATTENTION_LAYERS])
    seen["parameters"] = Student.attempt(lambda: _names(model, "parameters"))
    seen["buffers"] = Student.attempt(lambda: _names(model, "buffers"))
    seen["mask shape"] = Student.attempt(
        lambda: list(dict(torch.nn.Module.named_buffers(model))["mask"].shape))
    return {**seen, **_observe_common(student, call, model)}


def _judge_contract(verdict: Verdict, case: Module, call: ModuleCall) -> None:
    what = call.what
    verdict.raises("indivisible", f"{MHA}{call.indivisible} (d_out not divisible by num_heads)",
                   "ValueError")
    _judge_out(verdict, "out", call, call.x)
    _judge_out(verdict, "train out", call, call.x, call.train_seed)
    _judge_common(verdict, call)
    # claims about structure, judged beside the behaviour above
    for attr, expected in (("d_out", call.d_out), ("num_heads", call.heads),
                           ("head_dim", call.head_dim)):
        verdict.equal(attr, expected, f"{what}.{attr}")
    verdict.equal("layer types", ["Linear"] * 4,
                  f"{what}: the types of {', '.join(ATTENTION_LAYERS)}",
                  hint="W_query, W_key, W_value are nn.Linear(d_in, d_out, bias=qkv_bias); "
                       "out_proj is nn.Linear(d_out, d_out)")
    expected = sorted(f"{layer}.{p}" for layer in ATTENTION_LAYERS for p in ("weight", "bias"))
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
    verdict.equal("mask shape", [call.context, call.context],
                  f"{what}: the shape of the mask buffer", hint="(context_length, context_length)")


rope_mha_contract = module_check(
    "rope_mha_contract", observe=_observe_contract, judge=_judge_contract, blame=False,
    cases=[Module("the contract configuration", 6, 3, 2, 6, 3, 2, True, dropout=0.25),
           Module("seeded", (3, 10), (2, 4), (1, 4), (2, 8), (0, 4), (1, 2), True, "seeded",
                  dropout=(0.1, 0.5))])


def _observe_causal(student: Student, case: Module, call: ModuleCall) -> dict:
    model = _build(student, call)
    return {"out": Student.attempt(lambda: forward(model, call.x)),
            "changed": Student.attempt(lambda: forward(model, call.changed)),
            "too long": Student.attempt(lambda: forward(model, call.too_long))}


def _judge_causal(verdict: Verdict, case: Module, call: ModuleCall) -> None:
    verdict.raises("too long", f"{call.what} on {call.context + 1} tokens (context_length is "
                   f"{call.context})", "ValueError")
    # every answer against the reference; causality only names the bug
    _judge_out(verdict, "out", call, call.x)
    if not _judge_out(verdict, "changed", call, call.changed):
        from autograder.reference.rope import attention

        expected = attention(call.changed.double().numpy(), call.weights, call.heads,
                             theta_base=call.theta_base, dropout=0.0, seed=None)
        diagnosis = causal_diagnosis(verdict, "out", "changed", expected, call.changed_at)
        if diagnosis:
            verdict.fail(f"{call.what}: {diagnosis}")


rope_mha_causal = module_check(
    "rope_mha_causal", observe=_observe_causal, judge=_judge_causal,
    # two heads or more (rotating before the split is the right rotation with one head), and
    # head_dim 4 or more (the default theta_base only shows there)
    cases=[Module("seeded", (3, 10), (2, 4), (2, 4), (3, 12), 0, (1, 3)),
           Module("qkv_bias=True, theta_base drawn", (3, 10), (1, 3), (1, 3), (3, 10), (0, 4),
                  (1, 2), True, "seeded")])
