"""Bug catalog for 06-rope."""

from testkit.catalog import compiled, correct, wrong

ASSIGNMENT = "06-rope"

PRE = "precompute_rope_params"
ROPE = "compute_rope"
MHA = "RoPEMultiHeadAttention"

_PRE_CHECK = '''
            if head_dim % 2 != 0:
                raise ValueError(f"head_dim must be even, got {head_dim}")'''

_ROPE_CHECKS = '''
            batch, num_heads, seq_len, head_dim = x.shape
            if head_dim % 2 != 0:
                raise ValueError(f"head_dim must be even, got {head_dim}")
            if seq_len > cos.shape[0]:
                raise ValueError(f"seq_len ({seq_len}) exceeds the rows of cos ({cos.shape[0]})")
            if cos.shape[-1] != head_dim or sin.shape[-1] != head_dim:
                raise ValueError("the last dims of x and cos/sin differ")'''

_MHA_INIT = '''
            def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False,
                         theta_base=10000.0):
                super().__init__(d_in, d_out, context_length, dropout, num_heads, qkv_bias)
                cos, sin = precompute_rope_params(self.head_dim, theta_base, context_length)
                self.register_buffer("cos", cos, persistent=False)
                self.register_buffer("sin", sin, persistent=False)
'''

# chapter 05's forward (the provided MultiHeadAttention) with queries and keys rotated
_MHA_FORWARD = '''
            def forward(self, x):
                b, n, _ = x.shape
                if n > self.mask.shape[0]:
                    raise ValueError("num_tokens exceeds context_length")
                shape = (b, n, self.num_heads, self.head_dim)
                queries = self.W_query(x).view(shape).transpose(1, 2)
                keys = self.W_key(x).view(shape).transpose(1, 2)
                values = self.W_value(x).view(shape).transpose(1, 2)
                queries = compute_rope(queries, self.cos, self.sin)
                keys = compute_rope(keys, self.cos, self.sin)
                scores = (queries @ keys.transpose(2, 3)).masked_fill(self.mask[:n, :n], -torch.inf)
                weights = self.dropout(torch.softmax(scores / self.head_dim ** 0.5, dim=-1))
                context = (weights @ values).transpose(1, 2).contiguous().view(b, n, self.d_out)
                return self.out_proj(context)
'''
_ROTATE_QK = '''
                queries = compute_rope(queries, self.cos, self.sin)
                keys = compute_rope(keys, self.cos, self.sin)'''
_SCORES = "scores = (queries @ keys.transpose(2, 3)).masked_fill(self.mask[:n, :n], -torch.inf)"
_WEIGHTS = "weights = self.dropout(torch.softmax(scores / self.head_dim ** 0.5, dim=-1))"
_TABLES = '''
                self.register_buffer("cos", cos, persistent=False)
                self.register_buffer("sin", sin, persistent=False)'''


def _mha(*edits: tuple[str, str], init: tuple[tuple[str, str], ...] = ()) -> str:
    """A subclass of the provided MultiHeadAttention: the reference __init__ and forward,
    with each ``(old, new)`` of ``init`` and ``edits`` replaced (every ``old`` must occur)."""
    head, body = _MHA_INIT, _MHA_FORWARD
    for (old, new), part in [(e, "init") for e in init] + [(e, "body") for e in edits]:
        text = head if part == "init" else body
        assert old in text, f"{old!r} is not in the reference RoPEMultiHeadAttention"
        if part == "init":
            head = text.replace(old, new)
        else:
            body = text.replace(old, new)
    return "\n        class RoPEMultiHeadAttention(MultiHeadAttention):" + head + body

CASES = [
    # --- precompute_rope_params: wrong ------------------------------------------------------
    wrong("pre_positions_from_one", PRE, "positions 1..context_length instead of 0..", f'''
        def precompute_rope_params(head_dim, theta_base=10000.0, context_length=4096):{_PRE_CHECK}
            inv_freq = theta_base ** (-torch.arange(0, head_dim, 2).float() / head_dim)
            angles = torch.arange(1, context_length + 1).float()[:, None] * inv_freq[None, :]
            angles = torch.cat([angles, angles], dim=1)
            return angles.cos(), angles.sin()
        '''),
    wrong("pre_missing_factor_2", PRE, "inv_freq = theta_base ** (-i / head_dim), i the pair index",
          f'''
        def precompute_rope_params(head_dim, theta_base=10000.0, context_length=4096):{_PRE_CHECK}
            inv_freq = theta_base ** (-torch.arange(head_dim // 2).float() / head_dim)
            angles = torch.arange(context_length).float()[:, None] * inv_freq[None, :]
            angles = torch.cat([angles, angles], dim=1)
            return angles.cos(), angles.sin()
        '''),
    wrong("pre_not_duplicated", PRE, "tables of head_dim / 2 columns: angles not duplicated", f'''
        def precompute_rope_params(head_dim, theta_base=10000.0, context_length=4096):{_PRE_CHECK}
            inv_freq = theta_base ** (-torch.arange(0, head_dim, 2).float() / head_dim)
            angles = torch.arange(context_length).float()[:, None] * inv_freq[None, :]
            return angles.cos(), angles.sin()
        '''),
    wrong("pre_interleaved_tables", PRE, "angles repeated pairwise (interleaved layout tables)", f'''
        def precompute_rope_params(head_dim, theta_base=10000.0, context_length=4096):{_PRE_CHECK}
            inv_freq = theta_base ** (-torch.arange(0, head_dim, 2).float() / head_dim)
            angles = torch.arange(context_length).float()[:, None] * inv_freq[None, :]
            angles = angles.repeat_interleave(2, dim=1)
            return angles.cos(), angles.sin()
        '''),
    wrong("pre_no_odd_check", PRE, "odd head_dim accepted (gives head_dim + 1 columns)", '''
        def precompute_rope_params(head_dim, theta_base=10000.0, context_length=4096):
            inv_freq = theta_base ** (-torch.arange(0, head_dim, 2).float() / head_dim)
            angles = torch.arange(context_length).float()[:, None] * inv_freq[None, :]
            angles = torch.cat([angles, angles], dim=1)
            return angles.cos(), angles.sin()
        '''),
    wrong("pre_float64_result", PRE, "computed in float64 and never cast to float32", f'''
        def precompute_rope_params(head_dim, theta_base=10000.0, context_length=4096):{_PRE_CHECK}
            inv_freq = theta_base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
            angles = torch.arange(context_length, dtype=torch.float64)[:, None] * inv_freq
            angles = torch.cat([angles, angles], dim=1)
            return angles.cos(), angles.sin()
        '''),
    wrong("pre_cos_sin_swapped", PRE, "returns (sin, cos)", f'''
        def precompute_rope_params(head_dim, theta_base=10000.0, context_length=4096):{_PRE_CHECK}
            inv_freq = theta_base ** (-torch.arange(0, head_dim, 2).float() / head_dim)
            angles = torch.arange(context_length).float()[:, None] * inv_freq[None, :]
            angles = torch.cat([angles, angles], dim=1)
            return angles.sin(), angles.cos()
        '''),
    wrong("pre_ignores_theta_base", PRE, "10000 written in place of theta_base", f'''
        def precompute_rope_params(head_dim, theta_base=10000.0, context_length=4096):{_PRE_CHECK}
            inv_freq = 10000.0 ** (-torch.arange(0, head_dim, 2).float() / head_dim)
            angles = torch.arange(context_length).float()[:, None] * inv_freq[None, :]
            angles = torch.cat([angles, angles], dim=1)
            return angles.cos(), angles.sin()
        '''),
    # --- precompute_rope_params: correct ----------------------------------------------------
    correct("pre_float64_then_cast", PRE, "tables computed in float64, cast to float32", f'''
        def precompute_rope_params(head_dim, theta_base=10000.0, context_length=4096):{_PRE_CHECK}
            inv_freq = 1.0 / theta_base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
            angles = torch.outer(torch.arange(context_length, dtype=torch.float64), inv_freq)
            angles = torch.cat([angles, angles], dim=-1)
            return angles.cos().float(), angles.sin().float()
        '''),
    correct("pre_exp_log_and_repeat", PRE, "inv_freq via exp/log, duplication via repeat", f'''
        def precompute_rope_params(head_dim, theta_base=10000.0, context_length=4096):{_PRE_CHECK}
            i = torch.arange(head_dim // 2, dtype=torch.float32)
            inv_freq = torch.exp(-2 * i * math.log(theta_base) / head_dim)
            angles = torch.einsum("p,f->pf", torch.arange(context_length, dtype=torch.float32), inv_freq)
            angles = angles.repeat(1, 2)
            return torch.cos(angles), torch.sin(angles)
        '''),
    # --- compute_rope: wrong ------------------------------------------------------------------
    wrong("rope_layout_bug", ROPE, "published bug: x read as (batch, seq_len, num_heads, head_dim)",
          '''
        def compute_rope(x, cos, sin):
            batch, seq_len, num_heads, head_dim = x.shape
            if head_dim % 2 != 0:
                raise ValueError("head_dim must be even")
            if seq_len > cos.shape[0]:
                raise ValueError("seq_len exceeds the rows of cos")
            if cos.shape[-1] != head_dim:
                raise ValueError("the last dims of x and cos/sin differ")
            x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
            cos, sin = cos[:seq_len].unsqueeze(1), sin[:seq_len].unsqueeze(1)
            return (x * cos + torch.cat([-x2, x1], dim=-1) * sin).to(x.dtype)
        '''),
    wrong("rope_rotate_half_sign", ROPE, "rotate_half as cat(x2, -x1): rotates by -angle", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
            out = x * cos[:seq_len] + torch.cat([x2, -x1], dim=-1) * sin[:seq_len]
            return out.to(x.dtype)
        '''),
    wrong("rope_interleaved_pairs", ROPE, "rotates neighbouring pairs with split-halves tables", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            rotated = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)
            return (x * cos[:seq_len] + rotated * sin[:seq_len]).to(x.dtype)
        '''),
    wrong("rope_no_slice", ROPE, "tables not sliced to seq_len", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
            return (x * cos + torch.cat([-x2, x1], dim=-1) * sin).to(x.dtype)
        '''),
    wrong("rope_upcast_dtype", ROPE, "bfloat16/float16 input gives a float32 result", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
            return x * cos[:seq_len] + torch.cat([-x2, x1], dim=-1) * sin[:seq_len]
        '''),
    wrong("rope_cos_sin_swapped", ROPE, "x * sin + rotate_half(x) * cos", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
            return (x * sin[:seq_len] + torch.cat([-x2, x1], dim=-1) * cos[:seq_len]).to(x.dtype)
        '''),
    wrong("rope_no_checks", ROPE, "no ValueError: odd head_dim and short tables slip through", '''
        def compute_rope(x, cos, sin):
            seq_len, head_dim = x.shape[-2:]
            x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
            return (x * cos[:seq_len] + torch.cat([-x2, x1], dim=-1) * sin[:seq_len]).to(x.dtype)
        '''),
    wrong("rope_own_tables", ROPE, "ignores the cos/sin handed over and builds its own for "
          "theta_base 10000", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            cos, sin = precompute_rope_params(head_dim, context_length=seq_len)
            x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
            return (x * cos + torch.cat([-x2, x1], dim=-1) * sin).to(x.dtype)
        '''),
    wrong("rope_rows_from_one", ROPE, "cos[1:seq_len + 1]: the rows shifted by one position", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
            cos, sin = cos[1 : seq_len + 1], sin[1 : seq_len + 1]
            if cos.shape[0] < seq_len:
                cos, sin = torch.cat([cos, cos[-1:]]), torch.cat([sin, sin[-1:]])
            return (x * cos + torch.cat([-x2, x1], dim=-1) * sin).to(x.dtype)
        '''),
    wrong("rope_always_float32", ROPE, "returns .float(): float64 and half-precision inputs "
          "change dtype", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
            return (x * cos[:seq_len] + torch.cat([-x2, x1], dim=-1) * sin[:seq_len]).float()
        '''),
    wrong("rope_identity", ROPE, "returns x unchanged (after the checks)", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            return x.clone()
        '''),
    # --- compute_rope: correct ----------------------------------------------------------------
    correct("rope_in_float32", ROPE, "computes in float32, casts back to the input dtype", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            x32 = x.float()
            x1, x2 = x32[..., : head_dim // 2], x32[..., head_dim // 2 :]
            out = x32 * cos[:seq_len].float() + torch.cat((-x2, x1), dim=-1) * sin[:seq_len].float()
            return out.to(dtype=x.dtype)
        '''),
    correct("rope_chunk_native_dtype", ROPE, "torch.chunk, tables cast to x.dtype and broadcast "
            "explicitly", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            x1, x2 = torch.chunk(x, 2, dim=-1)
            cos = cos[:seq_len, :].unsqueeze(0).unsqueeze(0).to(x.dtype)
            sin = sin[:seq_len, :].unsqueeze(0).unsqueeze(0).to(x.dtype)
            return x * cos + torch.cat((-x2, x1), dim=-1) * sin
        '''),
    correct("rope_complex", ROPE, "complex multiplication on the split-halves pairs", f'''
        def compute_rope(x, cos, sin):{_ROPE_CHECKS}
            half = head_dim // 2
            rotation = torch.complex(cos[:seq_len, :half].float(), sin[:seq_len, :half].float())
            z = torch.complex(x[..., :half].float(), x[..., half:].float()) * rotation
            return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)
        '''),
    # --- RoPEMultiHeadAttention: wrong --------------------------------------------------------
    wrong("mha_rope_on_values", MHA, "values rotated too", _mha(
        (_ROTATE_QK, _ROTATE_QK + '''
                values = compute_rope(values, self.cos, self.sin)'''))),
    wrong("mha_no_rope_on_keys", MHA, "only the queries are rotated", _mha(
        (_ROTATE_QK, '''
                queries = compute_rope(queries, self.cos, self.sin)'''))),
    wrong("mha_rope_before_head_split", MHA, "rotates the whole d_out vector, then splits", _mha(
        (_ROTATE_QK, ""),
        ("queries = self.W_query(x).view(shape)", '''q = self.W_query(x).unsqueeze(1)
                queries = compute_rope(q, self.cos, self.sin).squeeze(1).view(shape)'''),
        ("keys = self.W_key(x).view(shape)", '''k = self.W_key(x).unsqueeze(1)
                keys = compute_rope(k, self.cos, self.sin).squeeze(1).view(shape)'''),
        init=(("precompute_rope_params(self.head_dim,", "precompute_rope_params(d_out,"),))),
    wrong("mha_layout_bug", MHA, "published bug: rotates (b, num_tokens, num_heads, head_dim)", _mha(
        ("queries = self.W_query(x).view(shape).transpose(1, 2)", "queries = self.W_query(x).view(shape)"),
        ("keys = self.W_key(x).view(shape).transpose(1, 2)", "keys = self.W_key(x).view(shape)"),
        (_ROTATE_QK, '''
                queries = compute_rope(queries, self.cos, self.sin).transpose(1, 2)
                keys = compute_rope(keys, self.cos, self.sin).transpose(1, 2)'''))),
    wrong("mha_tables_as_parameters", MHA, "cos/sin stored as nn.Parameter (trained)", _mha(
        init=((_TABLES, '''
                self.cos = nn.Parameter(cos)
                self.sin = nn.Parameter(sin)'''),))),
    wrong("mha_tables_plain_attributes", MHA, "cos/sin plain attributes: do not move with .to()",
          _mha(init=((_TABLES, '''
                self.cos, self.sin = cos, sin'''),))),
    wrong("mha_ignores_theta_base", MHA, "theta_base not passed to precompute_rope_params", _mha(
        init=(("precompute_rope_params(self.head_dim, theta_base, context_length)",
               "precompute_rope_params(self.head_dim, context_length=context_length)"),))),
    wrong("mha_drops_qkv_bias", MHA, "qkv_bias not passed on to MultiHeadAttention", _mha(
        init=(("dropout, num_heads, qkv_bias)", "dropout, num_heads)"),))),
    wrong("mha_key_bias_hard_coded", MHA, "W_key replaced by nn.Linear(d_in, d_out): it always has "
          "a bias", _mha(init=((_TABLES, _TABLES + '''
                self.W_key = nn.Linear(d_in, d_out)'''),))),
    wrong("mha_zeroes_w_value", MHA, "W_value zeroed in __init__ (\"start from no mixing\")", _mha(
        init=((_TABLES, _TABLES + '''
                nn.init.zeros_(self.W_value.weight)'''),))),
    wrong("mha_state_dict_lies", MHA, "a fused qkv projection does the work; W_query/W_key/"
          "W_value are unused and state_dict reports the fused weights under their names", _mha(
        ("queries = self.W_query(x).view(shape)", '''q, k, v = self.qkv(x).chunk(3, dim=-1)
                queries = q.view(shape)'''),
        ("keys = self.W_key(x).view(shape)", "keys = k.view(shape)"),
        ("values = self.W_value(x).view(shape)", "values = v.view(shape)"),
        ("return self.out_proj(context)\n", '''return self.out_proj(context)

            def state_dict(self, *args, **kwargs):
                found = super().state_dict(*args, **kwargs)
                for i, name in enumerate(("W_query", "W_key", "W_value")):
                    rows = slice(i * self.d_out, (i + 1) * self.d_out)
                    found[f"{name}.weight"] = self.qkv.weight[rows].detach()
                    if self.qkv.bias is not None:
                        found[f"{name}.bias"] = self.qkv.bias[rows].detach()
                return {k: v for k, v in found.items() if not k.startswith("qkv.")}
'''),
        init=((_TABLES, _TABLES + '''
                self.qkv = nn.Linear(d_in, 3 * d_out, bias=qkv_bias)'''),))),
    wrong("mha_naive_softmax", MHA, "own module: softmax as exp / sum without subtracting the row "
          "maximum (overflows to NaN on large scores)", _mha(
        (_WEIGHTS, '''e = torch.exp(scores / self.head_dim ** 0.5)
                weights = self.dropout(e / e.sum(dim=-1, keepdim=True))'''))),
    wrong("mha_plain_mask_attribute", MHA, "own module: the mask a plain tensor attribute (does "
          "not move with .to(device))", '''
        class RoPEMultiHeadAttention(nn.Module):
            def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False,
                         theta_base=10000.0):
                super().__init__()
                if d_out % num_heads:
                    raise ValueError("d_out must be divisible by num_heads")
                self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads
                self.context_length = context_length
                self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.out_proj = nn.Linear(d_out, d_out)
                self.dropout = nn.Dropout(dropout)
                self.mask = torch.triu(torch.ones(context_length, context_length, dtype=torch.bool), 1)
                cos, sin = precompute_rope_params(self.head_dim, theta_base, context_length)
                self.register_buffer("cos", cos)
                self.register_buffer("sin", sin)
                self.register_buffer("positions", torch.arange(context_length))

            def forward(self, x):
                b, n, _ = x.shape
                if n > self.context_length:
                    raise ValueError("num_tokens exceeds context_length")
                def heads(t):
                    return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
                q = compute_rope(heads(self.W_query(x)), self.cos, self.sin)
                k = compute_rope(heads(self.W_key(x)), self.cos, self.sin)
                scores = (q @ k.transpose(2, 3)).masked_fill(self.mask[:n, :n], -torch.inf)
                weights = self.dropout(torch.softmax(scores / self.head_dim ** 0.5, dim=-1))
                context = (weights @ heads(self.W_value(x))).transpose(1, 2).reshape(b, n, self.d_out)
                return self.out_proj(context)
        '''),
    # --- RoPEMultiHeadAttention: correct ------------------------------------------------------
    correct("mha_self_contained", MHA, "own nn.Module: einsum, float mask, -1e9, persistent "
            "buffers named rope_cos/rope_sin", '''
        class RoPEMultiHeadAttention(nn.Module):
            def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False,
                         theta_base=10000.0):
                super().__init__()
                if d_out % num_heads:
                    raise ValueError("d_out must be divisible by num_heads")
                self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads
                self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
                self.out_proj = nn.Linear(d_out, d_out)
                self.dropout = nn.Dropout(dropout)
                self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), 1))
                cos, sin = precompute_rope_params(self.head_dim, theta_base, context_length)
                self.register_buffer("rope_cos", cos)
                self.register_buffer("rope_sin", sin)

            def forward(self, x):
                b, n, _ = x.shape
                if n > self.mask.shape[0]:
                    raise ValueError(f"{n} tokens exceed context_length {self.mask.shape[0]}")
                def heads(t):
                    return t.reshape(b, n, self.num_heads, self.head_dim).permute(0, 2, 1, 3)
                q = compute_rope(heads(self.W_query(x)), self.rope_cos[:n], self.rope_sin[:n])
                k = compute_rope(heads(self.W_key(x)), self.rope_cos[:n], self.rope_sin[:n])
                v = heads(self.W_value(x))
                scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(self.head_dim)
                scores = torch.where(self.mask[:n, :n].bool(), torch.tensor(-1e9), scores)
                weights = self.dropout(torch.softmax(scores, dim=-1))
                context = torch.einsum("bhqk,bhkd->bhqd", weights, v)
                return self.out_proj(context.permute(0, 2, 1, 3).reshape(b, n, self.d_out))
        '''),
    correct("mha_persistent_renamed", MHA, "subclass with persistent buffers named freqs_cos/"
            "freqs_sin, tables sliced before compute_rope, its own error for long inputs", _mha(
        ('''
                if n > self.mask.shape[0]:
                    raise ValueError("num_tokens exceeds context_length")''', '''
                if n > self.freqs_cos.shape[0]:
                    raise ValueError(f"num_tokens {n} > context_length {self.freqs_cos.shape[0]}")
                cos, sin = self.freqs_cos[:n], self.freqs_sin[:n]'''),
        (_ROTATE_QK, '''
                queries = compute_rope(queries, cos, sin)
                keys = compute_rope(keys, cos, sin)'''),
        init=(("cos, sin = precompute_rope_params", "freqs_cos, freqs_sin = precompute_rope_params"),
              (_TABLES, '''
                self.register_buffer("freqs_cos", freqs_cos)
                self.register_buffer("freqs_sin", freqs_sin)''')))),
    correct("mha_stable_manual_softmax", MHA, "own attention: softmax by hand with the row "
            "maximum subtracted, mask filled with finfo.min, dropout on the weights", _mha(
        (_SCORES, '''scores = torch.einsum("bhqd,bhkd->bhqk", queries, keys)
                scores = scores.masked_fill(self.mask[:n, :n], torch.finfo(scores.dtype).min)'''),
        (_WEIGHTS, '''scores = scores / math.sqrt(self.head_dim)
                scores = scores - scores.amax(dim=-1, keepdim=True)
                e = scores.exp()
                weights = self.dropout(e / e.sum(dim=-1, keepdim=True))'''),
        ("context = (weights @ values).transpose(1, 2).contiguous().view(b, n, self.d_out)",
         '''context = torch.einsum("bhqk,bhkd->bhqd", weights, values)
                context = context.permute(0, 2, 1, 3).reshape(b, n, self.d_out)'''))),
    compiled(ASSIGNMENT, "RoPEMultiHeadAttention"),
]
