"""Reference for 06-rope, written independently of the notebook's formulation.

The notebook rotates with ``x * cos + rotate_half(x) * sin``; this module pairs dimension
``i`` with ``i + head_dim/2`` as one complex number and multiplies by ``exp(i * angle)``
(``torch.view_as_complex`` / ``torch.polar``), in float64. Attention uses
``F.scaled_dot_product_attention(..., is_causal=True)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from autograder.reference import dropout as drop
from autograder.reference import generator


def inv_freq(head_dim: int, theta_base: float = 10000.0) -> torch.Tensor:
    """omega_i = theta_base ** (-2i / head_dim), float64."""
    return theta_base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)


def angles(positions, head_dim: int, theta_base: float = 10000.0) -> torch.Tensor:
    """``(len(positions), head_dim // 2)`` angles p * omega_i, float64."""
    positions = torch.as_tensor(np.asarray(positions, dtype=np.float64))
    return positions[:, None] * inv_freq(head_dim, theta_base)[None, :]


def tables(positions, head_dim: int, theta_base: float = 10000.0) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin tables ``(len(positions), head_dim)``, float64, duplicated halves."""
    a = angles(positions, head_dim, theta_base)
    a = torch.cat([a, a], dim=-1)
    return a.cos().numpy(), a.sin().numpy()


def rotate(x, theta) -> np.ndarray:
    """RoPE by complex multiplication: pair (x[..., i], x[..., i + d/2]) is one number.

    ``x``: ``(..., seq_len, head_dim)``; ``theta``: ``(seq_len, head_dim // 2)`` angles.
    Returns float64.
    """
    x, theta = torch.as_tensor(_float64(x)), torch.as_tensor(_float64(theta))
    half = x.shape[-1] // 2
    pairs = torch.stack([x[..., :half], x[..., half:]], dim=-1).contiguous()
    z = torch.view_as_complex(pairs) * torch.polar(torch.ones_like(theta), theta)
    out = torch.view_as_real(z)
    return torch.cat([out[..., 0], out[..., 1]], dim=-1).numpy()


def _float64(a) -> np.ndarray:
    """A writable float64 NumPy copy of an array or tensor."""
    if isinstance(a, torch.Tensor):
        return a.detach().to(torch.float64).numpy().copy()
    return np.array(a, dtype=np.float64)


def table_bugs(positions, head_dim: int, theta_base: float = 10000.0):
    """The reference (cos, sin) rows at ``positions`` and what known wrong versions of
    precompute_rope_params return there, to name a likely cause."""
    positions = np.asarray(positions, dtype=np.float64)
    expected = tables(positions, head_dim, theta_base)
    half = angles(positions, head_dim, theta_base).numpy()
    no_two = positions[:, None] * theta_base ** (-np.arange(head_dim // 2) / head_dim)
    pairwise = np.repeat(half, 2, axis=-1)
    bugs = {
        "positions starting at 1 (p runs from 0 to context_length - 1)":
            tables(positions + 1, head_dim, theta_base),
        "frequencies theta_base ** (-i / head_dim) (the exponent needs 2i / head_dim)":
            (np.cos(np.concatenate([no_two] * 2, -1)), np.sin(np.concatenate([no_two] * 2, -1))),
        "angles repeated pairwise [a0, a0, a1, a1, ...] (the interleaved layout; split halves "
        "need [angles, angles])": (np.cos(pairwise), np.sin(pairwise)),
        "cos and sin swapped": expected[::-1],
    }
    if theta_base != 10000.0:
        bugs["theta_base ignored (always 10000)"] = tables(positions, head_dim, 10000.0)
    return expected, bugs


def rope_bugs(x, theta) -> dict[str, np.ndarray]:
    """What known wrong versions of compute_rope return, to name a likely cause.

    ``theta``: the angles of every row of the tables handed over, ``(rows, head_dim // 2)``
    (at least ``seq_len`` rows).
    """
    x64 = np.asarray(x, dtype=np.float64)
    seq_len, half = x64.shape[-2], x64.shape[-1] // 2
    theta = np.asarray(theta, dtype=np.float64)
    table = np.concatenate([theta, theta], axis=-1)
    full = table[:seq_len]
    x1, x2 = x64[..., :half], x64[..., half:]
    cos, sin = np.cos(full), np.sin(full)
    bugs = {}
    if x64.ndim == 4 and 1 < x64.shape[1] <= table.shape[0]:  # (one head: the identity)
        rows = table[: x64.shape[1]][:, None, :]  # one angle per head: dim 1 taken as seq_len
        bugs["positions taken from dim 1 (the layout bug: x must be (batch, num_heads, "
             "seq_len, head_dim), not (batch, seq_len, num_heads, head_dim))"] = \
            x64 * np.cos(rows) + np.concatenate([-x2, x1], axis=-1) * np.sin(rows)
    bugs.update({
        "the rotation by -angle: is rotate_half cat(-x2, x1)? (cat(x2, -x1) flips the sign)":
            x64 * cos + np.concatenate([x2, -x1], axis=-1) * sin,
        "cos and sin swapped": x64 * sin + np.concatenate([-x2, x1], axis=-1) * cos,
        "interleaved pairs (2i, 2i+1) with split-halves tables":
            _interleaved(x64, full),
        "no rotation at all (x returned unchanged)": x64,
    })
    if table.shape[0] > seq_len:
        shifted = table[1:seq_len + 1]
        bugs["the rows of cos/sin from 1 (position p uses row p: slice [:seq_len])"] = \
            x64 * np.cos(shifted) + np.concatenate([-x2, x1], axis=-1) * np.sin(shifted)
    return bugs


def _interleaved(x, full):
    rotated = np.empty_like(x)
    rotated[..., 0::2] = -x[..., 1::2]
    rotated[..., 1::2] = x[..., 0::2]
    return x * np.cos(full) + rotated * np.sin(full)


def attention(x, weights: dict, num_heads: int, theta_base: float = 10000.0, *,
              rope_q: bool = True, rope_k: bool = True, rope_v: bool = False,
              causal: bool = True, dropout: float = 0.0, seed: int | None = None,
              hidden=None) -> np.ndarray:
    """Multi-head causal attention with RoPE on queries and keys, from recorded weights.

    ``weights`` maps ``W_query.weight`` etc. to arrays (biases may be None). With
    ``dropout > 0`` the attention weights go through one ``nn.Dropout`` call after the
    softmax, under ``torch.manual_seed(seed)``, as the spec fixes for train mode.
    """
    x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    b, n, _ = x.shape

    def linear(name):
        w = torch.as_tensor(np.asarray(weights[f"{name}.weight"], dtype=np.float64))
        bias = weights.get(f"{name}.bias")
        bias = None if bias is None else torch.as_tensor(np.asarray(bias, dtype=np.float64))
        return lambda t: F.linear(t, w, bias)

    d_out = np.asarray(weights["W_query.weight"]).shape[0]
    head_dim = d_out // num_heads

    def heads(t):
        return t.view(b, n, num_heads, head_dim).transpose(1, 2)

    q, k, v = (heads(linear(name)(x)) for name in ("W_query", "W_key", "W_value"))
    theta = angles(np.arange(n), head_dim, theta_base)
    if rope_q:
        q = torch.as_tensor(rotate(q, theta))
    if rope_k:
        k = torch.as_tensor(rotate(k, theta))
    if rope_v:
        v = torch.as_tensor(rotate(v, theta))
    if dropout:
        scores = q @ k.transpose(-2, -1) / head_dim ** 0.5
        if causal:
            hidden = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
            scores = scores.masked_fill(hidden, -torch.inf)
        attn = torch.softmax(scores, dim=-1).to(torch.float32)
        attn = drop(attn, dropout, generator(seed)).to(torch.float64)
        context = attn @ v
    elif hidden is not None:  # the keys hidden (True) in place of the future
        visible = ~torch.as_tensor(np.asarray(hidden, dtype=bool))
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=visible)
    else:
        context = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    context = context.transpose(1, 2).reshape(b, n, d_out)
    return linear("out_proj")(context).numpy()
