"""Bug catalog for 05-multi-head-attention.

``BASE`` is the reference's ``MultiHeadAttention``, which is chapter 05's solution as the
learner sees it (the solution cell with its ``### BEGIN/END SOLUTION`` markers removed) and
chapter 06's provided module (``tests/test_one_module.py`` keeps them equal). Most wrong
cases are one small edit of it.
"""

import inspect

from autograder.reference import multi_head_attention as reference
from testkit.catalog import compiled, correct, wrong

ASSIGNMENT = "05-multi-head-attention"

SPLIT = "split_heads"
MERGE = "merge_heads"
MHA = "MultiHeadAttention"

BASE = "\n" + inspect.getsource(reference.MultiHeadAttention)


def _edit(*edits: tuple[str, str], source: str = BASE) -> str:
    """``source`` with each ``(old, new)`` replaced; every ``old`` must occur in it."""
    for old, new in edits:
        assert old in source, f"{old!r} is not in the catalog base"
        source = source.replace(old, new)
    return source


_LENGTH_CHECK = '''
        if num_tokens > self.mask.shape[0]:
            raise ValueError(f"num_tokens={num_tokens} exceeds context_length={self.mask.shape[0]}")'''
_DIVISIBILITY_CHECK = '''
        if d_out % num_heads != 0:
            raise ValueError(f"d_out={d_out} must be divisible by num_heads={num_heads}")'''
_MASK_FILL = '''
        scores = scores.masked_fill(self.mask[:num_tokens, :num_tokens], float("-inf"))'''
_SOFTMAX = "weights = torch.softmax(scores / self.head_dim ** 0.5, dim=-1)"
_DROPOUT = '''
        weights = self.dropout(weights)'''
_QKV = '''
        queries = self.W_query(x).view(shape).transpose(1, 2)  # (b, num_heads, num_tokens, head_dim)
        keys = self.W_key(x).view(shape).transpose(1, 2)  # (b, num_heads, num_tokens, head_dim)
        values = self.W_value(x).view(shape).transpose(1, 2)  # (b, num_heads, num_tokens, head_dim)'''
_MERGE = '''
        context = (weights @ values).transpose(1, 2)  # (b, num_tokens, num_heads, head_dim)
        context = context.contiguous().view(b, num_tokens, self.d_out)  # (b, num_tokens, d_out)'''
_RETURN = "return self.out_proj(context)"
_MASK_BUFFER = '''self.register_buffer(
            "mask", torch.triu(torch.ones(context_length, context_length, dtype=torch.bool), diagonal=1))'''
_INIT_END = '''diagonal=1))
'''

CASES = [
    wrong("published_bug_d_out_not_divided", MHA,
          "published bug: every head gets d_out features, no out_proj ([8, 1024, 9216])", '''
        class MultiHeadAttention(nn.Module):
            def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
                super().__init__()
                self.d_out = d_out
                self.num_heads = num_heads
                self.head_dim = d_out
                self.W_query = nn.Linear(d_in, d_out * num_heads, bias=qkv_bias)
                self.W_key = nn.Linear(d_in, d_out * num_heads, bias=qkv_bias)
                self.W_value = nn.Linear(d_in, d_out * num_heads, bias=qkv_bias)
                self.dropout = nn.Dropout(dropout)
                self.register_buffer("mask", torch.triu(
                    torch.ones(context_length, context_length, dtype=torch.bool), diagonal=1))

            def forward(self, x):
                b, n, _ = x.shape
                if n > self.mask.shape[0]:
                    raise ValueError("num_tokens exceeds context_length")
                shape = (b, n, self.num_heads, self.head_dim)
                q = self.W_query(x).view(shape).transpose(1, 2)
                k = self.W_key(x).view(shape).transpose(1, 2)
                v = self.W_value(x).view(shape).transpose(1, 2)
                scores = (q @ k.transpose(2, 3)).masked_fill(self.mask[:n, :n], float("-inf"))
                weights = self.dropout(torch.softmax(scores / self.head_dim ** 0.5, dim=-1))
                return (weights @ v).transpose(1, 2).reshape(b, n, self.num_heads * self.d_out)
        '''),
    wrong("out_proj_not_applied", MHA, "out_proj defined in __init__ but never called",
          _edit((_RETURN, "return context"))),
    wrong("scale_by_d_out", MHA, "scores divided by sqrt(d_out) instead of sqrt(head_dim)",
          _edit(("scores / self.head_dim ** 0.5", "scores / self.d_out ** 0.5"))),
    wrong("view_without_transpose", MHA, "heads split with view(b, h, n, hd), no transpose",
          _edit(("(b, num_tokens, self.num_heads, self.head_dim)",
                 "(b, self.num_heads, num_tokens, self.head_dim)"),
                (".view(shape).transpose(1, 2)", ".view(shape)"),
                ("(weights @ values).transpose(1, 2)", "weights @ values"))),
    wrong("mha_merge_without_transpose", MHA, "context reshaped to (b, n, d_out) without transposing",
          _edit((_MERGE, """
        context = (weights @ values).reshape(b, num_tokens, self.d_out)"""))),
    wrong("dropout_on_output", MHA, "dropout applied to the output instead of the weights",
          _edit((_DROPOUT, ""), (_RETURN, "return self.dropout(self.out_proj(context))"))),
    wrong("mask_not_sliced", MHA, "the full (context_length, context_length) mask is used",
          _edit(("self.mask[:num_tokens, :num_tokens]", "self.mask"))),
    wrong("no_divisibility_check", MHA, "no ValueError when d_out % num_heads != 0",
          _edit((_DIVISIBILITY_CHECK, ""))),
    wrong("no_length_check", MHA, "no ValueError when num_tokens > context_length",
          _edit((_LENGTH_CHECK, ""))),
    wrong("no_causal_mask", MHA, "the mask buffer is registered but never applied",
          _edit((_MASK_FILL, ""))),
    wrong("mask_includes_diagonal", MHA, "triu(diagonal=0): a token cannot see itself",
          _edit(("diagonal=1", "diagonal=0"))),
    wrong("softmax_over_queries", MHA, "softmax over dim=-2 (queries) instead of keys",
          _edit((_SOFTMAX, _SOFTMAX.replace("dim=-1", "dim=-2")))),
    wrong("out_proj_without_bias", MHA, "out_proj = nn.Linear(d_out, d_out, bias=False)",
          _edit(("nn.Linear(d_out, d_out)", "nn.Linear(d_out, d_out, bias=False)"))),
    wrong("issue_no_mask_d_out_scale_zero_values", MHA,
          "no causal mask, scores / sqrt(d_out), and nn.init.zeros_(self.W_value.weight): "
          "judged on the module's own weights, v = 0 hid both bugs",
          _edit((_MASK_FILL, ""), ("scores / self.head_dim ** 0.5", "scores / self.d_out ** 0.5"),
                (_INIT_END, _INIT_END + """        nn.init.zeros_(self.W_value.weight)
"""))),
    wrong("state_dict_lies", MHA,
          "forward ignores W_value and the mask; state_dict() reports a zero W_value",
          _edit(("values = self.W_value(x).view(shape).transpose(1, 2)",
                 "values = torch.zeros(b, self.num_heads, num_tokens, self.head_dim)"),
                (_MASK_FILL, ""),
                (_RETURN, _RETURN + """

    def state_dict(self, *args, **kwargs):
        found = super().state_dict(*args, **kwargs)
        found["W_value.weight"] = torch.zeros_like(found["W_value.weight"])
        if "W_value.bias" in found:
            found["W_value.bias"] = torch.zeros_like(found["W_value.bias"])
        return found"""))),
    wrong("weights_cached_in_init", MHA,
          "one fused (3 * d_out, d_in) weight copied from the projections in __init__: "
          "forward never sees weights loaded later",
          _edit((_INIT_END, _INIT_END + """        with torch.no_grad():
            self.register_buffer("qkv_weight", torch.cat(
                [self.W_query.weight, self.W_key.weight, self.W_value.weight]))
            self.qkv_bias = None if not qkv_bias else torch.cat(
                [self.W_query.bias, self.W_key.bias, self.W_value.bias])
"""), (_QKV, """
        qkv = F.linear(x, self.qkv_weight, self.qkv_bias)
        qkv = qkv.view(b, num_tokens, 3, self.num_heads, self.head_dim)
        queries, keys, values = qkv.permute(2, 0, 3, 1, 4)"""))),
    wrong("mask_plain_attribute", MHA, "self.mask = torch.triu(...): not a registered buffer",
          _edit((_MASK_BUFFER, "self.mask = torch.triu(torch.ones(context_length, context_length, "
                               "dtype=torch.bool), diagonal=1)"))),
    wrong("key_bias_hard_coded_off", MHA, "W_key = nn.Linear(d_in, d_out, bias=False) always",
          _edit(("self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)",
                 "self.W_key = nn.Linear(d_in, d_out, bias=False)"))),
    wrong("value_bias_hard_coded_on", MHA, "W_value = nn.Linear(d_in, d_out) (bias=True) always",
          _edit(("self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)",
                 "self.W_value = nn.Linear(d_in, d_out)"))),
    wrong("softmax_without_max_subtraction", MHA,
          "softmax written as exp(s) / sum(exp(s)): overflows to inf/inf = NaN on large scores",
          _edit((_SOFTMAX, """e = torch.exp(scores / self.head_dim ** 0.5)
        weights = e / e.sum(dim=-1, keepdim=True)"""))),
    wrong("split_view_without_transpose", SPLIT, "x.view(b, num_heads, n, head_dim)", '''
        def split_heads(x, num_heads):
            b, n, d = x.shape
            if d % num_heads != 0:
                raise ValueError("d must be divisible by num_heads")
            return x.view(b, num_heads, n, d // num_heads)
        '''),
    wrong("split_without_check", SPLIT, "no ValueError when d % num_heads != 0", '''
        def split_heads(x, num_heads):
            b, n, d = x.shape
            return x.view(b, n, num_heads, d // num_heads).transpose(1, 2)
        '''),
    wrong("split_heads_last", SPLIT, "returns (b, n, num_heads, head_dim): transpose missing", '''
        def split_heads(x, num_heads):
            b, n, d = x.shape
            if d % num_heads != 0:
                raise ValueError("d must be divisible by num_heads")
            return x.view(b, n, num_heads, d // num_heads)
        '''),
    wrong("merge_without_transpose", MERGE, "x.reshape(b, n, h * hd) straight away", '''
        def merge_heads(x):
            b, h, n, hd = x.shape
            return x.reshape(b, n, h * hd)
        '''),
    wrong("merge_wrong_permute", MERGE, "permute(0, 2, 3, 1): head_dim before heads", '''
        def merge_heads(x):
            b, h, n, hd = x.shape
            return x.permute(0, 2, 3, 1).reshape(b, n, h * hd)
        '''),
    correct("mha_einsum_where_float_mask", MHA,
            "einsum projections and scores, torch.where masking, float 0/1 mask buffer", '''
        class MultiHeadAttention(nn.Module):
            def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
                super().__init__()
                if d_out % num_heads:
                    raise ValueError(f"d_out ({d_out}) % num_heads ({num_heads}) != 0")
                self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads
                self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.out_proj = nn.Linear(d_out, d_out)
                self.dropout = nn.Dropout(dropout)
                self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length),
                                                        diagonal=1))

            def forward(self, x):
                b, n, _ = x.shape
                if n > self.mask.shape[0]:
                    raise ValueError("num_tokens is larger than context_length")
                h, hd = self.num_heads, self.head_dim
                q = self.W_query(x).reshape(b, n, h, hd)
                k = self.W_key(x).reshape(b, n, h, hd)
                v = self.W_value(x).reshape(b, n, h, hd)
                scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
                hidden = self.mask[:n, :n].bool()
                scores = torch.where(hidden, torch.full_like(scores, float("-inf")), scores)
                weights = self.dropout(torch.softmax(scores, dim=-1))
                context = torch.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, n, self.d_out)
                return self.out_proj(context)
        '''),
    correct("mha_reshape_permute_finfo", MHA,
            "reshape/permute, finfo.min fill, non-persistent buffer", '''
        class MultiHeadAttention(nn.Module):
            def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
                super().__init__()
                if d_out % num_heads != 0:
                    raise ValueError("d_out must be divisible by num_heads")
                self.d_out = d_out
                self.num_heads = num_heads
                self.head_dim = d_out // num_heads
                self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.out_proj = nn.Linear(d_out, d_out)
                self.dropout = nn.Dropout(dropout)
                mask = torch.ones(context_length, context_length, dtype=torch.bool).triu(1)
                self.register_buffer("mask", mask, persistent=False)

            def forward(self, x):
                b, n, _ = x.shape
                if n > self.mask.size(0):
                    raise ValueError(f"{n} tokens but context_length is {self.mask.size(0)}")
                def heads(t):
                    return t.reshape(b, n, self.num_heads, self.head_dim).permute(0, 2, 1, 3)
                q, k, v = heads(self.W_query(x)), heads(self.W_key(x)), heads(self.W_value(x))
                scores = q @ k.permute(0, 1, 3, 2) / self.head_dim ** 0.5
                scores = scores.masked_fill(self.mask[:n, :n], torch.finfo(scores.dtype).min)
                weights = self.dropout(scores.softmax(dim=-1))
                return self.out_proj((weights @ v).permute(0, 2, 1, 3).reshape(b, n, self.d_out))
        '''),
    correct("mha_fused_qkv_product", MHA,
            "one F.linear with the three weights concatenated, split afterwards, -1e9 fill",
            _edit((_QKV, """
        weight = torch.cat([self.W_query.weight, self.W_key.weight, self.W_value.weight])
        bias = None
        if self.W_query.bias is not None:
            bias = torch.cat([self.W_query.bias, self.W_key.bias, self.W_value.bias])
        qkv = F.linear(x, weight, bias).view(b, num_tokens, 3, self.num_heads, self.head_dim)
        queries, keys, values = qkv.permute(2, 0, 3, 1, 4).unbind(0)"""),
                  ('float("-inf")', "-1e9"),
                  (_MERGE, """
        context = (weights @ values).transpose(1, 2).flatten(2)"""))),
    correct("mha_uses_split_and_merge", MHA, "forward written with split_heads/merge_heads",
            _edit((_QKV, """
        queries = split_heads(self.W_query(x), self.num_heads)
        keys = split_heads(self.W_key(x), self.num_heads)
        values = split_heads(self.W_value(x), self.num_heads)"""),
                  (_MERGE, """
        context = merge_heads(weights @ values)"""))),
    correct("split_reshape_permute", SPLIT, "reshape + permute, error message naming num_heads",
            '''
        def split_heads(x, num_heads):
            if x.shape[-1] % num_heads:
                raise ValueError(f"num_heads={num_heads} does not divide {x.shape[-1]}")
            return x.reshape(*x.shape[:2], num_heads, -1).permute(0, 2, 1, 3)
        '''),
    correct("split_unflatten", SPLIT, "unflatten the last dim, then movedim", '''
        def split_heads(x, num_heads):
            d = x.shape[-1]
            if d % num_heads != 0:
                raise ValueError("num_heads must divide the last dimension")
            return x.unflatten(-1, (num_heads, d // num_heads)).movedim(2, 1)
        '''),
    correct("merge_cat_unbind", MERGE, "torch.cat of the heads along the features", '''
        def merge_heads(x):
            return torch.cat(x.unbind(dim=1), dim=-1)
        '''),
    correct("merge_permute_flatten", MERGE, "permute then flatten", '''
        def merge_heads(x):
            return x.permute(0, 2, 1, 3).flatten(start_dim=2)
        '''),
    compiled(ASSIGNMENT, MHA),
    wrong("mask_plain_attribute_in_place", MHA, "Raschka style: self.mask a plain tensor "
          "attribute and masked_fill_ in place (the meta device accepts a CPU mask in place, so "
          "only a behaviour that reads the registered buffer shows it)", _edit(
              (_MASK_BUFFER, "self.mask = torch.triu(torch.ones(context_length, context_length), "
                             "diagonal=1)"),
              (_MASK_FILL, """
        scores.masked_fill_(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)"""))),
]
