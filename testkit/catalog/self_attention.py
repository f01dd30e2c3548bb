"""Bug catalog for 02-self-attention."""

from testkit.catalog import compiled, correct, wrong

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


_FORWARD = '''
            def forward(self, x):
                queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
                weights = torch.softmax(queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5, dim=-1)
                return weights @ values
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
    wrong("softmax_without_max_subtraction", SDPA, "exp(scores) / sum: overflows (NaN) when "
          "scores are around 1e4", f"""
        {_SIG}
            scores = queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[-1])
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            exp = torch.exp(scores)
            weights = exp / exp.sum(dim=-1, keepdim=True)
            return weights @ values, weights
        """),
    wrong("self_attention_softmax_overflows", SA, "a hand-written softmax without "
          "max-subtraction in forward", _module("""
            def forward(self, x):
                queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
                exp = torch.exp(queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5)
                return exp / exp.sum(dim=-1, keepdim=True) @ values
        """)),
    wrong("value_bias_hard_coded", SA, "W_value = nn.Linear(d_in, d_out) (bias=True by default) "
          "whatever qkv_bias says", _module(_FORWARD, _INIT.replace(
              "self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)",
              "self.W_value = nn.Linear(d_in, d_out)"))),
    wrong("key_bias_hard_coded", SA, "W_key = nn.Linear(d_in, d_out) (bias=True by default): "
          "harmless to the output (a key bias shifts a row's scores by a constant), but the "
          "contract and the visible cell say bias=qkv_bias", _module(_FORWARD, _INIT.replace(
              "self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)",
              "self.W_key = nn.Linear(d_in, d_out)"))),
    wrong("query_bias_never", SA, "W_query = nn.Linear(d_in, d_out, bias=False) even when "
          "qkv_bias=True", _module(_FORWARD, _INIT.replace(
              "self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)",
              "self.W_query = nn.Linear(d_in, d_out, bias=False)"))),
    wrong("fused_qkv_built_in_init", SA, "W_query, W_key, W_value fused into one matrix in "
          "__init__: later changes to the projections (loaded weights) are ignored", _module("""
            def forward(self, x):
                q, k, v = (x @ self.fused).chunk(3, dim=-1)
                weights = torch.softmax(q @ k.transpose(1, 2) / k.shape[-1] ** 0.5, dim=-1)
                return weights @ v
        """, _INIT + """
                fused = torch.cat([self.W_query.weight, self.W_key.weight, self.W_value.weight])
                self.register_buffer("fused", fused.detach().T.clone())
""")),
    wrong("w_value_zeroed_in_init", SA, "W_value's weight copied after zeroing in __init__; "
          "forward uses the copy (every output is 0)", _module("""
            def forward(self, x):
                queries, keys = self.W_query(x), self.W_key(x)
                weights = torch.softmax(queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5, dim=-1)
                return weights @ (x @ self.value_weight.T)
        """, _INIT + """
                nn.init.zeros_(self.W_value.weight)
                self.value_weight = self.W_value.weight.detach().clone()
""")),
    wrong("state_dict_lies", SA, "forward uses private projections; state_dict hides them and "
          "reports W_query, W_key, W_value", _module("""
            def state_dict(self, *args, **kwargs):
                found = super().state_dict(*args, **kwargs)
                return {k: v for k, v in found.items() if not k.startswith("_")}

            def forward(self, x):
                queries, keys, values = self._q(x), self._k(x), self._v(x)
                weights = torch.softmax(queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5, dim=-1)
                return weights @ values
        """, _INIT + """
                self._q = nn.Linear(d_in, d_out, bias=qkv_bias)
                self._k = nn.Linear(d_in, d_out, bias=qkv_bias)
                self._v = nn.Linear(d_in, d_out, bias=qkv_bias)
""")),
    wrong("casts_input_to_float32", SA, "x.float() in forward: breaks module.to(torch.float64)",
          _module("""
            def forward(self, x):
                x = x.float()
                queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
                weights = torch.softmax(queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5, dim=-1)
                return weights @ values
        """)),
    correct("self_attention_stable_manual_softmax", SA, "a hand-written softmax that subtracts "
            "the row max", _module("""
            def forward(self, x):
                queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
                scores = queries @ keys.transpose(-2, -1) / math.sqrt(keys.shape[-1])
                exp = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
                return exp / exp.sum(dim=-1, keepdim=True) @ values
        """)),
    correct("self_attention_torch_sdpa", SA, "torch.nn.functional.scaled_dot_product_attention",
            _module("""
            def forward(self, x):
                return torch.nn.functional.scaled_dot_product_attention(
                    self.W_query(x), self.W_key(x), self.W_value(x))
        """)),
    compiled(ASSIGNMENT, "scaled_dot_product_attention"),
]
