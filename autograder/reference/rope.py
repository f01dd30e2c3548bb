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
    x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    theta = torch.as_tensor(np.asarray(theta, dtype=np.float64))
    half = x.shape[-1] // 2
    pairs = torch.stack([x[..., :half], x[..., half:]], dim=-1).contiguous()
    z = torch.view_as_complex(pairs) * torch.polar(torch.ones_like(theta), theta)
    out = torch.view_as_real(z)
    return torch.cat([out[..., 0], out[..., 1]], dim=-1).numpy()


def rope_bugs(x, theta) -> dict[str, np.ndarray]:
    """What known wrong versions of compute_rope return, to name a likely cause."""
    x64 = np.asarray(x, dtype=np.float64)
    half = x64.shape[-1] // 2
    theta = np.asarray(theta, dtype=np.float64)
    full = np.concatenate([theta, theta], axis=-1)
    x1, x2 = x64[..., :half], x64[..., half:]
    cos, sin = np.cos(full), np.sin(full)
    bugs = {
        "the rotation by -angle: is rotate_half cat(-x2, x1)? (cat(x2, -x1) flips the sign)":
            x64 * cos + np.concatenate([x2, -x1], axis=-1) * sin,
        "cos and sin swapped": x64 * sin + np.concatenate([-x2, x1], axis=-1) * cos,
        "interleaved pairs (2i, 2i+1) with split-halves tables":
            _interleaved(x64, full),
    }
    if x64.ndim == 4 and x64.shape[1] <= theta.shape[0]:
        rows = full[: x64.shape[1]][:, None, :]  # one angle per head: dim 1 taken as seq_len
        bugs["positions taken from dim 1 (the layout bug: x must be (batch, num_heads, "
             "seq_len, head_dim), not (batch, seq_len, num_heads, head_dim))"] = \
            x64 * np.cos(rows) + np.concatenate([-x2, x1], axis=-1) * np.sin(rows)
    return bugs


def _interleaved(x, full):
    rotated = np.empty_like(x)
    rotated[..., 0::2] = -x[..., 1::2]
    rotated[..., 1::2] = x[..., 0::2]
    return x * np.cos(full) + rotated * np.sin(full)


def attention(x, weights: dict, num_heads: int, theta_base: float = 10000.0, *,
              rope_q: bool = True, rope_k: bool = True, rope_v: bool = False,
              causal: bool = True, dropout: float = 0.0, seed: int | None = None) -> np.ndarray:
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
        torch.manual_seed(seed)
        attn = torch.nn.Dropout(dropout)(attn).to(torch.float64)
        context = attn @ v
    else:
        context = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    context = context.transpose(1, 2).reshape(b, n, d_out)
    return linear("out_proj")(context).numpy()
