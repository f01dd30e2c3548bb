"""Hidden checks for 01-positional-encoding (NumPy only).

The worked example of a check (CONTRIBUTING.md): a table of typed cases; one ``inputs``
that builds a case's sizes, base and arrays from the case and its seed; one ``observe``
that makes the calls with the student's code; one ``judge`` that compares the answers with
``autograder.reference.positional_encoding``. Sizes and bases are drawn from the seed, so no
answer can be looked up in advance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from autograder.checks import Case, Check, Student, Verdict
from autograder.checks._common import call_text, integer, keywords, normal, size, uniform

ASSIGNMENT = "01-positional-encoding"
PE = "sinusoidal_positional_encoding"
ADD = "add_positional_encoding"
REL = "relative_position_matrix"
DEFAULT_BASE = 10000.0


# --- sinusoidal_positional_encoding -------------------------------------------------------

@dataclass(frozen=True)
class Encoding(Case):
    """An encoding of ``positions`` rows and ``2 * halves`` columns: fixed numbers, or
    ``(low, high)`` ranges drawn from the seed; ``bases`` a fixed base, a range, or None for
    the default."""

    positions: int | tuple[int, int]
    halves: int | tuple[int, int]
    bases: float | tuple[float, float] | None = None


@dataclass(frozen=True)
class EncodingCall:
    n: int
    d: int
    base: float | None  # None: the default, omitted from the call

    @property
    def what(self) -> str:
        return call_text(PE, (self.n, self.d), keywords(base=self.base))


def _encoding(case: Encoding, seed: int) -> EncodingCall:
    base = case.bases if case.bases is None or isinstance(case.bases, float) \
        else round(uniform(seed, *case.bases), 3)
    return EncodingCall(size(seed, case.positions, 0), 2 * size(seed, case.halves, 1), base)


def _observe_pe(student: Student, case: Encoding, call: EncodingCall) -> dict:
    return {"pe": student.call(PE, call.n, call.d, **keywords(base=call.base))}


def _judge_pe(verdict: Verdict, case: Encoding, call: EncodingCall) -> None:
    from autograder.reference.positional_encoding import encoding_bugs, reference_encoding

    n, d, b = call.n, call.d, DEFAULT_BASE if call.base is None else call.base
    verdict.array("pe", reference_encoding(np.arange(n), d, b), call.what, atol=1e-9,
                  dtype="float64", library="numpy", variants=lambda: encoding_bugs(n, d, b),
                  hint="is the base argument used?" if call.base is not None
                  else "rows are positions, columns are dimensions")


encoding_check = partial(Check, exercise=PE, inputs=_encoding, observe=_observe_pe,
                         judge=_judge_pe)

sinusoidal_basics = encoding_check(  # what the visible cell asserts, plus a seeded size
    "sinusoidal_basics",
    cases=[Encoding("fixed", 4, 3), Encoding("fixed, base 100", 3, 2, 100.0),
           Encoding("seeded", (2, 12), (1, 6))])

sinusoidal_values = encoding_check(
    "sinusoidal_values",
    cases=[Encoding("fixed", 1, 1), Encoding("seeded", (2, 9), (1, 3), (2.0, 50.0)),
           Encoding("seeded", (30, 140), (4, 40), (500.0, 20000.0)),
           Encoding("seeded", (5, 60), (2, 9)), Encoding("seeded", (1, 3), (1, 8), (1.5, 10000.0))])


@dataclass(frozen=True)
class BadSize(Case):
    """A call that must raise ValueError naming ``names``; ``size`` None: an odd d_model
    drawn from the seed."""

    size: tuple[int, int] | None
    names: str


@dataclass(frozen=True)
class BadCall:
    n: int
    d: int
    valid: int  # the rows of a valid call beside it: it does not always raise


def _bad_size(case: BadSize, seed: int) -> BadCall:
    n, d = case.size or (integer(seed, 1, 20), 2 * integer(seed, 1, 10, 1) + 1)
    return BadCall(n, d, integer(seed, 1, 6, 2))


def _observe_errors(student: Student, case: BadSize, call: BadCall) -> dict:
    return {"error": student.call(PE, call.n, call.d), "valid": student.call(PE, call.valid, 2)}


def _judge_errors(verdict: Verdict, case: BadSize, call: BadCall) -> None:
    verdict.raises("error", call_text(PE, (call.n, call.d)), "ValueError", mentions=case.names)
    # values are judged elsewhere: here only that it answers
    verdict.array_of("valid", (call.valid, 2), call_text(PE, (call.valid, 2)), dtype="float64")
    verdict.ok("valid")


sinusoidal_errors = Check(
    "sinusoidal_errors", exercise=PE, inputs=_bad_size, observe=_observe_errors,
    judge=_judge_errors, blame=False,
    cases=[BadSize("d_model 5", (4, 5), "d_model"), BadSize("d_model 0", (4, 0), "d_model"),
           BadSize("d_model -2", (4, -2), "d_model"), BadSize("seq_len 0", (0, 4), "seq_len"),
           BadSize("seq_len -3", (-3, 4), "seq_len"),
           BadSize("an odd d_model drawn from the seed", None, "d_model")])


# --- add_positional_encoding --------------------------------------------------------------

ADD_HINT = "the encoding must broadcast over the batch (one row per position) and keep x.dtype"


@dataclass(frozen=True)
class Addition(Case):
    """``x`` of ones or zeros of a fixed ``shape``, or normal values of rank ``shape`` with
    sizes drawn from the seed; ``with_base``: pass a base drawn from the seed (seeded x only);
    ``base``: pass this fixed base."""

    fill: str  # "ones", "zeros" or "seeded"
    shape: tuple[int, ...] | int
    dtype: type
    with_base: bool = False
    base: float | None = None


@dataclass(frozen=True)
class AdditionCall:
    x: np.ndarray
    base: float | None

    @property
    def what(self) -> str:
        call = f"{ADD}(x" + (")" if self.base is None else f", base={self.base})")
        return f"{call} for x of shape {self.x.shape}, {self.x.dtype}"


def _addition(case: Addition, seed: int) -> AdditionCall:
    if case.fill == "ones":
        x = np.ones(case.shape, case.dtype)
    elif case.fill == "zeros":
        x = np.zeros(case.shape, case.dtype)
    else:
        dims = (integer(seed, 1, 3, 2),) if case.shape == 3 else ()
        x = normal(seed, dims + (integer(seed, 1, 12), 2 * integer(seed, 1, 6, 1)), case.dtype,
                   scale=3.0)
    base = round(uniform(seed, 3.0, 5000.0), 2) if case.with_base and case.fill == "seeded" \
        else case.base
    return AdditionCall(x, base)


def _observe_add(student: Student, case: Addition, call: AdditionCall) -> dict:
    x = call.x
    out = student.call(ADD, x) if call.base is None else student.call(ADD, x, base=call.base)
    return {"out": out, "x after": Student.attempt(lambda: x)}


def _judge_add(verdict: Verdict, case: Addition, call: AdditionCall) -> None:
    from autograder.reference.positional_encoding import reference_encoding

    x = call.x
    n, d = x.shape[-2:]
    pe = reference_encoding(np.arange(n), d, DEFAULT_BASE if call.base is None else call.base)
    tight = x.dtype == np.float64

    def variants() -> dict:
        found = {}
        if call.base is not None:
            found["x plus the encoding of the default base: is base passed on to "
                  f"{PE}?"] = x + reference_encoding(np.arange(n), d, DEFAULT_BASE)
        return found

    verdict.array("out", x.astype(np.float64) + pe, f"{call.what} ({case.label})",
                  atol=1e-9 if tight else 1e-6, rtol=1e-9 if tight else 1e-6,
                  dtype=x.dtype.name, library="numpy", variants=variants, hint=ADD_HINT)
    after = verdict.array_of("x after", x.shape, "the input x after the call")
    if np.array_equal(after.values, x.astype(np.float64)):
        verdict.ok("x after")
    else:
        verdict.fail(f"{ADD} modified its input x in place (x += pe?): return x + pe and "
                     "leave x unchanged")


addition_check = partial(Check, exercise=ADD, inputs=_addition, observe=_observe_add,
                         judge=_judge_add, needs=(PE,))

add_basics = addition_check(
    "add_basics",
    cases=[Addition("ones", "ones", (3, 4), np.float64),
           Addition("zeros, batched", "zeros", (2, 3, 4), np.float32),
           Addition("zeros, base 100", "zeros", (2, 4), np.float64, base=100.0),
           Addition("seeded", "seeded", 2, np.float64)])

add_contract = addition_check(
    "add_contract",
    cases=[Addition("batched, float32", "seeded", 3, np.float32, True),
           Addition("batched, float64", "seeded", 3, np.float64, True),
           Addition("float32", "seeded", 2, np.float32, True),
           Addition("one position", "ones", (1, 2), np.float64, True),
           Addition("float64", "seeded", 2, np.float64, True)])


# --- relative_position_matrix --------------------------------------------------------------

@dataclass(frozen=True)
class Shift(Case):
    """``M`` for an ``offset`` and ``2 * halves`` dimensions: fixed, or ``(low, high)``
    ranges drawn from the seed; ``with_base``: a base drawn from the seed; ``base``: this
    fixed base."""

    offset: int | tuple[int, int]
    halves: int | tuple[int, int]
    with_base: bool = False
    base: float | None = None


@dataclass(frozen=True)
class ShiftCall:
    offset: int
    d: int
    base: float | None

    @property
    def what(self) -> str:
        return call_text(REL, (self.offset, self.d), keywords(base=self.base))


def _shift(case: Shift, seed: int) -> ShiftCall:
    base = round(uniform(seed, 20.0, 20000.0), 2) if case.with_base else case.base
    return ShiftCall(size(seed, case.offset, 0), 2 * size(seed, case.halves, 1), base)


def _observe_relative(student: Student, case: Shift, call: ShiftCall) -> dict:
    return {"M": student.call(REL, call.offset, call.d, **keywords(base=call.base))}


def _judge_relative(verdict: Verdict, case: Shift, call: ShiftCall) -> None:
    from autograder.reference.positional_encoding import reference_encoding, reference_rotation

    offset, d, b = call.offset, call.d, DEFAULT_BASE if call.base is None else call.base
    M = verdict.array_of("M", (d, d), call.what, hint="M acts on vectors of d_model numbers")
    # the point: M against the reference rotation; the shift property only names the bug
    expected = reference_rotation(offset, d, b)
    if np.allclose(M.values, expected, atol=1e-8, rtol=0.0):
        verdict.ok("M")
        return
    positions = np.arange(max(0, -offset), max(0, -offset) + 40)
    shifted = reference_encoding(positions + offset, d, b)
    error = float(np.max(np.abs(reference_encoding(positions, d, b) @ M.values.T - shifted)))
    message = (f"{call.what}: pe[p + {offset}] should equal M @ pe[p] for every p, but "
               f"differs by up to {error:.3g}" if error > 1e-8 else
               f"{call.what}: M differs from the block-diagonal rotation by up to "
               f"{float(np.max(np.abs(M.values - expected))):.3g}")
    if np.allclose(M.values, reference_rotation(-offset, d, b), atol=1e-8):
        message += ". M shifts by -offset: is the sign of the sine terms flipped (M transposed)?"
    elif b != DEFAULT_BASE and np.allclose(M.values, reference_rotation(offset, d, DEFAULT_BASE),
                                           atol=1e-8):
        message += ". M ignores the base argument"
    verdict.fail(message)


shift_check = partial(Check, exercise=REL, inputs=_shift, observe=_observe_relative,
                      judge=_judge_relative)

relative_basics = shift_check(
    "relative_basics",
    cases=[Shift("fixed", 1, 2), Shift("fixed, base 100", 1, 2, base=100.0),
           Shift("fixed, base 100", -2, 2, base=100.0), Shift("seeded", (1, 9), (1, 4))])

relative_property = shift_check(
    "relative_property",
    cases=[Shift("seeded", (2, 30), (2, 8)), Shift("seeded", (-30, -1), (2, 8)),
           Shift("fixed", 0, 3), Shift("seeded", (-12, 12), (3, 12), True),
           Shift("fixed", 1, 1), Shift("seeded", (5, 60), (1, 5), True)])
