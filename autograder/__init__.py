"""Attention from Scratch: hidden checks, the bug catalog and the grader.

- ``autograder.checks``: one module per chapter; every grade cell is one check,
  written as *observe* (run student code, record plain data) and *judge* (compare
  that data with an independent reference).
- ``autograder.catalog``: realistic wrong and alternative correct implementations.
- ``autograder.course``: the course layout and notebook surgery shared by tools and tests.
- ``autograder.engine``, ``autograder.sandbox``, ``autograder.formats``: the project's grader
  (``python -m autograder grade``): runs submissions in a sandbox, judges here, writes results.
- ``autograder.stock``: stock nbgrader on a throw-away copy of the course (tests, benchmarks).
- ``autograder.tamper``: hostile and broken submissions that test both grading paths.
"""
