"""Attention from Scratch: hidden checks, the bug catalog and the grader.

- ``autograder.checks``: one module per chapter; every grade cell is one check,
  written as *observe* (run student code, record plain data) and *judge* (compare
  that data with an independent reference).
- ``autograder.course``: the course layout and notebook surgery shared by tools and tests.
- the project's grader (``python -m autograder grade``): ``engine`` plans (``rubric``,
  ``submissions``) and runs ``grading.grade_one`` for each submission, which uses
  ``sandbox`` (``protocol``, ``confine``, ``server``, ``client``), ``outcome``, ``scoring``
  and ``records``; ``formats`` and ``report`` write and print. CONTRIBUTING.md, "The
  grader's map", says which does what and which may import which
  (``tests/test_import_map.py`` holds the package to it).
- ``autograder.testing``: test support, never on the runtime path: the bug catalog
  (``testing.catalog``), hostile and broken submissions (``testing.tamper``) and stock
  nbgrader on a throw-away copy of the course (``testing.stock``).
"""
