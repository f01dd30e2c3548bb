"""Reference for 07-numpy-decoder: PyTorch built-ins, a PyTorch decoder, and known bugs.

The references are computed with PyTorch in float64 (``torch.softmax``, ``F.layer_norm``,
``F.gelu(approximate="tanh")``, ``F.scaled_dot_product_attention(is_causal=True)`` and
an ``nn.Module`` decoder loaded with the same weights). The ``*_bugs`` functions compute,
in NumPy, what known mistakes produce, so a failure can name its likely cause.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def softmax(x, axis: int = -1) -> np.ndarray:
    return torch.softmax(_t(x), dim=axis).numpy()


def layer_norm(x, gamma, beta, eps: float = 1e-5) -> np.ndarray:
    x = _t(x)
    return F.layer_norm(x, x.shape[-1:], _t(gamma), _t(beta), eps).numpy()


def gelu(x) -> np.ndarray:
    return F.gelu(_t(x), approximate="tanh").numpy()


def positional_encoding(seq_len: int, d_model: int, base: float = 10000.0) -> np.ndarray:
    angles = np.arange(seq_len)[:, None] / base ** (np.arange(0, d_model, 2) / d_model)
    pe = np.empty((seq_len, d_model))
    pe[:, 0::2], pe[:, 1::2] = np.sin(angles), np.cos(angles)
    return pe


def attention(x, W_q, W_k, W_v, W_o, num_heads: int) -> np.ndarray:
    """Causal multi-head attention through ``F.scaled_dot_product_attention``."""
    x = _t(x)
    n, d = x.shape
    head_dim = d // num_heads

    def heads(W):
        return (x @ _t(W)).view(n, num_heads, head_dim).transpose(0, 1)

    context = F.scaled_dot_product_attention(heads(W_q), heads(W_k), heads(W_v), is_causal=True)
    return (context.transpose(0, 1).reshape(n, d) @ _t(W_o)).numpy()


class TorchDecoder(nn.Module):
    """The one-layer pre-LN decoder of section 4, as a PyTorch module (float64)."""

    def __init__(self, vocab_size: int, d_model: int, d_ff: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.ln1 = nn.LayerNorm(d_model)
        self.W_query = nn.Linear(d_model, d_model, bias=False)
        self.W_key = nn.Linear(d_model, d_model, bias=False)
        self.W_value = nn.Linear(d_model, d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)

    @classmethod
    def from_params(cls, params: dict, num_heads: int) -> TorchDecoder:
        vocab_size, d_model = np.shape(params["W_emb"])
        model = cls(vocab_size, d_model, np.shape(params["W_1"])[1], num_heads).double()
        state = {
            "tok_emb.weight": params["W_emb"],
            "ln1.weight": params["ln1_gamma"], "ln1.bias": params["ln1_beta"],
            "W_query.weight": np.transpose(params["W_q"]),
            "W_key.weight": np.transpose(params["W_k"]),
            "W_value.weight": np.transpose(params["W_v"]),
            "out_proj.weight": np.transpose(params["W_o"]),
            "ln2.weight": params["ln2_gamma"], "ln2.bias": params["ln2_beta"],
            "fc1.weight": np.transpose(params["W_1"]), "fc1.bias": params["b_1"],
            "fc2.weight": np.transpose(params["W_2"]), "fc2.bias": params["b_2"],
        }
        model.load_state_dict({k: _t(v) for k, v in state.items()})
        return model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n, d = ids.shape[-1], self.tok_emb.embedding_dim
        h = self.tok_emb(ids) + torch.as_tensor(positional_encoding(n, d))
        a = self.ln1(h)
        b = a.shape[:-2]
        q, k, v = (W(a).view(*b, n, self.num_heads, d // self.num_heads).transpose(-3, -2)
                   for W in (self.W_query, self.W_key, self.W_value))
        context = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.out_proj(context.transpose(-3, -2).reshape(*b, n, d))
        h = h + self.fc2(F.gelu(self.fc1(self.ln2(h)), approximate="tanh"))
        return h @ self.tok_emb.weight.T


def logits(model: TorchDecoder, token_ids) -> np.ndarray:
    """``model``'s logits for ``token_ids``: build the model once for many calls."""
    with torch.no_grad():
        return model(torch.as_tensor(np.asarray(token_ids, dtype=np.int64))).numpy()


def decoder(token_ids, params: dict, num_heads: int) -> np.ndarray:
    return logits(TorchDecoder.from_params(params, num_heads), token_ids)


def generate(token_ids, params: dict, num_heads: int, max_new_tokens: int) -> list[int]:
    model = TorchDecoder.from_params(params, num_heads)
    ids = [int(t) for t in token_ids]
    for _ in range(max_new_tokens):
        ids.append(int(np.argmax(logits(model, ids)[-1])))
    return ids


# --- known bugs (NumPy), for the messages ---------------------------------------------------


def _ln(x, gamma, beta, eps=1e-5, ddof=0, std_eps=False):
    mean = x.mean(axis=-1, keepdims=True)
    if std_eps:
        return (x - mean) / (x.std(axis=-1, ddof=ddof, keepdims=True) + eps) * gamma + beta
    return (x - mean) / np.sqrt(x.var(axis=-1, ddof=ddof, keepdims=True) + eps) * gamma + beta


def _gelu_erf(x):
    return F.gelu(_t(x)).numpy()


def _softmax(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm_bugs(x, gamma, beta, eps=1e-5) -> dict[str, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    found = {
        "LayerNorm dividing by std + eps (the eps belongs inside the square root)":
            _ln(x, gamma, beta, eps, std_eps=True),
        "the unbiased variance (ddof=1): LayerNorm uses the biased one, dividing by d":
            _ln(x, gamma, beta, eps, ddof=1),
        "LayerNorm without eps": _ln(x, gamma, beta, 0.0),
        "gamma and beta swapped": _ln(x, beta, gamma, eps),
        "the normalised x without gamma and beta": _ln(x, 1.0, 0.0, eps),
    }
    if eps != 1e-5:
        found["eps fixed at 1e-5 (is the eps argument used?)"] = _ln(x, gamma, beta, 1e-5)
    if x.ndim >= 2:
        mean = x.mean(axis=0, keepdims=True)
        found["statistics over the first axis (LayerNorm normalises over the last axis)"] = \
            (x - mean) / np.sqrt(x.var(axis=0, keepdims=True) + eps) * gamma + beta
    return found


def gelu_bugs(x) -> dict[str, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    c = math.sqrt(2 / math.pi)
    with np.errstate(over="ignore"):
        sigmoid_form = x / (1 + np.exp(-1.702 * x))
    return {
        "exact-erf GELU (the tanh approximation is specified)": _gelu_erf(x),
        "the sigmoid approximation x * sigmoid(1.702 x)": sigmoid_form,
        "GELU without the 0.044715 x**3 term": 0.5 * x * (1 + np.tanh(c * x)),
        "GELU with sqrt(2 * pi) in place of sqrt(2 / pi)":
            0.5 * x * (1 + np.tanh(math.sqrt(2 * math.pi) * (x + 0.044715 * x ** 3))),
        "ReLU": np.maximum(x, 0),
    }


def softmax_bugs(x, axis=-1) -> dict[str, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        found = {"softmax over axis 0": _softmax(x, 0),
                 "exp(x) normalised over the whole array (sum without an axis)":
                     np.exp(x - x.max()) / np.exp(x - x.max()).sum()}
        if axis not in (-1, x.ndim - 1):
            found["softmax over the last axis (is the axis argument used?)"] = _softmax(x, -1)
    return found


def attention_variant(x, W_q, W_k, W_v, W_o, num_heads, *, causal=True, scale="head_dim",
                      split="heads", out_proj=True, keys_from_W_q=False) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    hd = d // num_heads

    def heads(W):
        y = x @ W
        if split == "reshape":  # the view bug: (n, d) read as (h, n, hd) without a transpose
            return y.reshape(num_heads, n, hd)
        return y.reshape(n, num_heads, hd).transpose(1, 0, 2)

    q, k, v = heads(W_q), heads(W_q if keys_from_W_q else W_k), heads(W_v)
    scores = q @ k.transpose(0, 2, 1)
    scores = scores / {"head_dim": math.sqrt(hd), "d_model": math.sqrt(d), "none": 1.0}[scale]
    if causal:
        hidden = np.triu(np.ones((n, n), dtype=bool), k=1)
        scores = np.where(hidden, -np.inf, scores)
    context = _softmax(scores) @ v
    if split == "reshape":
        merged = context.reshape(n, d)
    else:
        merged = context.transpose(1, 0, 2).reshape(n, d)
    return merged @ W_o if out_proj else merged


def attention_bugs(x, W_q, W_k, W_v, W_o, num_heads) -> dict[str, np.ndarray]:
    args = (x, W_q, W_k, W_v, W_o, num_heads)
    return {
        "attention without the causal mask": attention_variant(*args, causal=False),
        "scores not scaled by 1/sqrt(head_dim)": attention_variant(*args, scale="none"),
        "scores scaled by 1/sqrt(d_model) (the scale uses head_dim = d_model // num_heads)":
            attention_variant(*args, scale="d_model"),
        "the output projection W_o left out": attention_variant(*args, out_proj=False),
        "heads split by reshaping (n, d) to (num_heads, n, head_dim) without a transpose":
            attention_variant(*args, split="reshape"),
        "keys computed with W_q (is W_k used?)": attention_variant(*args, keys_from_W_q=True),
    }


def decoder_variant(token_ids, params, num_heads, *, post_ln=False, attn_residual=True,
                    mlp_residual=True, positions=True, causal=True, gelu_kind="tanh",
                    scale="head_dim", final_ln=False, std_eps=False, ln1=True,
                    ln2=True, keys_from_W_q=False) -> np.ndarray:
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    ids = np.asarray(token_ids, dtype=np.int64)
    n, d = len(ids), p["W_emb"].shape[1]
    act = gelu if gelu_kind == "tanh" else _gelu_erf

    def ln(x, which):
        if not {"ln1": ln1, "ln2": ln2}[which]:
            return x
        return _ln(x, p[f"{which}_gamma"], p[f"{which}_beta"], std_eps=std_eps)

    def attn(x):
        return attention_variant(x, p["W_q"], p["W_k"], p["W_v"], p["W_o"], num_heads,
                                 causal=causal, scale=scale, keys_from_W_q=keys_from_W_q)

    def mlp(x):
        return act(x @ p["W_1"] + p["b_1"]) @ p["W_2"] + p["b_2"]

    h = p["W_emb"][ids] + (positional_encoding(n, d) if positions else 0.0)
    if post_ln:
        h = ln(h + attn(h), "ln1")
        h = ln(h + mlp(h), "ln2")
    else:
        h = (h if attn_residual else 0.0) + attn(ln(h, "ln1"))
        h = (h if mlp_residual else 0.0) + mlp(ln(h, "ln2"))
    if final_ln:
        h = _ln(h, 1.0, 0.0)
    return h @ p["W_emb"].T


def decoder_bugs(token_ids, params, num_heads) -> dict[str, np.ndarray]:
    args = (token_ids, params, num_heads)
    return {
        "post-LN (LayerNorm after each residual addition); the contract is pre-LN":
            decoder_variant(*args, post_ln=True),
        "a decoder without the residual connection around attention":
            decoder_variant(*args, attn_residual=False),
        "a decoder without the residual connection around the MLP":
            decoder_variant(*args, mlp_residual=False),
        "a decoder without the positional encoding": decoder_variant(*args, positions=False),
        "a decoder whose attention has no causal mask": decoder_variant(*args, causal=False),
        "a decoder with exact-erf GELU": decoder_variant(*args, gelu_kind="erf"),
        "a decoder whose attention scores are not scaled": decoder_variant(*args, scale="none"),
        "a decoder with an extra final LayerNorm (the contract has none)":
            decoder_variant(*args, final_ln=True),
        "a decoder whose attention reads the unnormalised stream (ln1 skipped)":
            decoder_variant(*args, ln1=False),
        "a decoder whose MLP reads the unnormalised stream (ln2 skipped)":
            decoder_variant(*args, ln2=False),
        "a decoder that passes W_q where W_k belongs": decoder_variant(*args, keys_from_W_q=True),
    }


def generate_bugs(token_ids, params, num_heads, max_new_tokens) -> dict[str, list[int]]:
    ids = [int(t) for t in token_ids]
    if max_new_tokens == 0:
        return {}
    model = TorchDecoder.from_params(params, num_heads)
    prompt = logits(model, ids)
    first, flat, last = ids[:], ids[:], ids[:]
    for _ in range(max_new_tokens):
        first.append(int(np.argmax(logits(model, first)[0])))
        last.append(int(np.argmax(logits(model, last[-1:])[-1])))
        if flat[-1] < len(params["W_emb"]):
            flat.append(int(np.argmax(logits(model, flat))))
    return {
        "it feeds only the last token to decoder_forward (the model needs every id so far)":
            last,
        "it never feeds back its own tokens (every new token is predicted from the prompt)":
            ids + [int(np.argmax(prompt[-1]))] * max_new_tokens,
        "the argmax of the first position's logits (the next token comes from the last row)":
            first,
        "the argmax over all logits flattened (np.argmax without picking the last row)": flat,
    }
