"""Test support, never on the grader's runtime path (the fork server refuses to import it).

- ``autograder.testing.catalog``: realistic wrong and alternative correct implementations.
- ``autograder.testing.tamper``: hostile and broken submissions that test both grading paths.
- ``autograder.testing.stock``: stock nbgrader on a throw-away copy of the course.
- ``autograder.testing.warm_kernel``: kernels forked from a process that imported IPython and
  torch once, which the suite's stock nbgrader runs start (a python3 kernelspec).
- ``autograder.testing.sweep``: the mutant sweep, the smallest wrong edits of every solution.
"""
