"""Bug catalog for 02-self-attention."""

from autograder.catalog import correct, wrong

ASSIGNMENT = "02-self-attention"

SDPA = "scaled_dot_product_attention"
SA = "SelfAttention"

_SIG = "def scaled_dot_product_attention(queries, keys, values, mask=None):"
_INIT = '''
        class SelfAttention(nn.Module):
            def __init__(self, d_in, d_out, qkv_bias=False):
                super().__init__()
                self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
'''


def _module(forward: str, init: str = _INIT) -> str:
    return init.strip("\n") + "\n\n" + forward.strip("\n")


CASES = [
    wrong("scale_by_d_k", SDPA, "scores divided by d_k instead of sqrt(d_k)", f'''
        {_SIG}
            scores = queries @ keys.transpose(-2, -1) / queries.shape[-1]
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            return weights @ values, weights
        '''),
    wrong("missing_scale", SDPA, "the 1/sqrt(d_k) factor is forgotten", f'''
        {_SIG}
            scores = queries @ keys.transpose(-2, -1)
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            return weights @ values, weights
        '''),
    wrong("softmax_over_queries", SDPA, "softmax over dim=-2 (the queries): columns sum to 1",
          f'''
        {_SIG}
            scores = queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[-1])
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            weights = torch.softmax(scores, dim=-2)
            return weights @ values, weights
        '''),
    wrong("mask_filled_with_zero", SDPA, "hidden scores set to 0, which still gets weight", f'''
        {_SIG}
            scores = queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[-1])
            if mask is not None:
                scores = scores.masked_fill(mask, 0.0)
            weights = torch.softmax(scores, dim=-1)
            return weights @ values, weights
        '''),
    wrong("mask_convention_inverted", SDPA, "treats True as visible (torch's attn_mask convention)",
          f'''
        {_SIG}
            scores = queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[-1])
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            return weights @ values, weights
        '''),
    wrong("mask_ignored", SDPA, "the mask argument is accepted but never used", f'''
        {_SIG}
            scores = queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[-1])
            weights = torch.softmax(scores, dim=-1)
            return weights @ values, weights
        '''),
    wrong("transpose_1_2", SDPA, "keys.transpose(1, 2): right for (b, n, d) inputs only", f'''
        {_SIG}
            scores = queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1])
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            return weights @ values, weights
        '''),
    wrong("scale_by_sqrt_d_v", SDPA, "scaled by the width of the values, not of the keys", f'''
        {_SIG}
            scores = queries @ keys.transpose(-2, -1) / math.sqrt(values.shape[-1])
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            return weights @ values, weights
        '''),
    wrong("keys_from_W_query", SA, "copy-paste slip: keys = self.W_query(x)", _module('''
            def forward(self, x):
                queries, keys, values = self.W_query(x), self.W_query(x), self.W_value(x)
                weights = torch.softmax(queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5, dim=-1)
                return weights @ values
        ''')),
    wrong("qkv_bias_ignored", SA, "nn.Linear(d_in, d_out, bias=False) whatever qkv_bias says",
          _module('''
            def forward(self, x):
                queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
                weights = torch.softmax(queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5, dim=-1)
                return weights @ values
        ''', _INIT.replace("bias=qkv_bias", "bias=False"))),
    wrong("scale_by_sqrt_d_in", SA, "scaled by the embedding width x.shape[-1] (d_in)", _module('''
            def forward(self, x):
                queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
                weights = torch.softmax(queries @ keys.transpose(1, 2) / x.shape[-1] ** 0.5, dim=-1)
                return weights @ values
        ''')),
    wrong("softmax_dim_1", SA, "softmax(dim=1) on (b, n, n) scores: over the queries", _module('''
            def forward(self, x):
                queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
                weights = torch.softmax(queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5, dim=1)
                return weights @ values
        ''')),
    wrong("parameters_not_linear", SA, "raw nn.Parameter(torch.rand(d_in, d_out)) matrices "
          "(the book's first version) instead of nn.Linear", '''
        class SelfAttention(nn.Module):
            def __init__(self, d_in, d_out, qkv_bias=False):
                super().__init__()
                self.W_query = nn.Parameter(torch.rand(d_in, d_out))
                self.W_key = nn.Parameter(torch.rand(d_in, d_out))
                self.W_value = nn.Parameter(torch.rand(d_in, d_out))

            def forward(self, x):
                queries, keys, values = x @ self.W_query, x @ self.W_key, x @ self.W_value
                weights = torch.softmax(queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5, dim=-1)
                return weights @ values
        '''),
    correct("einsum", SDPA, "einsum with ellipsis for the scores and the context", f'''
        {_SIG}
            scores = torch.einsum("...qd,...kd->...qk", queries, keys) / queries.shape[-1] ** 0.5
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            return torch.einsum("...qk,...kv->...qv", weights, values), weights
        '''),
    correct("where_minus_1e9", SDPA, "torch.where with -1e9, queries scaled before the product",
            f'''
        {_SIG}
            queries = queries / math.sqrt(queries.shape[-1])
            scores = torch.matmul(queries, keys.transpose(-1, -2))
            if mask is not None:
                scores = torch.where(mask, torch.tensor(-1e9), scores)
            weights = F.softmax(scores, dim=-1)
            return torch.matmul(weights, values), weights
        '''.replace("F.softmax", "torch.nn.functional.softmax")),
    correct("finfo_min_manual_softmax", SDPA, "finfo.min fill, softmax written out (stable)",
            f'''
        {_SIG}
            scores = queries @ keys.transpose(-2, -1) * queries.shape[-1] ** -0.5
            if mask is not None:
                scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
            scores = scores - scores.amax(dim=-1, keepdim=True)
            exp = scores.exp()
            weights = exp / exp.sum(dim=-1, keepdim=True)
            return weights @ values, weights
        '''),
    correct("uses_own_sdpa", SA, "forward calls scaled_dot_product_attention", _module('''
            def forward(self, x):
                context, _ = scaled_dot_product_attention(self.W_query(x), self.W_key(x),
                                                          self.W_value(x))
                return context
        ''')),
    correct("einsum_functional_softmax", SA, "einsum and torch.nn.functional.softmax", _module('''
            def forward(self, x):
                q, k, v = self.W_query(x), self.W_key(x), self.W_value(x)
                scores = torch.einsum("bqd,bkd->bqk", q, k) / math.sqrt(k.size(-1))
                weights = torch.nn.functional.softmax(scores, dim=-1)
                return torch.einsum("bqk,bkd->bqd", weights, v)
        ''')),
]
