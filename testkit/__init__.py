"""Test support for the suite and the benchmarks: a package of its own beside ``autograder``,
which ``pip install .`` (the grader's set) does not install and no module of the grader
imports (``tests/test_import_map.py``).

- ``testkit.catalog``: realistic wrong and alternative correct implementations.
- ``testkit.tamper``: hostile and broken submissions that test both grading paths.
- ``testkit.stock``: stock nbgrader on a throw-away copy of the course.
- ``testkit.warm_kernel``: kernels forked from a process that imported IPython and
  torch once, which the suite's stock nbgrader runs start (a python3 kernelspec).
- ``testkit.sweep``: the mutant sweep, the smallest wrong edits of every solution.
"""
