"""``checks``: the framework's blame of an earlier exercise (``blame_earlier``)."""

from types import SimpleNamespace

from autograder import checks


def _check(needs=("compute_rope",), exercise="RoPEMultiHeadAttention"):
    return SimpleNamespace(grade_id="rope_mha_values", exercise=exercise, needs=needs, blame=True)


WRONG = ["out has wrong values: largest difference 1. Likely cause: a sign",
         "out has wrong values: largest difference 2. It matches the unrotated keys",
         "plain failure"]


def test_no_blame_without_a_failing_exercise_it_calls():
    assert checks.blame_earlier(_check(), WRONG, set()) == WRONG
    assert checks.blame_earlier(_check(), WRONG, {"something_else"}) == WRONG
    assert checks.blame_earlier(_check(needs=()), WRONG, {"compute_rope"}) == WRONG


def test_no_blame_when_the_check_passed():
    assert checks.blame_earlier(_check(), [], {"compute_rope"}) == []


def test_blame_names_the_culprit_first_and_drops_the_guesses_at_a_cause():
    blamed = checks.blame_earlier(_check(), WRONG, {"compute_rope"})
    assert blamed[0].startswith("fix `compute_rope` first: RoPEMultiHeadAttention calls it, "
                                "and it fails its own checks")
    assert blamed[1:] == ["out has wrong values: largest difference 1",
                          "out has wrong values: largest difference 2", "plain failure"]


def test_blame_names_every_culprit_in_the_order_of_needs():
    check = _check(needs=("split_heads", "merge_heads"))
    blamed = checks.blame_earlier(check, WRONG, {"merge_heads", "split_heads"})
    assert blamed[0].startswith("fix `split_heads` and `merge_heads` first: "
                                "RoPEMultiHeadAttention calls them, and they fail their own checks")


def test_every_case_builds_its_inputs_without_the_reference():
    """``inputs`` runs where the student's code runs too, and the fork server refuses to
    import ``autograder.reference``: a builder that needs it fails every case on our grader
    while the nbgrader path (one process) passes. Every case of every check, built in a
    process that refuses the references as the fork server does, with the fixed seeds."""
    import subprocess
    import sys

    from autograder import course

    program = (
        "from autograder.sandbox import server\n"
        "server.refuse_forbidden()\n"
        "from autograder import checks\n"
        "for a in checks.assignments():\n"
        "    for check in checks.checks_for(a).values():\n"
        "        for case, seed in zip(check.cases, check.seeds()):\n"
        "            check._inputs(case, seed)\n"
        "print('built')\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          cwd=course.ROOT, timeout=600)
    assert done.returncode == 0 and "built" in done.stdout, done.stderr[-3000:]
