"""Reference implementations, used only by the judges.

A chapter's check module imports its reference *inside* judge functions, never at
module level: the grader's sandboxed student process imports the check modules (to
observe) but can neither import nor read these references.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_global_generator = threading.Lock()


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Dropout inside the block draws from PyTorch's global CPU generator seeded with ``seed``,
    as the student's module does after ``torch.manual_seed(seed)`` (the spec's train mode).
    Judges run in parallel threads; they take turns here, and only here."""
    if seed is None:
        yield
        return
    import torch

    with _global_generator:
        torch.default_generator.manual_seed(seed)
        yield
