"""Hidden checks for 01-positional-encoding (NumPy only)."""

from __future__ import annotations

import numpy as np

from autograder.checks import Check, Student, Verdict

ASSIGNMENT = "01-positional-encoding"


def _inputs(seed: int, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --- sinusoidal_positional_encoding -------------------------------------------------------

SIN_CASES = [(1, 2, 10000.0), (3, 2, 10000.0), (50, 16, 10000.0), (7, 10, 100.0),
             (128, 64, 10000.0), (9, 6, 2.0)]
SIN_ERRORS = [((4, 5), "d_model"), ((4, 0), "d_model"), ((4, -2), "d_model"),
              ((0, 4), "seq_len"), ((-3, 4), "seq_len")]

sinusoidal_basics = Check("sinusoidal_basics", exercise="sinusoidal_positional_encoding")


@sinusoidal_basics.observe
def _(student: Student) -> dict:
    return {"pe": student.call("sinusoidal_positional_encoding", 4, 6)}


@sinusoidal_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference.positional_encoding import encoding_bugs, reference_encoding

    verdict.array(seen["pe"], reference_encoding(np.arange(4), 6),
                  "sinusoidal_positional_encoding(4, 6)", atol=1e-9, dtype="float64",
                  library="numpy", variants=encoding_bugs(4, 6),
                  hint="rows are positions, columns are dimensions")


sinusoidal_values = Check("sinusoidal_values", exercise="sinusoidal_positional_encoding")


@sinusoidal_values.observe
def _(student: Student) -> dict:
    return {f"{n},{d},{b}": student.call("sinusoidal_positional_encoding", n, d, base=b)
            for n, d, b in SIN_CASES}


@sinusoidal_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference.positional_encoding import encoding_bugs, reference_encoding

    for n, d, b in SIN_CASES:
        verdict.array(seen[f"{n},{d},{b}"], reference_encoding(np.arange(n), d, b),
                      f"sinusoidal_positional_encoding({n}, {d}, base={b})", atol=1e-9,
                      dtype="float64", library="numpy", variants=encoding_bugs(n, d, b),
                      hint="is the base argument used?" if b != 10000.0 else "")


sinusoidal_errors = Check("sinusoidal_errors", exercise="sinusoidal_positional_encoding")


@sinusoidal_errors.observe
def _(student: Student) -> dict:
    return {f"{n},{d}": student.call("sinusoidal_positional_encoding", n, d)
            for (n, d), _ in SIN_ERRORS}


@sinusoidal_errors.judge
def _(seen: dict, verdict: Verdict) -> None:
    for (n, d), argument in SIN_ERRORS:
        verdict.raises(seen[f"{n},{d}"], f"sinusoidal_positional_encoding({n}, {d})",
                       "ValueError", mentions=argument)


# --- add_positional_encoding --------------------------------------------------------------

add_basics = Check("add_basics", exercise="add_positional_encoding")


@add_basics.observe
def _(student: Student) -> dict:  # also everything the cell's visible tests assert
    x = _inputs(0, (3, 4))
    ones = np.ones((3, 4))
    batch = np.zeros((2, 3, 4), dtype=np.float32)
    return {"out": student.call("add_positional_encoding", x),
            "ones": student.call("add_positional_encoding", ones),
            "ones after": Student.attempt(lambda: ones),
            "batch": student.call("add_positional_encoding", batch)}


@add_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference.positional_encoding import reference_encoding

    x = _inputs(0, (3, 4))
    pe = reference_encoding(np.arange(3), 4)
    verdict.array(seen["out"], x + pe, "add_positional_encoding(x) for x of shape (3, 4)",
                  atol=1e-9, dtype="float64", library="numpy")
    verdict.array(seen["ones"], 1 + pe, "add_positional_encoding(np.ones((3, 4)))", atol=1e-9,
                  dtype="float64", library="numpy")
    after = verdict.value(seen["ones after"], "the input")
    if after is not None and not np.array_equal(after.values, np.ones((3, 4))):
        verdict.fail("add_positional_encoding modified its input x in place (x += pe?): "
                     "return x + pe and leave x unchanged")
    verdict.array(seen["batch"], np.broadcast_to(pe, (2, 3, 4)),
                  "add_positional_encoding(x) for x of shape (2, 3, 4), float32", atol=1e-6,
                  dtype="float32", library="numpy",
                  hint="the encoding must broadcast over the batch and keep x.dtype")


ADD_CASES = [  # (name, seed, shape, dtype, base)
    ("batch of 2, float32", 1, (2, 5, 8), np.float32, 10000.0),
    ("batch of 1, float64", 2, (1, 6, 4), np.float64, 10000.0),
    ("2-D, float32, base=100", 3, (7, 6), np.float32, 100.0),
    ("one token", 4, (1, 2), np.float64, 10000.0),
]

add_contract = Check("add_contract", exercise="add_positional_encoding")


@add_contract.observe
def _(student: Student) -> dict:
    seen = {}
    for name, seed, shape, dtype, base in ADD_CASES:
        x = _inputs(seed, shape, dtype)
        seen[name] = student.call("add_positional_encoding", x, base=base)
        seen[name + " input after"] = Student.attempt(lambda x=x: x)
    return seen


@add_contract.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference.positional_encoding import reference_encoding

    for name, seed, shape, dtype, base in ADD_CASES:
        x = _inputs(seed, shape, dtype)
        expected = x.astype(np.float64) + reference_encoding(np.arange(shape[-2]), shape[-1], base)
        tight = dtype == np.float64
        verdict.array(seen[name], expected, f"add_positional_encoding(x, base={base}), x {name} "
                      f"of shape {shape}", atol=1e-9 if tight else 1e-6,
                      rtol=1e-9 if tight else 1e-6, dtype=np.dtype(dtype).name, library="numpy",
                      hint="the encoding must broadcast over the batch (one row per position)")
        after = verdict.value(seen[name + " input after"], "the input")
        if after is not None and not np.array_equal(after.values, x.astype(np.float64)):
            verdict.fail(f"add_positional_encoding modified its input x ({name}) in place "
                         "(x += pe?): return x + pe and leave x unchanged")


# --- relative_position_matrix --------------------------------------------------------------


def _relative_errors(M: np.ndarray, offset: int, d_model: int, base: float) -> float:
    from autograder.reference.positional_encoding import reference_encoding

    positions = np.arange(max(0, -offset), max(0, -offset) + 40)
    pe = reference_encoding(positions, d_model, base)
    shifted = reference_encoding(positions + offset, d_model, base)
    return float(np.max(np.abs(pe @ M.T - shifted)))


def _judge_relative(verdict: Verdict, seen, offset: int, d_model: int, base: float) -> None:
    from autograder.reference.positional_encoding import reference_rotation

    what = f"relative_position_matrix({offset}, {d_model}, base={base})"
    M = verdict.value(seen, what)
    if M is None:
        return
    if not hasattr(M, "values") or M.shape != (d_model, d_model):
        verdict.fail(f"{what} returned {M!r}; expected an array of shape ({d_model}, {d_model})")
        return
    error = _relative_errors(M.values, offset, d_model, base)
    if error <= 1e-8:
        return
    message = (f"{what}: pe[p + {offset}] should equal M @ pe[p] for every p, but differs by "
               f"up to {error:.3g}")
    if np.allclose(M.values, reference_rotation(-offset, d_model, base), atol=1e-8):
        message += ". M shifts by -offset: is the sign of the sine terms flipped (M transposed)?"
    elif np.allclose(M.values, reference_rotation(offset, d_model, 10000.0), atol=1e-8):
        message += ". M ignores the base argument"
    verdict.fail(message)


relative_basics = Check("relative_basics", exercise="relative_position_matrix")


@relative_basics.observe
def _(student: Student) -> dict:
    return {"M": student.call("relative_position_matrix", 1, 4)}


@relative_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    _judge_relative(verdict, seen["M"], 1, 4, 10000.0)


RELATIVE_CASES = [(3, 8, 10000.0), (-2, 8, 10000.0), (0, 6, 10000.0), (17, 16, 10000.0),
                  (-5, 10, 100.0), (1, 2, 10000.0)]

relative_property = Check("relative_property", exercise="relative_position_matrix")


@relative_property.observe
def _(student: Student) -> dict:
    return {f"{k},{d},{b}": student.call("relative_position_matrix", k, d, base=b)
            for k, d, b in RELATIVE_CASES}


@relative_property.judge
def _(seen: dict, verdict: Verdict) -> None:
    for k, d, b in RELATIVE_CASES:
        _judge_relative(verdict, seen[f"{k},{d},{b}"], k, d, b)
