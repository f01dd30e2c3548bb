"""Bug catalog for 03-causal-masking."""

from testkit.catalog import compiled, correct, wrong

ASSIGNMENT = "03-causal-masking"

CM = "causal_mask"
CA = "CausalAttention"

_HEAD = '''
        class CausalAttention(nn.Module):
            def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
                super().__init__()
                self.context_length = context_length
                self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.dropout = nn.Dropout(dropout)
'''
_BUFFER = '''
                ones = torch.ones(context_length, context_length)
                self.register_buffer("mask", torch.triu(ones, diagonal=1))
'''
_CHECK = '''
            def forward(self, x):
                b, num_tokens, d_in = x.shape
                if num_tokens > self.context_length:
                    raise ValueError(f"{num_tokens} tokens exceed context_length={self.context_length}")
                queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
'''
_MASKED = '''
                scores = queries @ keys.transpose(1, 2)
                scores = scores.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], float("-inf"))
'''
_REST = '''
                weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)
                weights = self.dropout(weights)
                return weights @ values
'''


def _module(head=_HEAD, buffer=_BUFFER, check=_CHECK, masked=_MASKED, rest=_REST) -> str:
    return "\n".join(part.strip("\n") for part in (head, buffer, "", check, masked, rest))


CASES = [
    wrong("mask_tril", CM, "torch.tril: True on and below the diagonal (the visible part)", '''
        def causal_mask(num_tokens):
            return torch.tril(torch.ones(num_tokens, num_tokens, dtype=torch.bool))
        '''),
    wrong("mask_hides_diagonal", CM, "triu with diagonal=0: a token cannot see itself", '''
        def causal_mask(num_tokens):
            return torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool))
        '''),
    wrong("mask_float", CM, "returns a float 0/1 tensor, not bool", '''
        def causal_mask(num_tokens):
            return torch.triu(torch.ones(num_tokens, num_tokens), diagonal=1)
        '''),
    wrong("fill_with_zero", CA, "hidden scores set to 0, which still gets weight",
          _module(masked=_MASKED.replace('float("-inf")', "0.0"))),
    wrong("inverted_mask", CA, "tril buffer used as if True meant hidden",
          _module(buffer=_BUFFER.replace("torch.triu(ones, diagonal=1)", "torch.tril(ones)"))),
    wrong("mask_plain_attribute", CA, "self.mask = torch.triu(...): not a buffer, stays behind "
          "on .to()", _module(buffer='''
                self.mask = torch.triu(torch.ones(context_length, context_length), diagonal=1)
        ''')),
    wrong("mask_parameter", CA, "mask stored as nn.Parameter(requires_grad=False)", _module(
        buffer='''
                self.mask = nn.Parameter(torch.triu(torch.ones(context_length, context_length), diagonal=1),
                                         requires_grad=False)
        ''')),
    wrong("mask_rebuilt_in_forward", CA, "no stored mask: a new one is built in every call",
          _module(buffer="", masked='''
                scores = queries @ keys.transpose(1, 2)
                mask = torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool), diagonal=1)
                scores = scores.masked_fill(mask, float("-inf"))
        ''')),
    wrong("mask_not_sliced", CA, "the whole (context_length, context_length) mask is used",
          _module(masked=_MASKED.replace("[:num_tokens, :num_tokens]", ""))),
    wrong("no_length_check", CA, "no ValueError beyond context_length (a RuntimeError instead)",
          _module(check=_CHECK.replace('''                if num_tokens > self.context_length:
                    raise ValueError(f"{num_tokens} tokens exceed context_length={self.context_length}")
''', ""))),
    wrong("dropout_on_context", CA, "dropout applied to the output instead of the weights",
          _module(rest='''
                weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)
                return self.dropout(weights @ values)
        ''')),
    wrong("dropout_before_softmax", CA, "dropout applied to the scores, before the softmax",
          _module(rest='''
                weights = torch.softmax(self.dropout(scores) / keys.shape[-1] ** 0.5, dim=-1)
                return weights @ values
        ''')),
    wrong("functional_dropout_always_on", CA, "F.dropout(weights, p) drops in eval mode too",
          _module(rest='''
                weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)
                weights = torch.nn.functional.dropout(weights, self.dropout.p)
                return weights @ values
        ''')),
    wrong("scale_by_d_k", CA, "scores divided by d_k instead of sqrt(d_k)",
          _module(rest=_REST.replace("keys.shape[-1] ** 0.5", "keys.shape[-1]"))),
    wrong("qkv_bias_ignored", CA, "the projections never get a bias",
          _module(head=_HEAD.replace("bias=qkv_bias", "bias=False"))),
    wrong("softmax_over_queries", CA, "softmax(dim=1) on (b, n, n) scores",
          _module(rest=_REST.replace("dim=-1", "dim=1"))),
    correct("triu_ones_bool", CM, "ones, then .triu(1), then .bool()", '''
        def causal_mask(num_tokens):
            return torch.ones(num_tokens, num_tokens).triu(1).bool()
        '''),
    correct("arange_comparison", CM, "compare key and query positions with broadcasting", '''
        def causal_mask(num_tokens):
            positions = torch.arange(num_tokens)
            return positions[None, :] > positions[:, None]
        '''),
    correct("float_buffer_bool", CA, "the book's float 0/1 buffer converted with .bool()",
            _module()),
    correct("bool_buffer_where_minus_1e9_einsum", CA, "bool buffer, torch.where with -1e9, einsum",
            _module(buffer='''
                self.register_buffer("mask", causal_mask(context_length))
        ''', masked='''
                scores = torch.einsum("bqd,bkd->bqk", queries, keys)
                scores = torch.where(self.mask[:num_tokens, :num_tokens], -1e9, scores)
        ''', rest='''
                weights = self.dropout(torch.nn.functional.softmax(scores / math.sqrt(keys.size(-1)), dim=-1))
                return torch.einsum("bqk,bkd->bqd", weights, values)
        ''')),
    correct("nonpersistent_finfo_min", CA, "non-persistent buffer, finfo.min fill after scaling",
            _module(buffer='''
                mask = torch.triu(torch.ones(context_length, context_length, dtype=torch.bool), diagonal=1)
                self.register_buffer("mask", mask, persistent=False)
        ''', masked='''
                scores = queries @ keys.transpose(-2, -1) / keys.shape[-1] ** 0.5
                hidden = self.mask[:num_tokens, :num_tokens]
                scores = scores.masked_fill(hidden, torch.finfo(scores.dtype).min)
        ''', rest='''
                weights = self.dropout(scores.softmax(dim=-1))
                return weights @ values
        ''')),
    wrong("softmax_overflows", CA, "a hand-written softmax without max-subtraction: NaN when "
          "scores are around 1e4", _module(rest="""
                exp = torch.exp(scores / keys.shape[-1] ** 0.5)
                weights = self.dropout(exp / exp.sum(dim=-1, keepdim=True))
                return weights @ values
        """)),
    wrong("query_bias_hard_coded", CA, "W_query = nn.Linear(d_in, d_out) (bias=True by default) "
          "whatever qkv_bias says", _module(head=_HEAD.replace(
              "self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)",
              "self.W_query = nn.Linear(d_in, d_out)"))),
    wrong("key_bias_hard_coded", CA, "W_key = nn.Linear(d_in, d_out) (bias=True by default) "
          "whatever qkv_bias says: softmax cancels a key bias, so only the claim shows it",
          _module(head=_HEAD.replace("self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)",
                                     "self.W_key = nn.Linear(d_in, d_out)"))),
    wrong("value_bias_never", CA, "W_value = nn.Linear(d_in, d_out, bias=False) even when "
          "qkv_bias=True", _module(head=_HEAD.replace(
              "self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)",
              "self.W_value = nn.Linear(d_in, d_out, bias=False)"))),
    wrong("fused_qkv_built_in_init", CA, "the projections fused into one matrix in __init__: "
          "loaded weights are ignored", _module(buffer=_BUFFER + """
                fused = torch.cat([self.W_query.weight, self.W_key.weight, self.W_value.weight])
                self.register_buffer("fused", fused.detach().T.clone())
        """, check=_CHECK.replace(
            "queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)",
            "queries, keys, values = (x @ self.fused).chunk(3, dim=-1)"))),
    wrong("w_value_zeroed_in_init", CA, "W_value zeroed in __init__ and copied; forward uses the "
          "copy (every output is 0)", _module(buffer=_BUFFER + """
                nn.init.zeros_(self.W_value.weight)
                self.value_weight = self.W_value.weight.detach().clone()
        """, check=_CHECK.replace("self.W_value(x)", "x @ self.value_weight.T"))),
    wrong("state_dict_lies", CA, "forward uses private projections; state_dict hides them",
          _module(buffer=_BUFFER + """
                self._q = nn.Linear(d_in, d_out, bias=qkv_bias)
                self._k = nn.Linear(d_in, d_out, bias=qkv_bias)
                self._v = nn.Linear(d_in, d_out, bias=qkv_bias)

            def state_dict(self, *args, **kwargs):
                found = super().state_dict(*args, **kwargs)
                return {k: v for k, v in found.items() if not k.startswith("_")}
        """, check=_CHECK.replace(
            "queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)",
            "queries, keys, values = self._q(x), self._k(x), self._v(x)"))),
    wrong("mask_built_on_input_device", CA, "no buffer: the mask is built in forward on "
          "x.device (works on any device, but is not the registered buffer the contract names)",
          _module(buffer="", masked="""
                scores = queries @ keys.transpose(1, 2)
                mask = torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=x.device).triu(1)
                scores = scores.masked_fill(mask, float("-inf"))
        """)),
    wrong("casts_input_to_float32", CA, "x.float() in forward: breaks module.to(torch.float64)",
          _module(check=_CHECK.replace("queries, keys, values =", "x = x.float()\n"
                                       "                queries, keys, values ="))),
    correct("stable_manual_softmax", CA, "a hand-written softmax that subtracts the row max",
            _module(rest="""
                scores = scores / keys.shape[-1] ** 0.5
                exp = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
                weights = self.dropout(exp / exp.sum(dim=-1, keepdim=True))
                return weights @ values
        """)),
    wrong("mask_plain_attribute_in_place", CA, "Raschka style: self.mask a plain tensor "
          "attribute and masked_fill_ in place (the meta device accepts a CPU mask in place, so "
          "only a behaviour that reads the registered buffer shows it)", _module(buffer='''
                self.mask = torch.triu(torch.ones(context_length, context_length), diagonal=1)
        ''', masked='''
                scores = queries @ keys.transpose(1, 2)
                scores.masked_fill_(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)
        ''')),
    compiled(ASSIGNMENT, CA),
]
