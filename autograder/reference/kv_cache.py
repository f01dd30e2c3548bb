"""Reference for 08-kv-cache, written independently of the notebook's formulation.

The notebook repeats key/value heads with ``repeat_interleave``, builds the chunk mask from
a shifted ``triu`` and rotates with ``x * cos + rotate_half(x) * sin``. This module picks the
key/value head of every query head with an index (``h // n_rep``), builds masks from
position indices, rotates by complex multiplication in float64 (``reference.rope.rotate``)
and attends with ``F.scaled_dot_product_attention(..., enable_gqa=True)`` on the whole
sequence at once. The known bugs of spec section 4 are switches of ``attention``, used only
to name a bug in a failure's message.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from autograder.reference.rope import angles, rotate


def kv_head_of(num_heads: int, num_kv_heads: int) -> np.ndarray:
    """The key/value head each query head reads: ``h // (num_heads // num_kv_heads)``."""
    return np.arange(num_heads) // (num_heads // num_kv_heads)


def repeat_kv(x, n_rep: int) -> np.ndarray:
    """``(b, kv, n, d) -> (b, kv * n_rep, n, d)``, output head h = input head h // n_rep."""
    x = np.asarray(x, dtype=np.float64)
    return x[:, np.arange(x.shape[1] * n_rep) // n_rep]


def repeat_kv_tiled(x, n_rep: int) -> np.ndarray:
    """The bug: ``x.repeat(1, n_rep, 1, 1)`` (output head h = input head h % kv)."""
    x = np.asarray(x, dtype=np.float64)
    return x[:, np.arange(x.shape[1] * n_rep) % x.shape[1]]


def hidden(num_new: int, num_cached: int = 0) -> np.ndarray:
    """Bool ``(num_new, num_cached + num_new)``, True where hidden: key j is hidden from the
    query at absolute position num_cached + i when j > num_cached + i."""
    query = num_cached + np.arange(num_new)[:, None]
    key = np.arange(num_cached + num_new)[None, :]
    return key > query


def _linear(weights: dict, name: str):
    w = torch.as_tensor(np.asarray(weights[f"{name}.weight"], dtype=np.float64))
    bias = weights.get(f"{name}.bias")
    bias = None if bias is None else torch.as_tensor(np.asarray(bias, dtype=np.float64))
    return lambda t: F.linear(t, w, bias)


def projections(x, weights: dict, num_heads: int, num_kv_heads: int,
                theta_base: float = 10000.0, positions=None):
    """Rotated queries ``(b, num_heads, n, hd)``, rotated keys and plain values
    ``(b, num_kv_heads, n, hd)``, float64 tensors; tokens at ``positions`` (default 0..n-1)."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    b, n, _ = x.shape
    d_out = np.asarray(weights["W_query.weight"]).shape[0]
    head_dim = d_out // num_heads
    positions = np.arange(n) if positions is None else np.asarray(positions)

    def heads(t, count):
        return t.reshape(b, n, count, head_dim).permute(0, 2, 1, 3)

    q = heads(_linear(weights, "W_query")(x), num_heads)
    k = heads(_linear(weights, "W_key")(x), num_kv_heads)
    v = heads(_linear(weights, "W_value")(x), num_kv_heads)
    theta = angles(positions, head_dim, theta_base)
    return torch.as_tensor(rotate(q, theta)), torch.as_tensor(rotate(k, theta)), v


def cache_contents(x, weights: dict, num_heads: int, num_kv_heads: int,
                   theta_base: float = 10000.0) -> tuple[np.ndarray, np.ndarray]:
    """What a cache holds after the whole of ``x`` went through it: the rotated keys and
    the plain values of the ``num_kv_heads`` heads, positions 0..n-1."""
    _, k, v = projections(x, weights, num_heads, num_kv_heads, theta_base)
    return k.numpy(), v.numpy()


def attention(x, weights: dict, num_heads: int, num_kv_heads: int,
              theta_base: float = 10000.0, *, chunks=None, bug: str | None = None,
              ) -> np.ndarray:
    """Grouped-query attention with RoPE, causal, on the whole of ``x`` (float64 out).

    With ``chunks`` (lengths summing to n) and a ``bug``, the output of a buggy cached
    implementation fed chunk after chunk (for messages only):
    ``"restart"`` RoPE positions restart at 0 in every chunk; ``"square_mask"`` the mask
    of a chunk ignores the cache (top-left aligned, as ``is_causal=True`` on a chunk that
    is not the first; one token sees everything); ``"tiled"`` key/value heads repeated with
    ``repeat`` (query head h reads key/value head h % num_kv_heads); ``"rotated_twice"`` the
    cached keys rotated again at positions 0..total after the append; ``"no_rope"`` no
    rotation at all; ``"no_mask"`` no mask at all.
    """
    x64 = np.asarray(x, dtype=np.float64)
    b, n, _ = x64.shape
    chunks = [n] if chunks is None else list(chunks)
    d_out = np.asarray(weights["W_query.weight"]).shape[0]
    head_dim = d_out // num_heads
    outputs = []
    keys, values = [], []
    past = 0
    for size in chunks:
        part = x64[:, past:past + size]
        positions = np.arange(size) if bug == "restart" else np.arange(past, past + size)
        q, k, v = projections(part, weights, num_heads, num_kv_heads, theta_base, positions)
        if bug == "no_rope":
            q, k, v = projections(part, weights, num_heads, num_kv_heads, theta_base,
                                  np.zeros(size))
        keys.append(k)
        values.append(v)
        k_all, v_all = torch.cat(keys, dim=2), torch.cat(values, dim=2)
        if bug == "rotated_twice":
            k_all = torch.as_tensor(rotate(k_all, angles(np.arange(past + size), head_dim,
                                                         theta_base)))
        if bug == "square_mask":
            visible = torch.ones(size, past + size, dtype=torch.bool).tril() if size > 1 \
                else torch.ones(1, past + 1, dtype=torch.bool)
        elif bug == "no_mask":
            visible = torch.ones(size, past + size, dtype=torch.bool)
        else:
            visible = ~torch.as_tensor(hidden(size, past))
        if bug == "tiled":
            index = torch.as_tensor(np.arange(num_heads) % num_kv_heads)
            context = F.scaled_dot_product_attention(q, k_all[:, index], v_all[:, index],
                                                     attn_mask=visible)
        else:
            context = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=visible,
                                                     enable_gqa=True)
        outputs.append(context.permute(0, 2, 1, 3).reshape(b, size, d_out))
        past += size
    context = torch.cat(outputs, dim=1)
    return _linear(weights, "out_proj")(context).numpy()
