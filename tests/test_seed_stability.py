"""Grades do not depend on the run's secret: every catalog case (and the solution) passes and
fails the same grade cells with the fixed seeds of the nbgrader path and with secret seeds.

A check whose verdict on an honest submission changed with the secret would make a grade
a matter of luck (a sqrt(d_v) scale only shows when d_v != d_k, an unsliced mask only when
num_tokens < context_length): such cases must be built so that the bug always shows. The one
exception is a check of a later exercise that calls the wrong one (``Check.needs``): whether
greedy decoding with a wrong decoder still picks the right ids depends on the weights, and
the feedback already says to fix the earlier exercise first.
"""

import pytest

from autograder import checks
from testkit import catalog

pytestmark = pytest.mark.slow

SECRETS = ("stability-1", "stability-2")


def calls(registered, exercise) -> set[str]:
    """The exercises ``exercise`` calls, directly or through others (``Check.needs``)."""
    found, frontier = set(), [exercise]
    while frontier:
        current = frontier.pop()
        for check in registered.values():
            if check.exercise == current:
                new = set(check.needs) - found
                found |= new
                frontier.extend(new)
    return found


def test_grades_do_not_depend_on_the_secret(assignment_id, judged):
    """The fixed-seed verdicts are the ones test_checks judged (``judged`` is shared)."""
    registered = checks.checks_for(assignment_id)
    unstable = []
    for name in ["solution"] + [c.name for c in catalog.cases(assignment_id)]:
        fixed = {g: not f for g, f in judged(assignment_id, name).items()}
        wrong = {c.cell for c in catalog.cases(assignment_id) if c.name == name}
        for secret in SECRETS:
            found = {g: not f for g, f in judged(assignment_id, name, secret).items()}
            changed = sorted(g for g in fixed if fixed[g] != found[g]
                             and not wrong & calls(registered, registered[g].exercise))
            if changed:
                unstable.append(f"{name}: {changed} with secret {secret!r}")
    assert not unstable, "verdicts that depend on the secret:\n" + "\n".join(unstable)
