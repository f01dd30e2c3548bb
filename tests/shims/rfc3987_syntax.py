"""Hides the optional package ``rfc3987-syntax`` from the test suite's processes
(tests/conftest.py puts this folder first on their ``PYTHONPATH``).

jsonschema, which nbformat, nbgrader and Jupyter import, uses ``rfc3987-syntax`` when it is
installed to check strings of the ``iri`` and ``iri-reference`` formats; importing it compiles
38 Lark grammars, 1.1 s of CPU, in each of the ~60 processes of the suite that read a notebook.
No schema of nbformat, nbgrader or Jupyter's events uses those two formats. An ImportError is
what jsonschema meets when the package is not installed, and it then leaves them unchecked.
"""

raise ImportError("rfc3987_syntax is hidden from the test suite (tests/shims/rfc3987_syntax.py)")
