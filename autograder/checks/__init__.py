"""Hidden checks: one module per chapter, one ``Check`` per grade cell.

A check is two steps. *Observe* runs the student's code on fixed inputs and records
what it returned or raised as plain JSON data. *Judge* compares that data with an
independent reference and lists what is wrong, with the likely cause. The nbgrader
hidden test cell runs both in the kernel (``run``); the project's grader observes in
a sandboxed process and judges elsewhere, so patched comparisons, a hijacked kernel
or an object that equals everything change nothing that is judged.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

from autograder import data

__all__ = ["Check", "CheckFailed", "Student", "Verdict", "assignments", "checks_for", "run"]


class CheckFailed(AssertionError):
    """Raised by ``run`` in a notebook; renders as the list of failures, no traceback."""

    def __init__(self, grade_id: str, failures: list[str]):
        self.grade_id = grade_id
        self.failures = failures
        super().__init__("\n".join(failures))

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        head = f"CheckFailed: {self.grade_id} ({len(self.failures)} problem(s))"
        return [head] + [f"  - {f}" for f in self.failures]


class Student:
    """The student's namespace, seen only through calls whose outcome is recorded."""

    def __init__(self, namespace: dict):
        self.namespace = namespace

    def get(self, name: str) -> Any:
        if name not in self.namespace:
            raise NameError(f"name '{name}' is not defined: run the cell that defines it")
        return self.namespace[name]

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``name(*args, **kwargs)``; return its encoded result or the error it raised."""
        return self.attempt(lambda: self.get(name)(*args, **kwargs))

    def build(self, name: str, args: tuple, seed: int,
              probes: dict[str, Callable[[Any], Any]]) -> dict:
        """Build ``name(*args)`` under ``torch.manual_seed(seed)``, then record each probe."""
        import torch

        try:
            torch.manual_seed(seed)
            module = self.get(name)(*args)
        except Exception as exc:  # student code may raise anything
            return {"init": data.error(exc)}
        return {"init": None, **{k: self.attempt(lambda fn=fn: fn(module))
                                 for k, fn in probes.items()}}

    @staticmethod
    def attempt(action: Callable[[], Any]) -> Any:
        try:
            return data.encode(action())
        except Exception as exc:  # student code may raise anything; record it
            return data.error(exc)


class Verdict:
    """Collects failures while judging; each message names expected, found and likely cause."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def built(self, seen: dict, what: str) -> bool:
        """Whether ``Student.build`` built the module; if not, record why."""
        if seen["init"] is not None:
            self.value(seen["init"], what)
            return False
        return True

    def value(self, seen: Any, what: str) -> Any:
        """Decode ``seen``; on an error, record it and return None."""
        found = data.decode(seen)
        if isinstance(found, data.Raised):
            hint = " (the exercise is not completed yet)" if found.type == "NotImplementedError" \
                else ""
            self.fail(f"{what} raised {found.type}: {found.message}{hint}")
            return None
        return found

    def array(self, seen: Any, expected: Any, what: str, *, atol: float = 1e-6,
              rtol: float = 1e-5, dtype: str | None = None, library: str | None = None,
              variants: dict[str, Any] | None = None, hint: str = "") -> bool:
        """Check an array result against ``expected`` (shape, dtype, then values)."""
        import numpy as np

        found = self.value(seen, what)
        if found is None:
            return False
        if not isinstance(found, data.Array):
            kind = found.type if isinstance(found, data.Opaque) else type(found).__name__
            self.fail(f"{what} returned {kind}; expected an array of shape {np.shape(expected)}")
            return False
        if library and found.library != library:
            self.fail(f"{what} returned a {found.library} array; expected a {library} one")
            return False
        expected = np.asarray(expected)
        if found.shape != expected.shape:
            self.fail(f"{what} has shape {found.shape}; expected {expected.shape}"
                      + (f": {hint}" if hint else ""))
            return False
        if dtype and found.dtype != dtype:
            self.fail(f"{what} has dtype {found.dtype}; expected {dtype}")
            return False
        if found.values is None:
            self.fail(f"{what} has {int(np.prod(found.shape))} elements: too many to check")
            return False
        if found.values.dtype == np.bool_ or expected.dtype == np.bool_:
            ok = np.array_equal(found.values, expected)
        else:
            ok = np.allclose(found.values, expected, atol=atol, rtol=rtol, equal_nan=False)
        if ok:
            return True
        message = f"{what} has wrong values: {_first_difference(found.values, expected)}"
        for label, variant in (variants or {}).items():
            variant = np.asarray(variant)
            if variant.shape == found.shape and np.allclose(found.values, variant,
                                                            atol=atol, rtol=rtol):
                message += f". It matches {label}"
                break
        else:
            if hint:
                message += f". Likely cause: {hint}"
        self.fail(message)
        return False

    def raises(self, seen: Any, what: str, error: str = "ValueError",
               mentions: str | None = None) -> bool:
        """Check that the call raised ``error`` whose message names ``mentions``."""
        found = data.decode(seen)
        if not isinstance(found, data.Raised):
            self.fail(f"{what} should raise {error}, but returned {found!r}")
            return False
        if found.type == "NotImplementedError":
            self.fail(f"{what} raised NotImplementedError (the exercise is not completed yet)")
            return False
        if found.type != error:
            self.fail(f"{what} raised {found.type}: {found.message}; expected {error}"
                      + (f" naming '{mentions}'" if mentions else ""))
            return False
        if mentions and mentions not in found.message:
            self.fail(f"{what} raised {error}('{found.message}'); the message should name "
                      f"the argument '{mentions}'")
            return False
        return True

    def equal(self, seen: Any, expected: Any, what: str, hint: str = "") -> bool:
        found = self.value(seen, what)
        if found is None:
            return False
        if found != expected:
            self.fail(f"{what}: expected {expected!r}, found {found!r}"
                      + (f". Likely cause: {hint}" if hint else ""))
            return False
        return True


class Check:
    """One grade cell's check: ``observe`` student code, then ``judge`` what was seen."""

    def __init__(self, grade_id: str, exercise: str):
        self.grade_id = grade_id
        self.exercise = exercise
        self._observe: Callable[[Student], dict] | None = None
        self._judge: Callable[[dict, Verdict], None] | None = None

    def observe(self, fn: Callable[[Student], dict]) -> Callable[[Student], dict]:
        self._observe = fn
        return fn

    def judge(self, fn: Callable[[dict, Verdict], None]) -> Callable[[dict, Verdict], None]:
        self._judge = fn
        return fn

    def observe_in(self, namespace: dict) -> dict:
        """Run the student's code; the result is plain JSON data."""
        return data.roundtrip(self._observe(Student(namespace)))

    def judge_seen(self, seen: dict) -> list[str]:
        """Judge observed data; returns the failures (empty when the check passes)."""
        verdict = Verdict()
        try:
            self._judge(seen, verdict)
        except Exception as exc:  # malformed or surprising data is a failed check, not a crash
            verdict.fail(f"could not judge the observed results ({type(exc).__name__}: {exc})")
        return verdict.failures


def module_name(assignment_id: str) -> str:
    """``01-positional-encoding`` -> ``positional_encoding`` (the chapter's check module)."""
    return assignment_id.split("-", 1)[1].replace("-", "_")


def checks_for(assignment_id: str) -> dict[str, Check]:
    """``{grade_id: Check}`` for one assignment (imports only that chapter's module)."""
    module = importlib.import_module(f"{__name__}.{module_name(assignment_id)}")
    if getattr(module, "ASSIGNMENT", None) != assignment_id:
        raise KeyError(f"{module.__name__} does not declare ASSIGNMENT = '{assignment_id}'")
    return {v.grade_id: v for v in vars(module).values() if isinstance(v, Check)}


def assignments() -> list[str]:
    """Every assignment that has a check module, in course order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "ASSIGNMENT"):
            found.append(module.ASSIGNMENT)
    return sorted(found)


def run(assignment_id: str, grade_id: str, namespace: dict) -> None:
    """Observe and judge in this process (the nbgrader path); raise CheckFailed on failure."""
    checks = checks_for(assignment_id)
    if grade_id not in checks:
        raise KeyError(f"no hidden check '{grade_id}' for assignment {assignment_id}")
    failures = checks[grade_id].judge_seen(checks[grade_id].observe_in(namespace))
    if failures:
        raise CheckFailed(grade_id, failures)


def _first_difference(found, expected) -> str:
    import numpy as np

    found = np.asarray(found, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.abs(found - expected)
    diff = np.where(np.isnan(diff), np.inf, diff)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    where = f"at index {tuple(int(i) for i in index)}" if index else ""
    return (f"largest difference {where} is {float(diff[index]):.3g} "
            f"(found {float(found[index]):.6g}, expected {float(expected[index]):.6g})")
