"""Hidden checks for 01-positional-encoding (NumPy only).

The worked example of a check (CONTRIBUTING.md): a table of cases, one ``observe`` that
makes the calls a case asks for, one ``judge`` that rebuilds the inputs from the case and
its seed and compares the answers with ``autograder.reference.positional_encoding``.
Sizes and bases are drawn from the seed, so no answer can be looked up in advance.
"""

from __future__ import annotations

import numpy as np

from autograder.checks import Check, Student, Verdict
from autograder.checks._common import integer, normal, uniform

ASSIGNMENT = "01-positional-encoding"
PE = "sinusoidal_positional_encoding"
ADD = "add_positional_encoding"
REL = "relative_position_matrix"


def _pe_args(case: tuple, seed: int) -> tuple[int, int, float | None]:
    """(seq_len, d_model, base or None for the default) of a case."""
    kind, *rest = case
    if kind == "fixed":
        return tuple(rest)
    n = integer(seed, rest[0], rest[1])
    d = 2 * integer(seed, rest[2], rest[3], 1)
    return n, d, (None if rest[4] is None else round(uniform(seed, *rest[4]), 3))


def _pe_call(n: int, d: int, base: float | None) -> str:
    return f"{PE}({n}, {d}" + (")" if base is None else f", base={base})")


def _observe_pe(student: Student, case: tuple, seed: int) -> dict:
    n, d, base = _pe_args(case, seed)
    if base is None:
        return {"pe": student.call(PE, n, d)}
    return {"pe": student.call(PE, n, d, base=base)}


def _judge_pe(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference.positional_encoding import encoding_bugs, reference_encoding

    n, d, base = _pe_args(case, seed)
    b = 10000.0 if base is None else base
    verdict.array("pe", reference_encoding(np.arange(n), d, b), _pe_call(n, d, base), atol=1e-9,
                  dtype="float64", library="numpy", variants=lambda: encoding_bugs(n, d, b),
                  hint="is the base argument used?" if base is not None
                  else "rows are positions, columns are dimensions")


# --- sinusoidal_positional_encoding -------------------------------------------------------

sinusoidal_basics = Check(  # what the visible cell asserts, plus a size drawn from the seed
    "sinusoidal_basics", exercise=PE,
    cases=[("fixed", 4, 6, None), ("seeded", 2, 12, 1, 6, None)])
sinusoidal_basics.observe(_observe_pe)
sinusoidal_basics.judge(_judge_pe)

sinusoidal_values = Check(
    "sinusoidal_values", exercise=PE,
    cases=[("fixed", 1, 2, None), ("seeded", 2, 9, 1, 3, (2.0, 50.0)),
           ("seeded", 30, 140, 4, 40, (500.0, 20000.0)), ("seeded", 5, 60, 2, 9, None),
           ("seeded", 1, 3, 1, 8, (1.5, 10000.0))])
sinusoidal_values.observe(_observe_pe)
sinusoidal_values.judge(_judge_pe)

SIN_ERRORS = [((4, 5), "d_model"), ((4, 0), "d_model"), ((4, -2), "d_model"),
              ((0, 4), "seq_len"), ((-3, 4), "seq_len"), (("odd",), "d_model")]

sinusoidal_errors = Check("sinusoidal_errors", exercise=PE, cases=SIN_ERRORS)


def _error_args(case: tuple, seed: int) -> tuple[int, int]:
    args, _ = case
    return (integer(seed, 1, 20), 2 * integer(seed, 1, 10, 1) + 1) if args == ("odd",) else args


@sinusoidal_errors.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    return {"error": student.call(PE, *_error_args(case, seed)),
            "valid": student.call(PE, integer(seed, 1, 6, 2), 2)}  # it does not always raise


@sinusoidal_errors.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    n, d = _error_args(case, seed)
    verdict.raises("error", f"{PE}({n}, {d})", "ValueError", mentions=case[1])
    valid = integer(seed, 1, 6, 2)  # values are judged elsewhere: here only that it answers
    verdict.array_of("valid", (valid, 2), _pe_call(valid, 2, None), dtype="float64")
    verdict.ok("valid")


# --- add_positional_encoding --------------------------------------------------------------

ADD_HINT = "the encoding must broadcast over the batch (one row per position) and keep x.dtype"


def _add_input(case: tuple, seed: int) -> np.ndarray:
    """``case``: ("ones", shape, dtype), ("zeros", shape, dtype) or ("seeded", rank, dtype)."""
    kind, shape, dtype = case
    if kind == "ones":
        return np.ones(shape, dtype)
    if kind == "zeros":
        return np.zeros(shape, dtype)
    dims = (integer(seed, 1, 3, 2),) if shape == 3 else ()
    dims += (integer(seed, 1, 12), 2 * integer(seed, 1, 6, 1))
    return normal(seed, dims, dtype, scale=3.0)


def _add_call(case: tuple, x: np.ndarray, base: float | None) -> str:
    what = f"{ADD}(x" + (")" if base is None else f", base={base})")
    return f"{what} for x of shape {x.shape}, {x.dtype} ({case[0]})"


def _add_base(case: tuple, seed: int, with_base: bool) -> float | None:
    return round(uniform(seed, 3.0, 5000.0), 2) if with_base and case[0] == "seeded" else None


def _observe_add(with_base: bool):
    def observe(student: Student, case: tuple, seed: int) -> dict:
        x = _add_input(case, seed)
        base = _add_base(case, seed, with_base)
        out = (student.call(ADD, x) if base is None else student.call(ADD, x, base=base))
        return {"out": out, "x after": Student.attempt(lambda: x)}
    return observe


def _judge_add(with_base: bool):
    def judge(verdict: Verdict, case: tuple, seed: int) -> None:
        from autograder.reference.positional_encoding import reference_encoding

        x = _add_input(case, seed)
        base = _add_base(case, seed, with_base)
        pe = reference_encoding(np.arange(x.shape[-2]), x.shape[-1],
                                10000.0 if base is None else base)
        tight = x.dtype == np.float64
        what = _add_call(case, x, base)
        verdict.array("out", x.astype(np.float64) + pe, what, atol=1e-9 if tight else 1e-6,
                      rtol=1e-9 if tight else 1e-6, dtype=x.dtype.name, library="numpy",
                      hint=ADD_HINT)
        after = verdict.array_of("x after", x.shape, "the input x after the call")
        if np.array_equal(after.values, x.astype(np.float64)):
            verdict.ok("x after")
        else:
            verdict.fail(f"{ADD} modified its input x in place (x += pe?): return x + pe and "
                         "leave x unchanged")
    return judge


add_basics = Check("add_basics", exercise=ADD,
                   cases=[("ones", (3, 4), np.float64), ("zeros", (2, 3, 4), np.float32),
                          ("seeded", 2, np.float64)])
add_basics.observe(_observe_add(with_base=False))
add_basics.judge(_judge_add(with_base=False))

add_contract = Check("add_contract", exercise=ADD,
                     cases=[("seeded", 3, np.float32), ("seeded", 3, np.float64),
                            ("seeded", 2, np.float32), ("ones", (1, 2), np.float64),
                            ("seeded", 2, np.float64)])
add_contract.observe(_observe_add(with_base=True))
add_contract.judge(_judge_add(with_base=True))


# --- relative_position_matrix --------------------------------------------------------------

def _relative_args(case: tuple, seed: int) -> tuple[int, int, float | None]:
    if case[0] == "fixed":
        return case[1:]
    _, low, high, half_low, half_high, with_base = case
    offset = integer(seed, low, high)
    d = 2 * integer(seed, half_low, half_high, 1)
    return offset, d, round(uniform(seed, 20.0, 20000.0), 2) if with_base else None


def _relative_call(offset: int, d: int, base: float | None) -> str:
    return f"{REL}({offset}, {d}" + (")" if base is None else f", base={base})")


def _observe_relative(student: Student, case: tuple, seed: int) -> dict:
    offset, d, base = _relative_args(case, seed)
    if base is None:
        return {"M": student.call(REL, offset, d)}
    return {"M": student.call(REL, offset, d, base=base)}


def _judge_relative(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference.positional_encoding import reference_encoding, reference_rotation

    offset, d, base = _relative_args(case, seed)
    b = 10000.0 if base is None else base
    what = _relative_call(offset, d, base)
    M = verdict.array_of("M", (d, d), what, hint="M acts on vectors of d_model numbers")
    positions = np.arange(max(0, -offset), max(0, -offset) + 40)
    shifted = reference_encoding(positions + offset, d, b)
    error = float(np.max(np.abs(reference_encoding(positions, d, b) @ M.values.T - shifted)))
    # the point: M against the reference rotation; the shift property only names the bug
    expected = reference_rotation(offset, d, b)
    if np.allclose(M.values, expected, atol=1e-8, rtol=0.0):
        verdict.ok("M")
        return
    message = (f"{what}: pe[p + {offset}] should equal M @ pe[p] for every p, but differs by "
               f"up to {error:.3g}" if error > 1e-8 else
               f"{what}: M differs from the block-diagonal rotation by up to "
               f"{float(np.max(np.abs(M.values - expected))):.3g}")
    if np.allclose(M.values, reference_rotation(-offset, d, b), atol=1e-8):
        message += ". M shifts by -offset: is the sign of the sine terms flipped (M transposed)?"
    elif b != 10000.0 and np.allclose(M.values, reference_rotation(offset, d, 10000.0), atol=1e-8):
        message += ". M ignores the base argument"
    verdict.fail(message)


relative_basics = Check("relative_basics", exercise=REL,
                        cases=[("fixed", 1, 4, None), ("seeded", 1, 9, 1, 4, False)])
relative_basics.observe(_observe_relative)
relative_basics.judge(_judge_relative)

relative_property = Check(
    "relative_property", exercise=REL,
    cases=[("seeded", 2, 30, 2, 8, False), ("seeded", -30, -1, 2, 8, False),
           ("fixed", 0, 6, None), ("seeded", -12, 12, 3, 12, True), ("fixed", 1, 2, None),
           ("seeded", 5, 60, 1, 5, True)])
relative_property.observe(_observe_relative)
relative_property.judge(_judge_relative)
