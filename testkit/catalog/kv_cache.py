"""Bug catalog for 08-kv-cache.

The wrong ``GroupedQueryAttention`` and ``KVCache`` cases are edits of the reference solution
(each ``(old, new)`` must occur in it), so each differs from a correct module in one mistake:
the bugs of spec section 4 (RoPE positions restarting at 0 per chunk, a mask that ignores the
cache, ``repeat`` for ``repeat_interleave``, keys rotated twice or cached before RoPE, a
cache growing past ``context_length``) and others seen in real code.
"""

from autograder import course
from testkit.catalog import compiled, correct, wrong

ASSIGNMENT = "08-kv-cache"

REPEAT = "repeat_kv"
MASK = "cached_causal_mask"
CACHE = "KVCache"
GQA = "GroupedQueryAttention"


def _solution(cell: str) -> str:
    cells = course.solution_cells(course.read(course.notebook_path(ASSIGNMENT)))
    return course.strip_markers(cells[cell].source)


def _edit(cell: str, *edits: tuple[str, str]) -> str:
    """The reference solution of ``cell`` with each ``(old, new)`` replaced once."""
    source = _solution(cell)
    for old, new in edits:
        assert old in source, f"{old!r} is not in the solution of {cell}"
        source = source.replace(old, new, 1)
    return source


_ROPE_QK = """        queries = compute_rope(queries, cos, sin)
        keys = compute_rope(keys, cos, sin)
"""
_UPDATE = "            keys, values = cache.update(keys, values)  # rotated keys, plain values, num_kv_heads heads\n"
_REPEAT = "        keys, values = repeat_kv(keys, n_rep), repeat_kv(values, n_rep)\n"
_CHECK = """        if past + num_new > self.context_length:
            raise ValueError(f"{past} cached and {num_new} new tokens exceed context_length={self.context_length}")
"""
_MASK_FILL = 'scores = scores.masked_fill(cached_causal_mask(num_new, past).to(x.device), float("-inf"))'
_ATTEND = """        scores = queries @ keys.transpose(2, 3)  # (b, num_heads, num_new, past + num_new)
        scores = scores.masked_fill(cached_causal_mask(num_new, past).to(x.device), float("-inf"))
        weights = torch.softmax(scores / self.head_dim ** 0.5, dim=-1)
        context = (weights @ values).transpose(1, 2)  # (b, num_new, num_heads, head_dim)
"""
_TABLES = "cos, sin = precompute_rope_params(head_dim, theta_base, context_length)"
_KV_CHECK = """        if num_kv_heads < 1 or num_heads % num_kv_heads != 0:
            raise ValueError(f"num_kv_heads={num_kv_heads} must be at least 1 and divide num_heads={num_heads}")
"""
_CACHE_CHECK = """        if self.keys is not None:
            old = self.keys.shape
            if keys.shape[:2] != old[:2] or keys.shape[3:] != old[3:] or keys.dtype != self.keys.dtype \\
                    or values.dtype != self.values.dtype:
                raise ValueError(f"keys {tuple(keys.shape)}, {keys.dtype} do not match the cache "
                                 f"{tuple(old)}, {self.keys.dtype} outside dim 2")
"""
_CAT = """            keys = torch.cat([self.keys, keys], dim=2)
            values = torch.cat([self.values, values], dim=2)
"""

CASES = [
    # --- repeat_kv: wrong ---------------------------------------------------------------------
    wrong("repeat_tiles_heads", REPEAT, "x.repeat(1, n_rep, 1, 1): query head h paired with "
          "key/value head h % num_kv_heads (the spec's bug)",
          _edit(REPEAT, ("torch.repeat_interleave(x, n_rep, dim=1)", "x.repeat(1, n_rep, 1, 1)"))),
    wrong("repeat_expand_wrong_axis", REPEAT, "expand on a new axis before the heads: tiles like "
          "repeat", _edit(REPEAT, ("return torch.repeat_interleave(x, n_rep, dim=1)", """b, kv, n, d = x.shape
    return x[:, None].expand(b, n_rep, kv, n, d).reshape(b, kv * n_rep, n, d)"""))),
    wrong("repeat_along_positions", REPEAT, "repeat_interleave along dim 2 (the positions)",
          _edit(REPEAT, ("torch.repeat_interleave(x, n_rep, dim=1)",
                         "torch.repeat_interleave(x, n_rep, dim=2)"))),
    wrong("repeat_no_error", REPEAT, "no ValueError for n_rep < 1 (n_rep = 0 gives no heads)",
          _edit(REPEAT, ("""    if n_rep < 1:
        raise ValueError(f"n_rep must be at least 1, got {n_rep}")
""", ""))),
    wrong("repeat_error_unnamed", REPEAT, "the ValueError does not name n_rep",
          _edit(REPEAT, ('raise ValueError(f"n_rep must be at least 1, got {n_rep}")',
                         'raise ValueError("the repetition count must be positive")'))),
    # --- cached_causal_mask: wrong ----------------------------------------------------------------
    wrong("mask_ignores_cache", MASK, "triu(ones(num_new, num_cached + num_new), 1): the "
          "diagonal is not moved by num_cached (the spec's bug)",
          _edit(MASK, ("diagonal=num_cached + 1", "diagonal=1"))),
    wrong("mask_square", MASK, "chapter 3's (num_new, num_new) mask: no columns for the cache",
          _edit(MASK, ("torch.ones(num_new, num_cached + num_new, dtype=torch.bool)",
                       "torch.ones(num_new, num_new, dtype=torch.bool)"),
                ("diagonal=num_cached + 1", "diagonal=1"))),
    wrong("mask_true_means_visible", MASK, "tril: True where visible",
          _edit(MASK, ("return torch.triu(ones, diagonal=num_cached + 1)",
                       "return torch.tril(ones, diagonal=num_cached)"))),
    wrong("mask_float", MASK, "a float 0/1 mask, not bool",
          _edit(MASK, ("dtype=torch.bool", "dtype=torch.float32"))),
    wrong("mask_hides_itself", MASK, "diagonal=num_cached: each query hides its own key",
          _edit(MASK, ("diagonal=num_cached + 1", "diagonal=num_cached"))),
    wrong("mask_no_errors", MASK, "no ValueError for num_new < 1 or num_cached < 0",
          _edit(MASK, ("""    if num_new < 1:
        raise ValueError(f"num_new must be at least 1, got {num_new}")
    if num_cached < 0:
        raise ValueError(f"num_cached must not be negative, got {num_cached}")
""", ""))),
    # --- KVCache: wrong ------------------------------------------------------------------------------
    wrong("cache_shared_between_instances", CACHE, "the entries are lists on the class: every "
          "cache shares them", '''
class KVCache:
    keys = []
    values = []

    def __init__(self):
        pass

    @property
    def seq_len(self) -> int:
        return sum(k.shape[2] for k in KVCache.keys)

    def update(self, keys, values):
        if keys.dim() != 4 or values.dim() != 4 or keys.shape != values.shape:
            raise ValueError("keys and values must be 4-D tensors of one shape")
        if KVCache.keys:
            old = KVCache.keys[0]
            if keys.shape[:2] != old.shape[:2] or keys.shape[3] != old.shape[3] or keys.dtype != old.dtype:
                raise ValueError("keys do not match the cache outside dim 2")
        KVCache.keys.append(keys)
        KVCache.values.append(values)
        return torch.cat(KVCache.keys, dim=2), torch.cat(KVCache.values, dim=2)
'''),
    wrong("cache_returns_new_only", CACHE, "update stores everything but returns only the new "
          "entries", _edit(CACHE, ("        if self.keys is not None:\n            old = self.keys.shape",
                                   "        n_new = keys.shape[2]\n        if self.keys is not None:\n"
                                   "            old = self.keys.shape"),
                           ("        return keys, values", "        return keys[:, :, -n_new:], values[:, :, -n_new:]"))),
    wrong("cache_new_first", CACHE, "torch.cat([new, old]): the new entries before the old ones",
          _edit(CACHE, ("torch.cat([self.keys, keys], dim=2)", "torch.cat([keys, self.keys], dim=2)"),
                ("torch.cat([self.values, values], dim=2)",
                 "torch.cat([values, self.values], dim=2)"))),
    wrong("cache_seq_len_counts_updates", CACHE, "seq_len counts update calls, not positions",
          _edit(CACHE, ("        self.keys = None\n        self.values = None",
                        "        self.keys = None\n        self.values = None\n        self.calls = 0"),
                ("return 0 if self.keys is None else self.keys.shape[2]", "return self.calls"),
                ("        self.keys, self.values = keys, values\n",
                 "        self.keys, self.values = keys, values\n        self.calls += 1\n"))),
    wrong("cache_no_validation", CACHE, "no checks: torch.cat raises RuntimeError (or promotes "
          "the dtype) where ValueError is due",
          _edit(CACHE, ("""        if keys.dim() != 4 or values.dim() != 4:
            raise ValueError(f"keys and values must be 4-D (b, num_kv_heads, n_new, head_dim), "
                             f"got shapes {tuple(keys.shape)} and {tuple(values.shape)}")
        if keys.shape != values.shape:
            raise ValueError(f"keys {tuple(keys.shape)} and values {tuple(values.shape)} differ in shape")
""", ""), (_CACHE_CHECK, "        if self.keys is not None:\n"))),
    wrong("cache_appends_keys_before_checking_values", CACHE, "the keys are appended before the "
          "values are checked: a failed update leaves the keys one update ahead", '''
class KVCache:
    def __init__(self):
        self.keys = None
        self.values = None

    @property
    def seq_len(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]

    def update(self, keys, values):
        if keys.dim() != 4:
            raise ValueError("keys must be 4-D (b, num_kv_heads, n_new, head_dim)")
        if self.keys is not None:
            if keys.shape[:2] != self.keys.shape[:2] or keys.shape[3] != self.keys.shape[3] \\
                    or keys.dtype != self.keys.dtype:
                raise ValueError("keys do not match the cache outside dim 2")
        self.keys = keys if self.keys is None else torch.cat([self.keys, keys], dim=2)
        if values.dim() != 4 or values.shape != keys.shape:
            raise ValueError("values must have the shape of keys")
        self.values = values if self.values is None else torch.cat([self.values, values], dim=2)
        return self.keys, self.values
'''),
    wrong("cache_dtype_not_checked", CACHE, "a float64 update after float32 entries is "
          "accepted (torch.cat promotes)",
          _edit(CACHE, (" or keys.dtype != self.keys.dtype \\\n                    or values.dtype != self.values.dtype:",
                        ":"))),
    wrong("cache_fixed_capacity", CACHE, "a buffer preallocated for 16 positions: later entries "
          "are dropped silently", '''
class KVCache:
    def __init__(self):
        self.k = None
        self.v = None
        self.pos = 0

    @property
    def seq_len(self) -> int:
        return self.pos

    def update(self, keys, values):
        if keys.dim() != 4 or values.dim() != 4 or keys.shape != values.shape:
            raise ValueError("keys and values must be 4-D tensors of one shape")
        b, h, n, d = keys.shape
        if self.k is None:
            self.k = keys.new_zeros(b, h, 16, d)
            self.v = values.new_zeros(b, h, 16, d)
        elif (b, h, d) != (self.k.shape[0], self.k.shape[1], self.k.shape[3]) or keys.dtype != self.k.dtype:
            raise ValueError("keys do not match the cache outside dim 2")
        end = min(self.pos + n, 16)
        self.k[:, :, self.pos:end] = keys[:, :, :end - self.pos]
        self.v[:, :, self.pos:end] = values[:, :, :end - self.pos]
        self.pos = self.pos + n
        return self.k[:, :, :min(self.pos, 16)], self.v[:, :, :min(self.pos, 16)]
'''),
    # --- GroupedQueryAttention: wrong -------------------------------------------------------------
    wrong("gqa_positions_restart_per_chunk", GQA, "RoPE with the first rows of the tables: "
          "positions restart at 0 in every chunk (the spec's bug)",
          _edit(GQA, ("cos, sin = self.cos[past:past + num_new], self.sin[past:past + num_new]",
                      "cos, sin = self.cos, self.sin"))),
    wrong("gqa_square_mask_buffer", GQA, "chapter 3's mask buffer sliced [:n_new, :n_new]: "
          "ignores the cache (crashes on a chunk after a cached one; the spec's bug)",
          _edit(GQA, ("        cos, sin = precompute_rope_params(head_dim, theta_base, context_length)\n",
                      "        cos, sin = precompute_rope_params(head_dim, theta_base, context_length)\n"
                      "        self.register_buffer(\"mask\", torch.triu(torch.ones(context_length, "
                      "context_length, dtype=torch.bool), diagonal=1), persistent=False)\n"),
                (_MASK_FILL, 'scores = scores.masked_fill(self.mask[:num_new, :num_new], float("-inf"))'))),
    wrong("gqa_is_causal_on_chunks", GQA, "F.scaled_dot_product_attention(..., is_causal=n_new "
          "> 1): the triangle aligned top-left, so a chunk after a cached one sees too little",
          _edit(GQA, (_ATTEND, """        context = F.scaled_dot_product_attention(queries, keys, values, is_causal=num_new > 1)
        context = context.transpose(1, 2)
"""))),
    wrong("gqa_repeat_tiles_heads", GQA, "keys.repeat(1, n_rep, 1, 1) inline (the spec's bug)",
          _edit(GQA, (_REPEAT, "        keys, values = keys.repeat(1, n_rep, 1, 1), values.repeat(1, n_rep, 1, 1)\n"))),
    wrong("gqa_cached_keys_rotated_twice", GQA, "the whole cache rotated again after the append "
          "(the spec's bug)",
          _edit(GQA, (_UPDATE, _UPDATE + "            keys = compute_rope(keys, self.cos, self.sin)\n"))),
    wrong("gqa_keys_cached_before_rope", GQA, "unrotated keys cached, the whole cache rotated at "
          "every step: right outputs, wrong cache contents (the spec's bug)",
          _edit(GQA, (_ROPE_QK, "        queries = compute_rope(queries, cos, sin)\n"),
                (_UPDATE, _UPDATE),
                ("        n_rep = self.num_heads // self.num_kv_heads\n",
                 "        keys = compute_rope(keys, self.cos, self.sin)  # every cached position\n"
                 "        n_rep = self.num_heads // self.num_kv_heads\n"))),
    wrong("gqa_grows_past_context", GQA, "no context_length check, tables of 4096 rows: the cache "
          "grows past context_length silently (the spec's bug)",
          _edit(GQA, (_CHECK, ""), (_TABLES, "cos, sin = precompute_rope_params(head_dim, theta_base)"))),
    wrong("gqa_checks_after_update", GQA, "tables for the default 4096 positions and the "
          "context_length check after cache.update: the overflowing tokens are already cached",
          _edit(GQA, (_CHECK, ""), (_TABLES, "cos, sin = precompute_rope_params(head_dim, theta_base)"),
                (_UPDATE, _UPDATE + """            if cache.seq_len > self.context_length:
                raise ValueError(f"the cache exceeds context_length={self.context_length}")
"""))),
    wrong("gqa_caches_repeated_heads", GQA, "keys and values repeated for the query heads before "
          "they are cached: a cache as large as multi-head attention's",
          _edit(GQA, (_REPEAT, ""), ("        if cache is not None:\n",
                                     "        n_rep = self.num_heads // self.num_kv_heads\n" + _REPEAT
                                     + "        if cache is not None:\n"),
                ("        n_rep = self.num_heads // self.num_kv_heads\n        scores",
                 "        scores"))),
    wrong("gqa_full_width_kv_projections", GQA, "W_key and W_value of d_out outputs (multi-head "
          "sizes), the first num_kv_heads heads used",
          _edit(GQA, ("self.W_key = nn.Linear(d_in, num_kv_heads * head_dim, bias=qkv_bias)",
                      "self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)"),
                ("self.W_value = nn.Linear(d_in, num_kv_heads * head_dim, bias=qkv_bias)",
                 "self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)"),
                ("keys = self.W_key(x).view(b, num_new, self.num_kv_heads, self.head_dim)",
                 "keys = self.W_key(x)[..., :self.num_kv_heads * self.head_dim].view(b, num_new, self.num_kv_heads, self.head_dim)"),
                ("values = self.W_value(x).view(b, num_new, self.num_kv_heads, self.head_dim)",
                 "values = self.W_value(x)[..., :self.num_kv_heads * self.head_dim].view(b, num_new, self.num_kv_heads, self.head_dim)"))),
    wrong("gqa_no_kv_heads_check", GQA, "num_kv_heads never validated",
          _edit(GQA, (_KV_CHECK, ""))),
    wrong("gqa_kv_error_unnamed", GQA, "the ValueError does not name num_kv_heads",
          _edit(GQA, ('raise ValueError(f"num_kv_heads={num_kv_heads} must be at least 1 and divide num_heads={num_heads}")',
                      'raise ValueError("the heads cannot be grouped")'))),
    wrong("gqa_scale_by_d_out", GQA, "scores scaled by sqrt(d_out) instead of sqrt(head_dim)",
          _edit(GQA, ("weights = torch.softmax(scores / self.head_dim ** 0.5, dim=-1)",
                      "weights = torch.softmax(scores / (self.num_heads * self.head_dim) ** 0.5, dim=-1)"))),
    wrong("gqa_rope_on_values", GQA, "the values rotated too",
          _edit(GQA, (_ROPE_QK, _ROPE_QK + "        values = compute_rope(values, cos, sin)\n"))),
    wrong("gqa_mask_not_moved", GQA, "the mask left on the CPU: fails on any other device "
          "(here, the meta device)",
          _edit(GQA, ("cached_causal_mask(num_new, past).to(x.device)", "cached_causal_mask(num_new, past)"))),
    wrong("gqa_bias_hard_coded_off", GQA, "W_value = nn.Linear(..., bias=False) always",
          _edit(GQA, ("self.W_value = nn.Linear(d_in, num_kv_heads * head_dim, bias=qkv_bias)",
                      "self.W_value = nn.Linear(d_in, num_kv_heads * head_dim, bias=False)"))),
    wrong("gqa_keeps_its_own_cache", GQA, "without a cache argument the module keeps one of its "
          "own: a second call continues the first",
          _edit(GQA, ("        b, num_new, d_in = x.shape\n",
                      "        b, num_new, d_in = x.shape\n        if cache is None:\n"
                      "            if not hasattr(self, \"own_cache\"):\n"
                      "                self.own_cache = KVCache()\n"
                      "            cache = self.own_cache\n"))),
    # --- correct alternatives -------------------------------------------------------------------
    correct("repeat_expand_reshape", REPEAT, "expand on a new axis after the heads, then reshape "
            "(Hugging Face's Llama)", '''
def repeat_kv(x, n_rep):
    if n_rep < 1:
        raise ValueError(f"n_rep={n_rep} must be >= 1")
    b, kv, n, d = x.shape
    return x[:, :, None, :, :].expand(b, kv, n_rep, n, d).reshape(b, kv * n_rep, n, d)
'''),
    correct("repeat_index", REPEAT, "an index h // n_rep into the heads", '''
def repeat_kv(x, n_rep):
    if n_rep < 1:
        raise ValueError(f"n_rep must be positive, got n_rep={n_rep}")
    index = torch.arange(x.shape[1] * n_rep, device=x.device) // n_rep
    return x.index_select(1, index)
'''),
    correct("mask_from_positions", MASK, "absolute positions compared", '''
def cached_causal_mask(num_new, num_cached=0):
    if num_new < 1 or num_cached < 0:
        raise ValueError(f"need num_new >= 1 and num_cached >= 0, got {num_new}, {num_cached}")
    queries = torch.arange(num_cached, num_cached + num_new)
    keys = torch.arange(num_cached + num_new)
    return keys[None, :] > queries[:, None]
'''),
    correct("mask_cached_block_then_causal", MASK, "zeros for the cached keys, chapter 3's mask "
            "for the new ones", '''
def cached_causal_mask(num_new, num_cached=0):
    if num_new < 1:
        raise ValueError("num_new must be at least 1")
    if num_cached < 0:
        raise ValueError("num_cached must not be negative")
    square = torch.triu(torch.ones(num_new, num_new), diagonal=1).bool()
    return torch.cat([torch.zeros(num_new, num_cached, dtype=torch.bool), square], dim=1)
'''),
    correct("cache_preallocated", CACHE, "a preallocated buffer that doubles when full; update "
            "returns views of it", '''
class KVCache:
    def __init__(self):
        self._k = None
        self._v = None
        self._n = 0

    @property
    def seq_len(self):
        return self._n

    def update(self, keys, values):
        if keys.ndim != 4 or values.ndim != 4:
            raise ValueError("keys and values must be 4-D")
        if keys.shape != values.shape:
            raise ValueError("keys and values differ in shape")
        b, h, n, d = keys.shape
        if self._k is not None:
            if (b, h, d) != (self._k.shape[0], self._k.shape[1], self._k.shape[3]) \\
                    or keys.dtype != self._k.dtype or values.dtype != self._v.dtype:
                raise ValueError("the new entries do not match the cache")
        if self._k is None or self._n + n > self._k.shape[2]:
            capacity = max(8, 2 * (self._n + n))
            k = keys.new_empty(b, h, capacity, d)
            v = values.new_empty(b, h, capacity, d)
            if self._k is not None:
                k[:, :, :self._n] = self._k[:, :, :self._n]
                v[:, :, :self._n] = self._v[:, :, :self._n]
            self._k, self._v = k, v
        self._k[:, :, self._n:self._n + n] = keys
        self._v[:, :, self._n:self._n + n] = values
        self._n += n
        return self._k[:, :, :self._n], self._v[:, :, :self._n]
'''),
    correct("cache_lists_and_attribute", CACHE, "lists of chunks, concatenated on every update; "
            "seq_len a plain int attribute", '''
class KVCache:
    def __init__(self):
        self.key_chunks, self.value_chunks = [], []
        self.seq_len = 0

    def update(self, keys, values):
        if keys.dim() != 4 or values.dim() != 4 or keys.shape != values.shape:
            raise ValueError("update needs 4-D keys and values of one shape")
        if self.key_chunks:
            first = self.key_chunks[0]
            for dim in (0, 1, 3):
                if keys.shape[dim] != first.shape[dim]:
                    raise ValueError(f"dim {dim} differs from the cache")
            if keys.dtype != first.dtype or values.dtype != self.value_chunks[0].dtype:
                raise ValueError("dtype differs from the cache")
        self.key_chunks.append(keys)
        self.value_chunks.append(values)
        self.seq_len += keys.shape[2]
        return torch.cat(self.key_chunks, dim=2), torch.cat(self.value_chunks, dim=2)
'''),
    correct("gqa_sdpa_enable_gqa", GQA, "F.scaled_dot_product_attention(..., enable_gqa=True) "
            "with the mask from cached_causal_mask (no repeat_kv)",
            _edit(GQA, (_REPEAT, ""), ("        n_rep = self.num_heads // self.num_kv_heads\n", ""),
                  (_ATTEND, """        visible = ~cached_causal_mask(num_new, past).to(x.device)
        context = F.scaled_dot_product_attention(queries, keys, values, attn_mask=visible, enable_gqa=True)
        context = context.transpose(1, 2)
"""))),
    correct("gqa_sliced_buffer_mask", GQA, "a float (context_length, context_length) mask buffer "
            "sliced at the cache's offset, filled with finfo.min",
            _edit(GQA, ("        cos, sin = precompute_rope_params(head_dim, theta_base, context_length)\n",
                        "        cos, sin = precompute_rope_params(head_dim, theta_base, context_length)\n"
                        "        self.register_buffer(\"mask\", torch.triu(torch.ones(context_length, "
                        "context_length), diagonal=1))\n"),
                  (_MASK_FILL, "mask = self.mask[past:past + num_new, :past + num_new].bool()\n"
                               "        scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)"))),
    correct("gqa_einsum_where", GQA, "einsum scores over grouped heads (no repetition), "
            "torch.where with -1e9, tables in float64 then cast",
            _edit(GQA, (_TABLES, """inv_freq = theta_base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.arange(context_length, dtype=torch.float64)[:, None] * inv_freq
        angles = torch.cat([angles, angles], dim=1)
        cos, sin = angles.cos().float(), angles.sin().float()"""),
                  (_REPEAT, ""), ("        n_rep = self.num_heads // self.num_kv_heads\n", ""),
                  (_ATTEND, """        g = self.num_heads // self.num_kv_heads
        q = queries.reshape(b, self.num_kv_heads, g, num_new, self.head_dim)
        scores = torch.einsum("bkgqd,bkpd->bkgqp", q, keys) / math.sqrt(self.head_dim)
        hidden = cached_causal_mask(num_new, past).to(x.device)
        scores = torch.where(hidden, torch.tensor(-1e9, dtype=scores.dtype, device=x.device), scores)
        weights = scores.softmax(dim=-1)
        context = torch.einsum("bkgqp,bkpd->bkgqd", weights, values)
        context = context.reshape(b, self.num_heads, num_new, self.head_dim).transpose(1, 2)
"""))),
    compiled(ASSIGNMENT, GQA),
]
