"""Reference for 02-self-attention: PyTorch's own attention, and the outputs of known bugs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _double(*tensors):
    return [None if t is None else torch.as_tensor(t).to(torch.float64) for t in tensors]


def reference_attention(queries, keys, values, mask=None):
    """(context, weights) in float64; ``mask`` True means hidden (inverted for torch)."""
    q, k, v = _double(queries, keys, values)
    attn_mask = None if mask is None else ~torch.as_tensor(mask, dtype=torch.bool)
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return context.numpy(), weights.numpy()


def attention_bugs(queries, keys, values, mask=None) -> dict[str, tuple]:
    """(context, weights) of known wrong implementations, keyed by their likely cause."""
    q, k, v = _double(queries, keys, values)
    d_k, d_v = q.shape[-1], v.shape[-1]
    hidden = None if mask is None else torch.as_tensor(mask, dtype=torch.bool)
    raw = q @ k.transpose(-2, -1)

    def finish(scores, dim=-1, fill=float("-inf"), hide=hidden):
        if hide is not None:
            scores = scores.masked_fill(hide, fill)
        weights = torch.softmax(scores, dim=dim)
        return (weights @ v).numpy(), weights.numpy()

    bugs = {
        "scores divided by d_k instead of sqrt(d_k)": finish(raw / d_k),
        "scores not scaled (the 1/sqrt(d_k) factor is missing)": finish(raw),
        "the softmax taken over the queries (dim=-2) instead of the keys (dim=-1)":
            finish(raw / math.sqrt(d_k), dim=-2),
    }
    if d_v != d_k:
        bugs["scores scaled by sqrt(d_v), the width of the values, not of the keys"] = \
            finish(raw / math.sqrt(d_v))
    if hidden is not None:
        bugs["masked scores filled with 0 instead of -inf (a score of 0 still gets weight)"] = \
            finish(raw / math.sqrt(d_k), fill=0.0)
        bugs["the mask convention inverted (True should mean hidden)"] = \
            finish(raw / math.sqrt(d_k), hide=~hidden)
    return bugs


def reference_self_attention(x, state: dict, d_k: int):
    """SelfAttention from recorded weights: torch's attention on nn.Linear projections."""
    (x,) = _double(x)
    projected = []
    for name in ("W_query", "W_key", "W_value"):
        weight, bias = _double(state[f"{name}.weight"], state.get(f"{name}.bias"))
        projected.append(F.linear(x, weight, bias))
    return F.scaled_dot_product_attention(*projected, scale=1 / math.sqrt(d_k)).numpy()


def self_attention_bugs(x, state: dict, d_in: int) -> dict:
    """Outputs of known wrong SelfAttention implementations."""
    (x,) = _double(x)
    lin = {}
    for name in ("W_query", "W_key", "W_value"):
        weight, bias = _double(state[f"{name}.weight"], state.get(f"{name}.bias"))
        lin[name] = F.linear(x, weight, bias)
        lin[name + " no bias"] = F.linear(x, weight)
    q, k, v = lin["W_query"], lin["W_key"], lin["W_value"]
    d_out = q.shape[-1]

    def attend(q, k, v, scale, dim=-1):
        return (torch.softmax(q @ k.transpose(-2, -1) * scale, dim=dim) @ v).numpy()

    return {
        "scores scaled by sqrt(d_in) (the scale uses the width of the keys, d_out)":
            attend(q, k, v, d_in ** -0.5),
        "scores divided by d_out instead of sqrt(d_out)": attend(q, k, v, 1 / d_out),
        "scores not scaled (the 1/sqrt(d_k) factor is missing)": attend(q, k, v, 1.0),
        "the softmax taken over the queries (dim=1) instead of the keys (dim=-1)":
            attend(q, k, v, d_out ** -0.5, dim=1),
        "the keys computed with W_query (copy-paste: keys = self.W_query(x))":
            attend(q, q, v, d_out ** -0.5),
        "the projections used without their bias (is qkv_bias passed to nn.Linear?)":
            attend(lin["W_query no bias"], lin["W_key no bias"], lin["W_value no bias"],
                   d_out ** -0.5),
    }
