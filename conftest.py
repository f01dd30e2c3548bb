"""The suite's hooks at the repository's root: how many workers ``-n auto`` starts, and what
the suite collects outside tests/: the released learner notebooks in chapters/, which nbval
runs as a learner runs them (``--nbval-lax``, pyproject.toml).

nbval executes a notebook's cells in order in one kernel, so all of them go to one xdist
worker (one ``xdist_group`` per notebook); they need a kernel, so they are ``slow`` too.
"""

import os

import pytest


def pytest_xdist_auto_num_workers(config):
    """One worker more than there are cores: the suite's tests wait for kernels, browsers,
    Slurm and pip for part of their time, which a third worker fills on 2 cores (fresh clone,
    one after the other: 8:26 against 8:55 with two; the cores were busy 99% of the run)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) + 1


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.kernel)
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group(f"nbval:{item.path.parent.name}"))
