"""The catalog's bundles (``catalog.bundles``): nbgrader and our grader grade cases of
exercises that cannot touch each other in one submission, and each case's verdict stays its
own. These tests pin the packing rules; the grading tests then read each case's exercise."""

import pytest

from autograder import checks
from conftest import ASSIGNMENTS
from testkit import catalog
from testkit.catalog import Case
from testkit.program import calls

A = "07-numpy-decoder"  # softmax, layer_norm and gelu call nothing; decoder_forward calls all


def case(cell: str, source: str) -> Case:
    return Case(f"{cell}-{len(source)}", cell, False, "", source)


@pytest.mark.parametrize("correct", [False, True])
def test_every_case_is_in_exactly_one_bundle_of_exercises_apart(assignment_id, correct):
    registered = checks.checks_for(assignment_id)
    bundled = [c for bundle in catalog.bundles(assignment_id, correct) for c in bundle.cases]
    assert sorted(c.name for c in bundled) == \
        sorted(c.name for c in catalog.cases(assignment_id) if c.correct == correct)
    for bundle in catalog.bundles(assignment_id, correct):
        cells = [c.cell for c in bundle.cases]
        assert len(set(cells)) == len(cells), bundle.name
        for cell in cells:
            assert not calls(registered, cell) & set(cells), (bundle.name, cell)


def test_independent_exercises_share_a_bundle():
    softmax = case("softmax", "def softmax(x, axis=-1):\n    return x")
    gelu = case("gelu", "def gelu(x):\n    return np.tanh(x)")
    assert catalog.pack(A, [softmax, gelu]) == [[softmax, gelu]]


def test_an_exercise_and_one_that_calls_it_never_share():
    softmax = case("softmax", "def softmax(x, axis=-1):\n    return x")
    attention = case("multi_head_causal_attention",
                     "def multi_head_causal_attention(*args):\n    return None")
    assert catalog.pack(A, [softmax, attention]) == [[softmax], [attention]]


def test_a_case_that_binds_a_name_another_uses_goes_alone():
    norm = case("layer_norm", "def layer_norm(x, gamma, beta, eps=1e-5):\n    return x")
    shadow = case("gelu", "def gelu(x):\n    return x\nlayer_norm = None")
    assert catalog.pack(A, [shadow, norm]) == [[shadow], [norm]]
    helper = case("softmax", "def exp(x):\n    return x\ndef softmax(x, axis=-1):\n    return x")
    user = case("gelu", "def gelu(x):\n    return exp(x)")
    assert catalog.pack(A, [helper, user]) == [[helper], [user]]
    imports = case("softmax", "import numpy as np\ndef softmax(x, axis=-1):\n    return x")
    numpy_user = case("gelu", "def gelu(x):\n    return np.tanh(x)")
    assert catalog.pack(A, [imports, numpy_user]) == [[imports], [numpy_user]]


def test_a_case_that_does_more_than_define_goes_alone():
    patches = case("gelu", "import numpy as np\nnp.exp = abs\ndef gelu(x):\n    return x")
    softmax = case("softmax", "def softmax(x, axis=-1):\n    return x")
    assert catalog.pack(A, [patches, softmax]) == [[patches], [softmax]]


def test_the_bundles_are_fewer_than_the_cases():
    wrong = sum(len(catalog.bundles(a, False)) for a in ASSIGNMENTS)
    cases = sum(not c.correct for a in ASSIGNMENTS for c in catalog.cases(a))
    assert wrong < cases
