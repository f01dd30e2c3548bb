"""An independent oracle for chapter 08 (fast).

The solution's ``GroupedQueryAttention``, with the grader's weights, equals PyTorch's fused
``F.scaled_dot_product_attention(..., enable_gqa=True)`` on the same projections (RoPE here by
complex multiplication), whole and fed chunk by chunk through a cache; and with
``num_kv_heads == num_heads`` it equals chapter 06's ``RoPEMultiHeadAttention`` (dropout 0)
with the parameters copied by name. The judges' reference agrees with the same oracle.
"""

import pytest
import torch
import torch.nn.functional as F

from autograder.checks import load_weights
from autograder.checks._common import attention_weights
from autograder.reference import kv_cache as reference
from testkit import program

# (d_in, num_heads, num_kv_heads, head_dim, tokens, qkv_bias, theta_base)
CONFIGS = [(12, 4, 2, 4, 9, False, 10000.0), (10, 6, 1, 2, 7, True, 500.0),
           (8, 4, 4, 6, 6, True, 10000.0), (16, 8, 2, 2, 11, False, 50000.0),
           (7, 6, 3, 4, 5, True, 10000.0)]


@pytest.fixture(scope="module")
def chapter08():
    return program.run("08-kv-cache")


def _weights(d_in, heads, kv, head_dim, bias, seed):
    return attention_weights(seed, d_in, heads * head_dim, bias, kv * head_dim)


def _rope(x, positions, theta_base):
    """RoPE by complex multiplication: pair (i, i + d/2) is one complex number."""
    half = x.shape[-1] // 2
    inv_freq = theta_base ** (-torch.arange(0, 2 * half, 2, dtype=torch.float64) / (2 * half))
    angles = torch.as_tensor(positions, dtype=torch.float64)[:, None] * inv_freq
    z = torch.complex(x[..., :half].double(), x[..., half:].double()) * torch.polar(
        torch.ones_like(angles), angles)
    return torch.cat([z.real, z.imag], dim=-1)


def _oracle(x, weights, heads, kv, head_dim, theta_base):
    b, n, _ = x.shape
    x = x.double()

    def project(name, count):
        w = weights[f"{name}.weight"].double()
        bias = weights.get(f"{name}.bias")
        out = F.linear(x, w, None if bias is None else bias.double())
        return out.view(b, n, count, head_dim).transpose(1, 2)

    q = _rope(project("W_query", heads), range(n), theta_base)
    k = _rope(project("W_key", kv), range(n), theta_base)
    v = project("W_value", kv)
    context = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    context = context.transpose(1, 2).reshape(b, n, heads * head_dim)
    return F.linear(context, weights["out_proj.weight"].double(), weights["out_proj.bias"].double())


@pytest.mark.parametrize("config", CONFIGS)
def test_grouped_query_attention_equals_enable_gqa_sdpa(chapter08, config):
    d_in, heads, kv, head_dim, n, bias, base = config
    seed = 1234 + n
    weights = _weights(d_in, heads, kv, head_dim, bias, seed)
    module = chapter08["GroupedQueryAttention"](d_in, heads * head_dim, n + 3, heads, kv,
                                                qkv_bias=bias, theta_base=base)
    load_weights(module, weights)
    x = torch.randn(2, n, d_in, generator=torch.Generator().manual_seed(seed))
    expected = _oracle(x, weights, heads, kv, head_dim, base)
    with torch.no_grad():
        whole = module(x)
        cache = chapter08["KVCache"]()
        chunks = [module(x[:, :3], cache)] + [module(x[:, t:t + 1], cache) for t in range(3, n)]
    torch.testing.assert_close(whole.double(), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat(chunks, dim=1).double(), expected, atol=1e-5, rtol=1e-5)
    found = reference.attention(x.numpy(), {k: v.numpy() for k, v in weights.items()}, heads, kv,
                                base)
    torch.testing.assert_close(torch.as_tensor(found), expected, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("config", [c for c in CONFIGS if c[1] == c[2]] + [(9, 3, 3, 4, 8, False, 10000.0)])
def test_with_as_many_kv_heads_as_heads_it_is_chapter06_rope_attention(chapter08, config):
    d_in, heads, _, head_dim, n, bias, base = config
    chapter06 = program.run("06-rope")
    torch.manual_seed(0)
    gqa = chapter08["GroupedQueryAttention"](d_in, heads * head_dim, n, heads, heads,
                                             qkv_bias=bias, theta_base=base)
    rope = chapter06["RoPEMultiHeadAttention"](d_in, heads * head_dim, n, 0.0, heads,
                                               qkv_bias=bias, theta_base=base).eval()
    parameters = dict(gqa.named_parameters())
    assert sorted(parameters) == sorted(n for n, _ in rope.named_parameters())
    with torch.no_grad():
        for name, parameter in rope.named_parameters():
            parameter.copy_(parameters[name])
    x = torch.randn(3, n, d_in, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        torch.testing.assert_close(gqa(x), rope(x), atol=1e-5, rtol=1e-5)
