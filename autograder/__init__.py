"""Attention from Scratch: hidden checks, the bug catalog and the grader.

- ``autograder.checks``: one module per chapter; every grade cell is one check,
  written as *observe* (run student code, record plain data) and *judge* (compare
  that data with an independent reference).
- ``autograder.catalog``: realistic wrong and alternative correct implementations.
- ``autograder.course``: the course layout and notebook surgery shared by tools and tests.
"""
