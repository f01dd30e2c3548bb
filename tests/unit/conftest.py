"""Shared by the unit tests: the assignments as the grader loads them, once."""

import pytest

from autograder.rubric import load_assignments


@pytest.fixture(scope="session")
def assignments():
    return load_assignments()
