"""Reference for 05-multi-head-attention, and the implementations the benchmark compares.

Weights are dicts with the names of a ``MultiHeadAttention`` state dict:
``W_query.weight``, ``W_query.bias`` (optional), ``W_key.*``, ``W_value.*``,
``out_proj.weight``, ``out_proj.bias`` (optional). Eval mode uses PyTorch's own
``F.scaled_dot_product_attention(is_causal=True)`` (and can be cross-checked against
``nn.MultiheadAttention`` with copied weights); train mode writes the formula out so that
dropout draws one mask on the ``(b, num_heads, n, n)`` weights, as ``nn.Dropout`` does.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.reference import dropout as drop
from autograder.reference import generator


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    b, n, d = x.shape
    return x.reshape(b, n, num_heads, d // num_heads).permute(0, 2, 1, 3)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, h, n, hd = x.shape
    return x.permute(0, 2, 1, 3).reshape(b, n, h * hd)


def _project(x: torch.Tensor, weights: dict, name: str) -> torch.Tensor:
    return F.linear(x, weights[f"{name}.weight"], weights.get(f"{name}.bias"))


def mha_forward(x: torch.Tensor, weights: dict, num_heads: int, dropout: float = 0.0,
                seed: int | None = None, hidden=None) -> torch.Tensor:
    """Batched causal multi-head attention with output projection (eval mode: with the keys
    ``hidden``, a bool ``(n, n)`` True where hidden, hidden instead of the future)."""
    q, k, v = (split_heads(_project(x, weights, n), num_heads)
               for n in ("W_query", "W_key", "W_value"))
    if hidden is not None:
        visible = ~torch.as_tensor(hidden, dtype=torch.bool)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=visible)
    elif seed is None or dropout == 0.0:
        context = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        n = x.shape[1]
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        hidden = torch.ones(n, n, dtype=torch.bool).triu(1)
        attn = torch.softmax(scores.masked_fill(hidden, float("-inf")), dim=-1)
        context = drop(attn, dropout, generator(seed)) @ v
    return _project(merge_heads(context), weights, "out_proj")


def mha_torch(x: torch.Tensor, weights: dict, num_heads: int) -> torch.Tensor:
    """The same computation by ``nn.MultiheadAttention`` with copied weights (d_in == d_out)."""
    d_out = weights["out_proj.weight"].shape[0]
    bias = "W_query.bias" in weights
    module = nn.MultiheadAttention(d_out, num_heads, bias=True, batch_first=True)
    with torch.no_grad():
        module.in_proj_weight.copy_(torch.cat([weights[f"{n}.weight"]
                                               for n in ("W_query", "W_key", "W_value")]))
        module.in_proj_bias.copy_(torch.cat([weights[f"{n}.bias"] for n in
                                             ("W_query", "W_key", "W_value")]) if bias else
                                  torch.zeros(3 * d_out))
        module.out_proj.weight.copy_(weights["out_proj.weight"])
        module.out_proj.bias.copy_(weights.get("out_proj.bias", torch.zeros(d_out)))
    n = x.shape[1]
    hidden = torch.ones(n, n, dtype=torch.bool).triu(1)
    with torch.no_grad():
        return module.eval()(x, x, x, attn_mask=hidden, need_weights=False)[0]


def mha_bugs(x: torch.Tensor, weights: dict, num_heads: int) -> dict[str, torch.Tensor]:
    """Outputs of known wrong implementations, so that a failure can name its likely cause."""
    b, n, _ = x.shape
    q, k, v = (_project(x, weights, name) for name in ("W_query", "W_key", "W_value"))
    d_out = q.shape[-1]
    hd = d_out // num_heads
    hidden = torch.ones(n, n, dtype=torch.bool).triu(1)

    def attend(q, k, v, scale, mask=True):
        scores = q @ k.transpose(-2, -1) / scale
        if mask:
            scores = scores.masked_fill(hidden, float("-inf"))
        return torch.softmax(scores, dim=-1) @ v

    heads = [split_heads(t, num_heads) for t in (q, k, v)]
    no_transpose = [t.reshape(b, num_heads, n, hd) for t in (q, k, v)]
    out = lambda context: _project(context, weights, "out_proj")  # noqa: E731
    return {
        "the output before out_proj (out_proj defined but not applied?)":
            merge_heads(attend(*heads, math.sqrt(hd))),
        "scores scaled by sqrt(d_out) instead of sqrt(head_dim)":
            out(merge_heads(attend(*heads, math.sqrt(d_out)))),
        "heads split with view(b, num_heads, n, head_dim) and merged back, without transposes":
            out(attend(*no_transpose, math.sqrt(hd)).reshape(b, n, d_out)),
        "heads split with view(b, num_heads, n, head_dim), without the transpose":
            out(merge_heads(attend(*no_transpose, math.sqrt(hd)))),
        "heads merged with view(b, n, d_out) without transposing back":
            out(attend(*heads, math.sqrt(hd)).reshape(b, n, d_out)),
        "attention without the causal mask": out(merge_heads(attend(*heads, math.sqrt(hd),
                                                                    mask=False))),
    }


# --- implementations compared by the lesson's and the script's benchmark -------------------

class CausalAttention(nn.Module):
    """One causal head (chapter 3)."""

    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.ones(context_length, context_length,
                                                dtype=torch.bool).triu(1))

    def forward(self, x):
        n = x.shape[1]
        q, k, v = self.W_query(x), self.W_key(x), self.W_value(x)
        scores = (q @ k.transpose(1, 2)).masked_fill(self.mask[:n, :n], float("-inf"))
        return self.dropout(torch.softmax(scores / k.shape[-1] ** 0.5, dim=-1)) @ v


class MultiHeadAttentionWrapper(nn.Module):
    """Chapter 4: independent heads of width d_out // num_heads, concatenated."""

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.heads = nn.ModuleList(
            CausalAttention(d_in, d_out // num_heads, context_length, dropout, qkv_bias)
            for _ in range(num_heads))
        self.out_proj = nn.Linear(d_out, d_out)

    def forward(self, x):
        return self.out_proj(torch.cat([head(x) for head in self.heads], dim=-1))


# The batched module of chapter 5: the text of the chapter's solution (and of chapter 6's
# provided module), character for character; tests/test_one_module.py keeps them equal.
class MultiHeadAttention(nn.Module):
    def __init__(self, d_in: int, d_out: int, context_length: int, dropout: float,
                 num_heads: int, qkv_bias: bool = False):
        super().__init__()
        if d_out % num_heads != 0:
            raise ValueError(f"d_out={d_out} must be divisible by num_heads={num_heads}")
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer(
            "mask", torch.triu(torch.ones(context_length, context_length, dtype=torch.bool), diagonal=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, num_tokens, _ = x.shape
        if num_tokens > self.mask.shape[0]:
            raise ValueError(f"num_tokens={num_tokens} exceeds context_length={self.mask.shape[0]}")
        shape = (b, num_tokens, self.num_heads, self.head_dim)
        queries = self.W_query(x).view(shape).transpose(1, 2)  # (b, num_heads, num_tokens, head_dim)
        keys = self.W_key(x).view(shape).transpose(1, 2)  # (b, num_heads, num_tokens, head_dim)
        values = self.W_value(x).view(shape).transpose(1, 2)  # (b, num_heads, num_tokens, head_dim)
        scores = queries @ keys.transpose(2, 3)  # (b, num_heads, num_tokens, num_tokens)
        scores = scores.masked_fill(self.mask[:num_tokens, :num_tokens], float("-inf"))
        weights = torch.softmax(scores / self.head_dim ** 0.5, dim=-1)
        weights = self.dropout(weights)
        context = (weights @ values).transpose(1, 2)  # (b, num_tokens, num_heads, head_dim)
        context = context.contiguous().view(b, num_tokens, self.d_out)  # (b, num_tokens, d_out)
        return self.out_proj(context)


class MHACombinedQKV(nn.Module):
    """One (d_in, 3 * d_out) projection for queries, keys and values."""

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, d_out // num_heads
        self.qkv = nn.Linear(d_in, 3 * d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.ones(context_length, context_length,
                                                dtype=torch.bool).triu(1))

    def forward(self, x):
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        scores = (q @ k.transpose(-2, -1)).masked_fill(self.mask[:n, :n], float("-inf"))
        weights = self.dropout(torch.softmax(scores / self.head_dim ** 0.5, dim=-1))
        return self.out_proj((weights @ v).transpose(1, 2).reshape(b, n, -1))


class MHAEinsum(nn.Module):
    """Projections and attention written with torch.einsum."""

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, d_out // num_heads
        self.W_query = nn.Parameter(torch.empty(d_out, d_in))
        self.W_key = nn.Parameter(torch.empty(d_out, d_in))
        self.W_value = nn.Parameter(torch.empty(d_out, d_in))
        for w in (self.W_query, self.W_key, self.W_value):
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.ones(context_length, context_length,
                                                dtype=torch.bool).triu(1))

    def forward(self, x):
        b, n, _ = x.shape
        h, hd = self.num_heads, self.head_dim
        q = torch.einsum("bnd,od->bno", x, self.W_query).view(b, n, h, hd)
        k = torch.einsum("bnd,od->bno", x, self.W_key).view(b, n, h, hd)
        v = torch.einsum("bnd,od->bno", x, self.W_value).view(b, n, h, hd)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / hd ** 0.5
        weights = self.dropout(torch.softmax(scores.masked_fill(self.mask[:n, :n],
                                                                float("-inf")), dim=-1))
        return self.out_proj(torch.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, n, -1))


class MHAPyTorchSDPA(nn.Module):
    """Combined QKV, then PyTorch's fused F.scaled_dot_product_attention(is_causal=True)."""

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.num_heads, self.head_dim, self.p = num_heads, d_out // num_heads, dropout
        self.qkv = nn.Linear(d_in, 3 * d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)

    def forward(self, x):
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        context = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.p if self.training else 0.0, is_causal=True)
        return self.out_proj(context.transpose(1, 2).reshape(b, n, -1))


class MHAPyTorchClass(nn.Module):
    """torch.nn.MultiheadAttention with a causal mask (it needs d_in == d_out)."""

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        if d_in != d_out:
            raise ValueError("nn.MultiheadAttention needs d_in == d_out")
        self.attention = nn.MultiheadAttention(d_out, num_heads, dropout=dropout, bias=qkv_bias,
                                               batch_first=True)
        self.register_buffer("mask", torch.ones(context_length, context_length,
                                                dtype=torch.bool).triu(1))

    def forward(self, x):
        n = x.shape[1]
        return self.attention(x, x, x, attn_mask=self.mask[:n, :n], need_weights=False)[0]


VARIANTS = {
    "wrapper (ch. 4)": MultiHeadAttentionWrapper,
    "MultiHeadAttention": MultiHeadAttention,
    "combined QKV": MHACombinedQKV,
    "einsum": MHAEinsum,
    "F.scaled_dot_product_attention": MHAPyTorchSDPA,
    "nn.MultiheadAttention": MHAPyTorchClass,
}
