"""Reference for 03-causal-masking: torch's causal attention, a manual one for dropout."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from autograder.reference import dropout as drop
from autograder.reference import generator


def reference_mask(num_tokens: int) -> np.ndarray:
    return np.triu(np.ones((num_tokens, num_tokens), dtype=bool), k=1)


def _projections(x, state: dict, dtype):
    x = torch.as_tensor(x).to(dtype)
    out = []
    for name in ("W_query", "W_key", "W_value"):
        bias = state.get(f"{name}.bias")
        out.append(F.linear(x, torch.as_tensor(state[f"{name}.weight"]).to(dtype),
                            None if bias is None else torch.as_tensor(bias).to(dtype)))
    return out


def reference_causal_attention(x, state: dict, hidden=None) -> np.ndarray:
    """Eval-mode output: torch's scaled_dot_product_attention with is_causal=True, or with
    the keys ``hidden`` (a bool ``(n, n)``, True where hidden) hidden instead."""
    q, k, v = _projections(x, state, torch.float64)
    if hidden is not None:
        visible = ~torch.as_tensor(np.asarray(hidden, dtype=bool))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=visible).numpy()
    return F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()


def _manual(x, state: dict, dropout: float, seed: int | None, where: str = "weights",
            fill: float = float("-inf"), triangle: str = "upper", scale_by: str = "sqrt"):
    q, k, v = _projections(x, state, torch.float32)
    n, d_k = x.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1)
    hidden = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    if triangle == "lower":
        hidden = ~hidden
    scale = math.sqrt(d_k) if scale_by == "sqrt" else d_k
    g = generator(seed) if seed is not None else None
    if where == "scores":
        scores = drop(scores, dropout, g)
    weights = torch.softmax(scores.masked_fill(hidden, fill) / scale, dim=-1)
    if where == "weights":
        weights = drop(weights, dropout, g)
    context = weights @ v
    if where == "context":
        context = drop(context, dropout, g)
    return context.numpy()


def reference_train_output(x, state: dict, dropout: float, seed: int) -> np.ndarray:
    """Train-mode output: one dropout call on the weights, after the softmax, after the seed."""
    return _manual(x, state, dropout, seed)


def train_bugs(x, state: dict, dropout: float, seed: int) -> dict:
    return {
        "dropout applied to the context (the output) instead of the attention weights":
            _manual(x, state, dropout, seed, where="context"),
        "dropout applied to the scores before the softmax, not to the weights after it":
            _manual(x, state, dropout, seed, where="scores"),
        "no dropout in train mode (is self.dropout applied to the weights?)":
            _manual(x, state, 0.0, None),
    }


def eval_bugs(x, state: dict) -> dict:
    return {
        "masked scores filled with 0 instead of -inf (a score of 0 still gets weight)":
            _manual(x, state, 0.0, None, fill=0.0),
        "the mask convention inverted: the future is visible and the past hidden":
            _manual(x, state, 0.0, None, triangle="lower"),
        "scores divided by d_k instead of sqrt(d_k)": _manual(x, state, 0.0, None, scale_by="d"),
    }
