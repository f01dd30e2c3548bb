"""Reference for 04-stacking-heads: functional causal heads, side by side and in depth.

Weights are given as dicts ``{"W_query.weight": tensor, "W_query.bias": tensor, ...}``
(the names of a ``CausalAttention`` state dict), one per head or layer; ``split_weights``
cuts the grader's flat dict (``"heads.1.W_key.weight"``, the contract's attribute paths)
into that list. Eval mode uses PyTorch's own
``F.scaled_dot_product_attention(is_causal=True)``; train mode writes the formula out
so that dropout draws one mask on the ``(b, n, n)`` weights, as ``nn.Dropout`` does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from autograder.reference import dropout as drop
from autograder.reference import generator


def split_weights(weights: dict, prefix: str, count: int) -> list[dict]:
    """``{"heads.1.W_query.weight": t, ...}`` -> ``[{...}, {"W_query.weight": t, ...}, ...]``."""
    found: list[dict] = [{} for _ in range(count)]
    for path, value in weights.items():
        head, index, name = path.split(".", 2)
        if head == prefix and int(index) < count:
            found[int(index)][name] = value
    return found


def _project(x: torch.Tensor, weights: dict, name: str) -> torch.Tensor:
    return F.linear(x, weights[f"{name}.weight"], weights.get(f"{name}.bias"))


def causal_attention(x: torch.Tensor, weights: dict, dropout: float = 0.0,
                     g: torch.Generator | None = None, hidden=None) -> torch.Tensor:
    """One causal head: softmax(q k^T / sqrt(d_out), future hidden) v; in train mode (a
    generator ``g`` given) dropout on the attention weights; ``hidden`` (a bool ``(n, n)``,
    True where hidden) in place of the future, in eval mode."""
    q, k, v = (_project(x, weights, n) for n in ("W_query", "W_key", "W_value"))
    if hidden is not None:
        visible = ~torch.as_tensor(hidden, dtype=torch.bool)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=visible)
    if g is None or dropout == 0.0:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    n = x.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    hidden = torch.ones(n, n, dtype=torch.bool).triu(1)
    attn = torch.softmax(scores.masked_fill(hidden, float("-inf")), dim=-1)
    return drop(attn, dropout, g) @ v


def wrapper(x: torch.Tensor, heads: list[dict], dropout: float = 0.0,
            seed: int | None = None, hidden=None) -> torch.Tensor:
    """Heads side by side: head i fills features [i*d_out, (i+1)*d_out)."""
    g = None if seed is None else generator(seed)
    return torch.cat([causal_attention(x, h, dropout, g, hidden) for h in heads], dim=-1)


def stacked(x: torch.Tensor, layers: list[dict], dropout: float = 0.0,
            seed: int | None = None, hidden=None) -> torch.Tensor:
    """Heads in depth: x = x + layer(x), layer by layer."""
    g = None if seed is None else generator(seed)
    for layer in layers:
        x = x + causal_attention(x, layer, dropout, g, hidden)
    return x


def wrapper_bugs(x: torch.Tensor, heads: list[dict]) -> dict[str, torch.Tensor]:
    """Outputs of known wrong wrappers, so that a failure can name its likely cause."""
    outs = [causal_attention(x, h) for h in heads]
    return {
        "the heads concatenated in reverse order": torch.cat(outs[::-1], dim=-1),
        "the heads interleaved feature by feature (stacked on the last dim, then flattened)":
            torch.stack(outs, dim=-1).flatten(-2),
        "heads[0] used for every head": torch.cat([outs[0]] * len(outs), dim=-1),
    }


def stacked_bugs(x: torch.Tensor, layers: list[dict]) -> dict[str, torch.Tensor]:
    """Outputs of known wrong stacks."""
    plain = x
    for layer in layers:
        plain = causal_attention(plain, layer)
    shared_input = x + sum(causal_attention(x, layer) for layer in layers)
    reverse = x
    for layer in layers[::-1]:
        reverse = reverse + causal_attention(reverse, layer)
    return {
        "no residual connection (x = layer(x))": plain,
        "one residual around the whole stack (x + layers(x))": x + plain,
        "every layer applied to the original input (x + sum of layer(x))": shared_input,
        "the layers applied in reverse order": reverse,
    }
