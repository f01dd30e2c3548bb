"""The repository's root on ``sys.path``: a benchmark run as ``python benchmarks/<name>.py``
imports ``testkit``, the test support beside the package that ``pip install .`` leaves out."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
