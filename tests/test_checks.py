"""Hidden checks judged in-process on every catalog case (fast; the slow proof uses nbgrader)."""

import numpy as np
import pytest

from autograder import checks, course, data
from autograder.checks import Student, Verdict
from autograder.testing import catalog, program

CASES = [(a, c) for a in course.assignment_ids() for c in catalog.cases(a)]


def test_reference_solution_passes_every_check(assignment_id, judged):
    failures = {k: v for k, v in judged(assignment_id, "solution").items() if v}
    assert not failures, failures


@pytest.mark.parametrize("assignment_id, case", CASES, ids=[f"{a}:{c.name}" for a, c in CASES])
def test_catalog_case_in_process(assignment_id, case, judged):
    results = judged(assignment_id, case.name)
    own = {g: f for g, f in results.items()
           if checks.checks_for(assignment_id)[g].exercise == case.cell}
    if case.correct:
        assert not any(results.values()), f"correct alternative rejected: {results}"
    else:
        assert any(own.values()), f"wrong case {case.name} passes every check of {case.cell}"


def test_observations_are_plain_data():
    class Liar(np.ndarray):
        def __eq__(self, other):
            return True

    encoded = data.roundtrip(data.encode(np.zeros(3).view(Liar)))
    decoded = data.decode(encoded)
    assert type(decoded.values) is np.ndarray and decoded.shape == (3,)


def test_failures_name_expected_found_and_cause():
    verdict = Verdict({"out": Student.attempt(lambda: np.zeros((2, 4, 18), dtype=np.float32))})
    verdict.array("out", np.zeros((2, 4, 6)), "output", hint="is head_dim = d_out // num_heads?")
    assert verdict.failures == ["output has shape (2, 4, 18); expected (2, 4, 6): "
                                "is head_dim = d_out // num_heads?"]


def test_missing_definition_is_reported_not_raised():
    verdict = Verdict({"out": Student({}).call("nothing_here", 1)})
    verdict.array("out", np.zeros(1), "nothing_here(1)")
    assert "NameError" in verdict.failures[0]


def test_a_case_passes_only_on_evidence():
    """A judge that reads nothing, or reads an answer and neither passes nor fails it, fails."""
    from autograder.checks import Case, Check

    def made(name, judge):
        return Check(name, exercise="f", cases=[Case("only")], inputs=lambda case, seed: None,
                     observe=lambda student, case, inputs: {"out": student.call("f")},
                     judge=judge)

    lazy = made("lazy", lambda verdict, case, inputs: None)
    assert lazy.judge_seen(lazy.observe_in({"f": lambda: 1}))
    reader = made("reader", lambda verdict, case, inputs: verdict.value("out", "f()"))
    assert reader.judge_seen(reader.observe_in({"f": lambda: 1}))
    honest = made("honest", lambda verdict, case, inputs: verdict.equal("out", 1, "f()"))
    assert not honest.judge_seen(honest.observe_in({"f": lambda: 1}))
    assert honest.judge_seen(honest.observe_in({"f": lambda: None})) == \
        ["f() returned None: is a `return` missing?"]


def test_secret_seeds_differ_from_the_fixed_ones_and_are_reproducible():
    from autograder.checks import case_seeds

    assert case_seeds("g", 3) == case_seeds("g", 3)
    assert case_seeds("g", 3, "s") == case_seeds("g", 3, "s") != case_seeds("g", 3)
    assert case_seeds("g", 3, "s") != case_seeds("g", 3, "t")


def test_hidden_checks_cover_the_visible_asserts(assignment_id):
    """Our grader judges only the hidden checks, nbgrader also runs the visible asserts: every
    case the visible asserts of a grade cell reject must be rejected by its check too."""
    import contextlib
    import io

    source = course.read(course.notebook_path(assignment_id))
    registered = checks.checks_for(assignment_id)
    cases = [("solution", None)] + [(c.name, {c.cell: c.source})
                                    for c in catalog.cases(assignment_id)]
    uncovered = []
    for name, answers in cases:
        namespace = program.run(assignment_id, answers, tolerate=True)
        for cell in source.cells:
            grade_id = course.nbgrader_meta(cell).get("grade_id")
            if not course.nbgrader_meta(cell).get("grade"):
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(course.HIDDEN_REGION.sub("", cell.source), "<grade>", "exec"),
                         namespace)
            except Exception:
                check = registered[grade_id]
                if not check.judge_seen(check.observe_in(namespace)):
                    uncovered.append(f"{name}: {grade_id}")
    assert not uncovered, f"visible asserts fail but the hidden check passes: {uncovered}"
