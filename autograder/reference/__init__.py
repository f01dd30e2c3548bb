"""Reference implementations, used only by the judges.

A chapter's check module imports its reference *inside* judge functions, never at
module level: the grader's sandboxed student process imports the check modules (to
observe) but can neither import nor read these references.
"""

from __future__ import annotations


def dropout(t, p: float, generator):
    """``F.dropout(t, p, training=True)`` as PyTorch computes it on the CPU (a Bernoulli(1 - p)
    mask of ``t``'s dtype, divided by 1 - p; no draw at all when p is 0 or 1), drawn from
    ``generator``. Seeded like the student's ``torch.manual_seed(seed)``, it draws what the
    student's ``nn.Dropout`` draws, without touching PyTorch's global generator: judges run
    in parallel threads."""
    import torch

    if p == 0:
        return t
    if p == 1:
        return t * torch.zeros_like(t)
    noise = torch.empty_like(t).bernoulli_(1 - p, generator=generator)
    return t * noise.div_(1 - p)


def generator(seed: int):
    """A private CPU generator in the state ``torch.manual_seed(seed)`` gives the global one."""
    import torch

    return torch.Generator().manual_seed(seed)
