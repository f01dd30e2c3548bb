"""The suite's hook for what it collects outside tests/: the released learner notebooks in
chapters/, which nbval runs as a learner runs them (``--nbval-lax``, pyproject.toml).

nbval executes a notebook's cells in order in one kernel, so all of them go to one xdist
worker (one ``xdist_group`` per notebook); they need a kernel, so they are ``slow`` too.
"""

import pytest


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.kernel)
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group(f"nbval:{item.path.parent.name}"))
