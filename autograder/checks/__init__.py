"""Hidden checks: one module per chapter, one ``Check`` per grade cell.

A check is a table of cases and two functions. *Observe* runs in the process that ran the
student's code: for one case and one seed it makes the calls the case asks for and returns
the answers as plain JSON data. *Judge* runs in a process that never ran student code: it
rebuilds the inputs and weights from the same case and seed, computes the expected values
with an independent reference and compares them with the answers.

What comes out of the student process is the student's answer, nothing more: the judge
never reads inputs, weights or facts from it. Grading fails closed. A case passes only when
its judge recorded positive evidence (``Verdict.array``, ``raises``, ``equal``, ``ok``) and
no failure; a missing key, ``None`` where a value is due, a value of the wrong kind or shape,
NaN, or data that ``encode`` cannot have written is a failure with a message. A judge that
raises on data that passed those checks is a grader bug (``JudgeError``), never a score.

Seeds: each case gets a seed derived from the check, the case and the run's secret
(``case_seeds``). The nbgrader path uses no secret, so its seeds are fixed; the project's
grader draws a secret per results folder and sends the student process only the derived
seeds, so answers cannot be looked up in advance.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import pkgutil
from typing import Any, Callable, Sequence

from autograder import data
from autograder.records import STUB

__all__ = ["Case", "Check", "CheckFailed", "JudgeError", "Missing", "Student", "Verdict", "assignments",
           "blame_earlier", "case_seeds", "checks_for", "load_weights", "run", "seed_torch"]

RAISED = "raised"  # the key under which a case records an exception its calls raised


class CheckFailed(AssertionError):
    """Raised by ``run`` in a notebook; renders as the list of failures, no traceback."""

    def __init__(self, grade_id: str, failures: list[str]):
        self.grade_id = grade_id
        self.failures = failures
        super().__init__("\n".join(failures))

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        head = f"CheckFailed: {self.grade_id} ({len(self.failures)} problem(s))"
        return [head] + [f"  - {f}" for f in self.failures]


class JudgeError(RuntimeError):
    """A judge raised on data that passed validation: a bug in the grader, not a score."""


class Missing(Exception):
    """Evidence a case needs is absent or unusable; the failure is already recorded."""


# --- the student side ------------------------------------------------------------------------

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

    def build(self, name: str, args: tuple = (), kwargs: dict | None = None,
              weights: dict | None = None, seed: int = 0) -> Any:
        """``name(*args, **kwargs)`` under ``torch.manual_seed(seed)`` (``seed_torch``), then
        the grader's ``weights`` loaded by attribute path (``load_weights``). Raises what the
        student's code raised; the case then records it."""
        seed_torch(seed)
        module = self.get(name)(*args, **(kwargs or {}))
        if weights:
            load_weights(module, weights)
        return module

    @staticmethod
    def attempt(action: Callable[[], Any]) -> Any:
        try:
            return data.encode(action())
        except Exception as exc:  # student code may raise anything; record it
            return data.error(exc)


def seed_torch(seed: int) -> None:
    """What ``torch.manual_seed(seed)`` does for code on the CPU: seed torch's default CPU
    generator. (``torch.manual_seed`` also queues the seed for CUDA and XPU, and formats the
    caller's whole stack to do so: about 2 ms a call in the suite's deep stacks.)"""
    import torch

    torch.default_generator.manual_seed(seed)


def load_weights(module: Any, weights: dict) -> None:
    """Copy each tensor of ``weights`` into ``module`` at its attribute path
    (``"W_query.weight"``, ``"heads.1.W_key.bias"``). A path that does not lead to a tensor
    of the same shape is an error that names the contract's attribute."""
    import torch

    for path, value in weights.items():
        target = module
        for part in path.split("."):
            try:
                target = target[int(part)] if part.isdigit() else getattr(target, part)
            except (AttributeError, IndexError, KeyError, TypeError):
                raise AttributeError(f"the module has no {path} (the contract names it)") from None
        if not isinstance(target, torch.Tensor):
            found = "None" if target is None else type(target).__name__
            hint = ": pass bias=qkv_bias to nn.Linear" if path.endswith(".bias") else ""
            raise AttributeError(f"{path} should be a tensor of shape {tuple(value.shape)}, "
                                 f"found {found}{hint}")
        if tuple(target.shape) != tuple(value.shape):
            raise ValueError(f"{path} has shape {tuple(target.shape)}; expected "
                             f"{tuple(value.shape)}")
        with torch.no_grad():
            target.copy_(value)


# --- the judge side ----------------------------------------------------------------------------

class CaseRaised(data.Raised):
    """The case's calls raised before this answer was recorded (building the module, say)."""


class Verdict:
    """Judges one case's answers; records failures and the evidence that passed.

    ``seen`` is what the student process answered for this case. Every method that reads a
    field validates it first; a field that is missing, ``None``, an error, malformed or of
    the wrong kind is a failure. ``value`` then raises ``Missing`` (the judge stops for this
    case); the comparing methods return False.
    """

    def __init__(self, seen: Any, label: str = "") -> None:
        self.seen = seen
        self.label = label
        self.failures: list[str] = []
        self.asked: set[str] = set()
        self.passed: set[str] = set()
        self._reported_raise = False

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def ok(self, field: str) -> None:
        """Record positive evidence for ``field`` judged by the caller's own comparison."""
        self.passed.add(field)

    def _missing(self, message: str) -> Missing:
        self.fail(message)
        return Missing(message)

    def raw(self, field: str, what: str) -> Any:
        """The decoded answer for ``field``; it may be an exception (``data.Raised``). When
        the case's calls raised before ``field`` was answered, that exception is the answer."""
        self.asked.add(field)
        if not isinstance(self.seen, dict):
            raise self._missing(f"{what}: no answer was recorded (the observation is "
                                f"{type(self.seen).__name__}, not a record)")
        if field in self.seen:
            return self._decode(self.seen[field], what)
        if RAISED in self.seen:
            found = self._decode(self.seen[RAISED], what)
            if isinstance(found, data.Raised):
                return CaseRaised(found.type, found.message)
        raise self._missing(f"{what}: no answer was recorded")

    def _decode(self, value: Any, what: str) -> Any:
        try:
            return data.decode(value)
        except data.Malformed as exc:
            raise self._missing(f"{what}: the recorded answer is malformed ({exc})") from None

    @staticmethod
    def _raised(found: data.Raised) -> str:
        hint = " (the exercise is not completed yet)" if found.type == "NotImplementedError" else ""
        return f"raised {found.type}: {found.message}{hint}"

    def value(self, field: str, what: str, kind: type | tuple[type, ...] | None = None) -> Any:
        """The decoded answer; ``Missing`` unless it is a value (of ``kind``, when given)."""
        found = self.raw(field, what)
        if isinstance(found, CaseRaised):
            if self._reported_raise:
                raise Missing(what)
            self._reported_raise = True
            where = f"{self.label}: " if self.label else ""
            raise self._missing(f"{where}{self._raised(found)}")
        if isinstance(found, data.Raised):
            raise self._missing(f"{what} {self._raised(found)}")
        if found is None:
            raise self._missing(f"{what} returned None: is a `return` missing?")
        if kind is not None and not isinstance(found, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            shown = found.type if isinstance(found, data.Opaque) else type(found).__name__
            raise self._missing(f"{what} returned {shown}; expected {names.replace('Array', 'an array')}")
        return found

    def array(self, field: str, expected: Any, what: str, *, atol: float = 1e-6,
              rtol: float = 1e-5, dtype: str | None = None, library: str | None = None,
              variants: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
              hint: str = "") -> bool:
        """Check an array answer against ``expected`` (shape, dtype, finite values, values).

        ``variants`` (label -> the output of a known bug) only name the bug in a failure's
        message: pass a function that returns them, and they are computed on failure only."""
        import numpy as np

        expected = np.asarray(expected)
        try:
            found = self.array_of(field, expected.shape, what, dtype=dtype, library=library,
                                  hint=hint)
        except Missing:
            return False
        if found.values.dtype == np.bool_ or expected.dtype == np.bool_:
            ok = found.values.dtype == expected.dtype and np.array_equal(found.values, expected)
        else:
            ok = np.allclose(found.values, expected, atol=atol, rtol=rtol, equal_nan=False)
        if ok:
            self.passed.add(field)
            return True
        message = f"{what} has wrong values: {_first_difference(found.values, expected)}"
        if callable(variants):
            variants = variants()
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

    def array_of(self, field: str, shape: tuple[int, ...] | None, what: str, *,
                 dtype: str | None = None, library: str | None = None, hint: str = "",
                 finite: bool = True) -> data.Array:
        """The answer as an ``Array`` of ``shape`` (and dtype, library), with every value
        recorded and, if ``finite``, no NaN; ``Missing`` otherwise."""
        import numpy as np

        found = self.value(field, what, data.Array)
        if library and found.library != library:
            raise self._missing(f"{what} returned a {found.library} array; expected a {library} one")
        if shape is not None and found.shape != tuple(shape):
            raise self._missing(f"{what} has shape {found.shape}; expected {tuple(shape)}"
                                + (f": {hint}" if hint else ""))
        if dtype and found.dtype != dtype:
            raise self._missing(f"{what} has dtype {found.dtype}; expected {dtype}")
        if found.values is None:
            raise self._missing(f"{what} has {int(np.prod(found.shape))} elements: too many to check")
        if finite and found.values.dtype.kind == "f" and not np.isfinite(found.values).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(found.values))[0])
            kind = "NaN" if np.isnan(found.values).any() else "inf"
            raise self._missing(f"{what} contains {kind} (at index {where})")
        return found

    def raises(self, field: str, what: str, error: str = "ValueError",
               mentions: str | None = None) -> bool:
        """Check that the call raised ``error`` whose message names ``mentions``."""
        try:
            found = self.raw(field, what)
        except Missing:
            return False
        if isinstance(found, CaseRaised):  # raised before this call was made: not its answer
            self.fail(f"{what}: {self._raised(found)} before the call was made")
            return False
        if not isinstance(found, data.Raised):
            shown = "None" if found is None else repr(found)[:200]
            self.fail(f"{what} should raise {error}, but returned {shown}")
            return False
        if found.type == "NotImplementedError":
            self.fail(f"{what} {STUB} (the exercise is not completed yet)")
            return False
        if found.type != error:
            self.fail(f"{what} raised {found.type}: {found.message}; expected {error}"
                      + (f" naming '{mentions}'" if mentions else ""))
            return False
        if mentions and mentions not in found.message:
            self.fail(f"{what} raised {error}('{found.message}'); the message should name "
                      f"the argument '{mentions}'")
            return False
        self.passed.add(field)
        return True

    def equal(self, field: str, expected: Any, what: str, hint: str = "") -> bool:
        """Check a plain answer (int, float, bool, str, list of those) equals ``expected``."""
        try:
            found = self.value(field, what, (type(expected),) if not isinstance(expected, bool)
                               else (bool,))
        except Missing:
            return False
        if isinstance(expected, float):
            ok = abs(found - expected) <= 1e-9 * max(1.0, abs(expected))
        else:
            ok = found == expected and type(found) is type(expected)
        if not ok:
            self.fail(f"{what}: expected {expected!r}, found {found!r}"
                      + (f". Likely cause: {hint}" if hint else ""))
            return False
        self.passed.add(field)
        return True


@dataclasses.dataclass(frozen=True)
class Case:
    """One case of a check: its name in messages, and (in a chapter's subclass, a frozen
    dataclass) the typed facts its inputs are built from: sizes or their ranges, kinds,
    flags. Never an input itself: the check's ``inputs`` builds those from the case and the
    seed, once on each side."""

    label: str


InputsFn = Callable[[Any, int], Any]
ObserveFn = Callable[[Student, Any, Any], dict]
JudgeFn = Callable[[Verdict, Any, Any], None]


def case_seeds(grade_id: str, count: int, secret: str | None = None) -> list[int]:
    """One seed per case: fixed without a ``secret`` (nbgrader), secret-derived with one."""
    prefix = "" if secret is None else f"{secret}/"
    return [int.from_bytes(hashlib.sha256(f"{prefix}{grade_id}/{i}".encode()).digest()[:4],
                           "big") >> 1 for i in range(count)]


class Check:
    """One grade cell's check: a table of ``cases``, each observed and judged.

    ``inputs(case, seed)`` builds everything a case's calls use (sizes, arrays, weights,
    the call's text for messages) as a pure function of the case and its seed; the
    framework calls it once on each side, so observe and judge see the same inputs without
    either rebuilding them. ``observe(student, case, inputs) -> {field: encoded answer}``
    runs with the student's code; an exception it lets through is recorded as the case's
    answer. ``judge(verdict, case, inputs)`` runs where no student code ran and compares the
    answers with the reference through ``verdict``. The framework owns the keys: answers are
    stored per case index.

    Checks that share their functions are made with ``functools.partial(Check,
    exercise=..., inputs=..., observe=..., judge=...)``. ``blame=False`` marks a check of
    errors, dtypes or structure: its failure does not make the exercises that call this one
    (``needs``) say "fix it first", since their values do not depend on it.
    """

    def __init__(self, grade_id: str, exercise: str, cases: Sequence[Case],
                 inputs: InputsFn, observe: ObserveFn, judge: JudgeFn,
                 needs: Sequence[str] = (), blame: bool = True):
        if not cases:
            raise ValueError(f"check {grade_id} has no cases")
        for case in cases:
            if not isinstance(case, Case):
                raise TypeError(f"check {grade_id}: a case must be a checks.Case, "
                                f"found {type(case).__name__}")
        self.grade_id = grade_id
        self.exercise = exercise
        self.cases = list(cases)
        self.needs = tuple(needs)  # earlier exercises this one calls (for feedback)
        self.blame = blame
        self._inputs = inputs
        self._observe = observe
        self._judge = judge

    def seeds(self, secret: str | None = None) -> list[int]:
        return case_seeds(self.grade_id, len(self.cases), secret)

    def observe_in(self, namespace: dict, seeds: Sequence[int] | None = None) -> dict:
        """Answer every case with the student's code; plain JSON data, keyed by case index."""
        seeds = list(seeds) if seeds is not None else self.seeds()
        if len(seeds) != len(self.cases):
            raise ValueError(f"{self.grade_id}: {len(seeds)} seeds for {len(self.cases)} cases")
        return data.roundtrip({str(index): self.observe_case(namespace, index, seed)
                               for index, seed in enumerate(seeds)})

    def observe_case(self, namespace: dict, index: int, seed: int) -> Any:
        """The answers of one case (encoded; not yet round-tripped). The project's grader
        observes in a fresh fork of the student process for every check, or every case
        (``sandbox.server.observe_fresh``), so nothing a module or a function remembers
        crosses from one to the next."""
        try:
            with eager_torch_compile():
                case = self.cases[index]
                return self._observe(Student(namespace), case, self._inputs(case, seed))
        except Exception as exc:  # building or calling the student's code failed
            return {RAISED: data.error(exc)}

    def judge_seen(self, seen: Any, seeds: Sequence[int] | None = None) -> list[str]:
        """Judge the answers; the failures (empty only when every case passed on evidence).

        Raises ``JudgeError`` when a judge itself fails on answers that passed validation.
        """
        seeds = list(seeds) if seeds is not None else self.seeds()
        failures: list[str] = []
        for index, (case, seed) in enumerate(zip(self.cases, seeds, strict=True)):
            answers = seen.get(str(index)) if isinstance(seen, dict) else None
            verdict = Verdict(answers, f"{self.exercise} [{case.label}]")
            try:
                self._judge(verdict, case, self._inputs(case, seed))
            except Missing:
                pass
            except Exception as exc:
                raise JudgeError(f"the judge of {self.grade_id} (case {index}) failed: "
                                 f"{type(exc).__name__}: {exc}") from exc
            if not verdict.failures:
                unjudged = sorted(verdict.asked - verdict.passed)
                if not verdict.passed or unjudged:
                    verdict.fail(f"{self.grade_id}, case {index}: no evidence that it passed "
                                 f"(unjudged answers: {unjudged or 'none asked'})")
            failures.extend(verdict.failures)
        return failures


@contextlib.contextmanager
def eager_torch_compile():
    """Functions the student decorated with ``torch.compile`` run eagerly while a case is
    observed: the sandbox hides the C++ compiler that inductor needs, and compiling every
    shape the checks try would cost seconds each on either path. Eager and compiled code
    compute the same thing, so the score is that of the same code without the decorator.
    (Nothing is imported: when the student never used ``torch.compile``, ``torch._dynamo``
    is not loaded and there is nothing to switch off.)"""
    import sys

    dynamo = sys.modules.get("torch._dynamo")
    config = getattr(dynamo, "config", None)
    if config is None:
        yield
        return
    before = config.disable
    config.disable = True
    try:
        yield
    finally:
        config.disable = before


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
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "ASSIGNMENT"):
            found.append(module.ASSIGNMENT)
    return sorted(found)


def blame_earlier(check: Check, failures: list[str], failed_exercises: set[str]) -> list[str]:
    """When ``check`` failed and an exercise it calls (``check.needs``) computes wrong values
    (``failed_exercises``: the exercises with a failing check whose ``blame`` is true), say to
    fix that one first, and drop the guesses at a cause inside this exercise."""
    culprits = [name for name in check.needs if name in failed_exercises]
    if not failures or not culprits or all(STUB in f for f in failures):
        return failures  # a stub is not written yet: nothing of it comes from elsewhere
    names = " and ".join(f"`{name}`" for name in culprits)
    head = (f"fix {names} first: {check.exercise} calls {'them' if len(culprits) > 1 else 'it'}, "
            f"and {'they fail their' if len(culprits) > 1 else 'it fails its'} own checks; "
            "what follows may come from there")
    plain = [f.split(". Likely cause")[0].split(". It matches")[0] for f in failures]
    return [head] + plain


def run(assignment_id: str, grade_id: str, namespace: dict) -> None:
    """Observe and judge in this process (the nbgrader path, fixed seeds); raise CheckFailed."""
    checks = checks_for(assignment_id)
    if grade_id not in checks:
        raise KeyError(f"no hidden check '{grade_id}' for assignment {assignment_id}")
    check = checks[grade_id]
    failures = check.judge_seen(check.observe_in(namespace))
    if failures and check.needs:  # an earlier exercise fails as soon as one of its checks does
        failed = {name for name in check.needs
                  if any(other.judge_seen(other.observe_in(namespace)) for other in checks.values()
                         if other.exercise == name and other.blame)}
        failures = blame_earlier(check, failures, failed)
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
