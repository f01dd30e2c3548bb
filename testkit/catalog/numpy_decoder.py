"""Bug catalog for 07-numpy-decoder."""

from testkit.catalog import correct, wrong

ASSIGNMENT = "07-numpy-decoder"

ATTN = "multi_head_causal_attention"
DEC = "decoder_forward"
GEN = "generate"

_ATTN_HEAD = '''
        def multi_head_causal_attention(x, W_q, W_k, W_v, W_o, num_heads):
            seq_len, d_model = x.shape
            head_dim = d_model // num_heads
            queries = (x @ W_q).reshape(seq_len, num_heads, head_dim).transpose(1, 0, 2)
            keys = (x @ W_k).reshape(seq_len, num_heads, head_dim).transpose(1, 0, 2)
            values = (x @ W_v).reshape(seq_len, num_heads, head_dim).transpose(1, 0, 2)
            future = np.triu(np.ones((seq_len, seq_len), dtype=bool), k=1)'''

_DEC_HEAD = '''
        def decoder_forward(token_ids, params, num_heads):
            p = params
            ids = np.asarray(token_ids)
            pe = sinusoidal_positional_encoding(len(ids), p["W_emb"].shape[1])'''


def _attn(*args):
    return f'multi_head_causal_attention({args[0]}, p["W_q"], p["W_k"], p["W_v"], p["W_o"], num_heads)'


CASES = [
    # --- softmax
    wrong("softmax_without_max_subtraction", "softmax", "exp(x) / sum: overflows to nan", '''
        def softmax(x, axis=-1):
            e = np.exp(x)
            return e / e.sum(axis=axis, keepdims=True)
        '''),
    wrong("softmax_ignores_axis", "softmax", "always normalises over the last axis", '''
        def softmax(x, axis=-1):
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        '''),
    correct("softmax_via_logsumexp", "softmax", "exp(x - logsumexp(x)), logsumexp computed stably",
            '''
        def softmax(x, axis=-1):
            m = np.max(x, axis=axis, keepdims=True)
            logsumexp = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
            return np.exp(x - logsumexp)
        '''),
    wrong("softmax_eps_in_denominator", "softmax",
          "published 'safe' softmax: + 1e-8 in the denominator, rows no longer sum to 1", '''
        def softmax(x, axis=-1):
            e = np.exp(x - np.max(x, axis=axis, keepdims=True))
            return e / (np.sum(e, axis=axis, keepdims=True) + 1e-8)
        '''),
    wrong("softmax_default_axis_none", "softmax",
          "axis=None by default: softmax(x) normalises over the whole array", '''
        def softmax(x, axis=None):
            e = np.exp(x - np.max(x, axis=axis, keepdims=True))
            return e / np.sum(e, axis=axis, keepdims=True)
        '''),
    wrong("softmax_global_max", "softmax",
          "subtracts the maximum of the whole array: rows far below it underflow to 0 / 0", '''
        def softmax(x, axis=-1):
            e = np.exp(x - np.max(x))
            return e / np.sum(e, axis=axis, keepdims=True)
        '''),
    correct("softmax_moveaxis", "softmax", "moves the axis last, normalises rows, moves it back",
            '''
        def softmax(x, axis=-1):
            z = np.moveaxis(np.asarray(x, dtype=float), axis, -1)
            z = z - z.max(axis=-1)[..., None]
            e = np.exp(z)
            return np.moveaxis(e / e.sum(axis=-1)[..., None], -1, axis)
        '''),
    # --- layer_norm
    wrong("layer_norm_std_plus_eps", "layer_norm", "published bug: divides by std + eps", '''
        def layer_norm(x, gamma, beta, eps=1e-5):
            mean = x.mean(axis=-1, keepdims=True)
            std = x.std(axis=-1, keepdims=True)
            return (x - mean) / (std + eps) * gamma + beta
        '''),
    wrong("layer_norm_unbiased_variance", "layer_norm", "variance with ddof=1 (divides by d - 1)",
          '''
        def layer_norm(x, gamma, beta, eps=1e-5):
            mean = x.mean(axis=-1, keepdims=True)
            var = x.var(axis=-1, ddof=1, keepdims=True)
            return (x - mean) / np.sqrt(var + eps) * gamma + beta
        '''),
    wrong("layer_norm_ignores_eps_argument", "layer_norm", "eps hard-coded to 1e-5", '''
        def layer_norm(x, gamma, beta, eps=1e-5):
            mean = x.mean(axis=-1, keepdims=True)
            var = x.var(axis=-1, keepdims=True)
            return (x - mean) / np.sqrt(var + 1e-5) * gamma + beta
        '''),
    correct("layer_norm_with_np_var", "layer_norm", "np.var and a reciprocal square root", '''
        def layer_norm(x, gamma, beta, eps=1e-5):
            centered = x - np.mean(x, axis=-1, keepdims=True)
            inv_std = 1.0 / np.sqrt(np.var(x, axis=-1, keepdims=True) + eps)
            return gamma * (centered * inv_std) + beta
        '''),
    wrong("layer_norm_default_eps_1e-6", "layer_norm",
          "default eps=1e-6 (another library's value); the contract says 1e-5", '''
        def layer_norm(x, gamma, beta, eps=1e-6):
            mean = x.mean(axis=-1, keepdims=True)
            var = x.var(axis=-1, keepdims=True)
            return (x - mean) / np.sqrt(var + eps) * gamma + beta
        '''),
    # --- gelu
    wrong("gelu_exact_erf", "gelu", "exact GELU with math.erf where the tanh form is specified", '''
        import math

        def gelu(x):
            erf = np.vectorize(math.erf)
            return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
        '''),
    wrong("gelu_missing_cubic_term", "gelu", "tanh(sqrt(2/pi) x) without 0.044715 x**3", '''
        def gelu(x):
            return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * x))
        '''),
    correct("gelu_sigmoid_identity", "gelu", "x * sigmoid(2 * inner), equal to the tanh form", '''
        def gelu(x):
            inner = np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)
            with np.errstate(over="ignore"):
                return x / (1.0 + np.exp(-2.0 * inner))
        '''),
    # --- multi_head_causal_attention
    wrong("attention_without_causal_mask", ATTN, "every token sees the whole sequence", _ATTN_HEAD + '''
            scores = queries @ keys.transpose(0, 2, 1) / np.sqrt(head_dim)
            weights = softmax(scores, axis=-1)
            context = (weights @ values).transpose(1, 0, 2).reshape(seq_len, d_model)
            return context @ W_o
        '''),
    wrong("attention_without_scale", ATTN, "scores not divided by sqrt(head_dim)", _ATTN_HEAD + '''
            scores = queries @ keys.transpose(0, 2, 1)
            weights = softmax(np.where(future, -np.inf, scores), axis=-1)
            context = (weights @ values).transpose(1, 0, 2).reshape(seq_len, d_model)
            return context @ W_o
        '''),
    wrong("attention_scale_by_d_model", ATTN, "scores divided by sqrt(d_model)", _ATTN_HEAD + '''
            scores = queries @ keys.transpose(0, 2, 1) / np.sqrt(d_model)
            weights = softmax(np.where(future, -np.inf, scores), axis=-1)
            context = (weights @ values).transpose(1, 0, 2).reshape(seq_len, d_model)
            return context @ W_o
        '''),
    wrong("attention_reshape_without_transpose", ATTN,
          "heads split by reshaping (n, d) to (h, n, hd): mixes positions and heads", '''
        def multi_head_causal_attention(x, W_q, W_k, W_v, W_o, num_heads):
            seq_len, d_model = x.shape
            head_dim = d_model // num_heads
            queries = (x @ W_q).reshape(num_heads, seq_len, head_dim)
            keys = (x @ W_k).reshape(num_heads, seq_len, head_dim)
            values = (x @ W_v).reshape(num_heads, seq_len, head_dim)
            future = np.triu(np.ones((seq_len, seq_len), dtype=bool), k=1)
            scores = queries @ keys.transpose(0, 2, 1) / np.sqrt(head_dim)
            weights = softmax(np.where(future, -np.inf, scores), axis=-1)
            context = (weights @ values).reshape(seq_len, d_model)
            return context @ W_o
        '''),
    wrong("attention_without_out_proj", ATTN, "published bug: the final projection W_o is missing",
          _ATTN_HEAD + '''
            scores = queries @ keys.transpose(0, 2, 1) / np.sqrt(head_dim)
            weights = softmax(np.where(future, -np.inf, scores), axis=-1)
            return (weights @ values).transpose(1, 0, 2).reshape(seq_len, d_model)
        '''),
    correct("attention_einsum_and_large_negative", ATTN,
            "einsum for every product, masked scores filled with -1e9", '''
        def multi_head_causal_attention(x, W_q, W_k, W_v, W_o, num_heads):
            n, d = x.shape
            hd = d // num_heads
            q = np.einsum("nd,de->ne", x, W_q).reshape(n, num_heads, hd)
            k = np.einsum("nd,de->ne", x, W_k).reshape(n, num_heads, hd)
            v = np.einsum("nd,de->ne", x, W_v).reshape(n, num_heads, hd)
            scores = np.einsum("qhe,khe->hqk", q, k) / np.sqrt(hd)
            scores = np.where(np.tril(np.ones((n, n))) == 1, scores, -1e9)
            weights = softmax(scores)
            context = np.einsum("hqk,khe->qhe", weights, v).reshape(n, d)
            return np.einsum("nd,de->ne", context, W_o)
        '''),
    wrong("attention_inline_naive_softmax", ATTN,
          "its own exp(scores) / sum without the max: overflows for scores around 1e4",
          _ATTN_HEAD + '''
            scores = queries @ keys.transpose(0, 2, 1) / np.sqrt(head_dim)
            e = np.exp(np.where(future, -np.inf, scores))
            weights = e / e.sum(axis=-1, keepdims=True)
            context = (weights @ values).transpose(1, 0, 2).reshape(seq_len, d_model)
            return context @ W_o
        '''),
    wrong("attention_keys_from_W_q", ATTN, "copy-paste: keys computed with W_q, W_k ignored", '''
        def multi_head_causal_attention(x, W_q, W_k, W_v, W_o, num_heads):
            seq_len, d_model = x.shape
            head_dim = d_model // num_heads
            queries = (x @ W_q).reshape(seq_len, num_heads, head_dim).transpose(1, 0, 2)
            keys = (x @ W_q).reshape(seq_len, num_heads, head_dim).transpose(1, 0, 2)
            values = (x @ W_v).reshape(seq_len, num_heads, head_dim).transpose(1, 0, 2)
            future = np.triu(np.ones((seq_len, seq_len), dtype=bool), k=1)
            scores = queries @ keys.transpose(0, 2, 1) / np.sqrt(head_dim)
            weights = softmax(np.where(future, -np.inf, scores), axis=-1)
            context = (weights @ values).transpose(1, 0, 2).reshape(seq_len, d_model)
            return context @ W_o
        '''),
    wrong("attention_mask_hides_diagonal", ATTN,
          "np.triu(..., k=0): a token may not attend to itself (the first row is all -inf)",
          _ATTN_HEAD.replace("k=1)", "k=0)") + '''
            scores = queries @ keys.transpose(0, 2, 1) / np.sqrt(head_dim)
            weights = softmax(np.where(future, -np.inf, scores), axis=-1)
            context = (weights @ values).transpose(1, 0, 2).reshape(seq_len, d_model)
            return context @ W_o
        '''),
    correct("attention_loop_over_heads_finfo_min", ATTN,
            "one head at a time, masked with np.finfo(x.dtype).min, q scaled first", '''
        def multi_head_causal_attention(x, W_q, W_k, W_v, W_o, num_heads):
            n, d = x.shape
            hd = d // num_heads
            Q, K, V = x @ W_q / np.sqrt(hd), x @ W_k, x @ W_v
            allowed = np.tril(np.ones((n, n), dtype=bool))
            heads = []
            for i in range(num_heads):
                cols = slice(i * hd, (i + 1) * hd)
                scores = np.where(allowed, Q[:, cols] @ K[:, cols].T, np.finfo(x.dtype).min)
                heads.append(softmax(scores) @ V[:, cols])
            return np.concatenate(heads, axis=1) @ W_o
        '''),
    # --- decoder_forward
    wrong("decoder_without_attention_residual", DEC, "h = attention(ln1(h)): the residual is lost",
          _DEC_HEAD + f'''
            h = p["W_emb"][ids] + pe
            h = {_attn('layer_norm(h, p["ln1_gamma"], p["ln1_beta"])')}
            m = layer_norm(h, p["ln2_gamma"], p["ln2_beta"])
            h = h + gelu(m @ p["W_1"] + p["b_1"]) @ p["W_2"] + p["b_2"]
            return h @ p["W_emb"].T
        '''),
    wrong("decoder_post_ln", DEC, "post-LN: LayerNorm after each residual addition", _DEC_HEAD + f'''
            h = p["W_emb"][ids] + pe
            h = layer_norm(h + {_attn('h')}, p["ln1_gamma"], p["ln1_beta"])
            mlp = gelu(h @ p["W_1"] + p["b_1"]) @ p["W_2"] + p["b_2"]
            h = layer_norm(h + mlp, p["ln2_gamma"], p["ln2_beta"])
            return h @ p["W_emb"].T
        '''),
    wrong("decoder_without_positional_encoding", DEC, "token embeddings only, no positions",
          _DEC_HEAD + f'''
            h = p["W_emb"][ids]
            h = h + {_attn('layer_norm(h, p["ln1_gamma"], p["ln1_beta"])')}
            m = layer_norm(h, p["ln2_gamma"], p["ln2_beta"])
            h = h + gelu(m @ p["W_1"] + p["b_1"]) @ p["W_2"] + p["b_2"]
            return h @ p["W_emb"].T
        '''),
    wrong("decoder_mlp_reads_unnormalised_stream", DEC, "the MLP gets h instead of ln2(h)",
          _DEC_HEAD + f'''
            h = p["W_emb"][ids] + pe
            h = h + {_attn('layer_norm(h, p["ln1_gamma"], p["ln1_beta"])')}
            h = h + gelu(h @ p["W_1"] + p["b_1"]) @ p["W_2"] + p["b_2"]
            return h @ p["W_emb"].T
        '''),
    wrong("decoder_passes_W_q_as_W_k", DEC, "copy-paste: params['W_q'] passed where W_k belongs",
          _DEC_HEAD + '''
            h = p["W_emb"][ids] + pe
            a = layer_norm(h, p["ln1_gamma"], p["ln1_beta"])
            h = h + multi_head_causal_attention(a, p["W_q"], p["W_q"], p["W_v"], p["W_o"], num_heads)
            m = layer_norm(h, p["ln2_gamma"], p["ln2_beta"])
            h = h + gelu(m @ p["W_1"] + p["b_1"]) @ p["W_2"] + p["b_2"]
            return h @ p["W_emb"].T
        '''),
    correct("decoder_with_take_and_list_ids", DEC, "np.take for the lookup, a list of branches",
            '''
        def decoder_forward(token_ids, params, num_heads):
            W_emb = params["W_emb"]
            ids = list(token_ids)
            h = np.take(W_emb, ids, axis=0) + sinusoidal_positional_encoding(len(ids), W_emb.shape[1])

            def attention_branch(h):
                a = layer_norm(h, params["ln1_gamma"], params["ln1_beta"])
                return multi_head_causal_attention(a, *(params[k] for k in ("W_q", "W_k", "W_v", "W_o")),
                                                   num_heads)

            def mlp_branch(h):
                m = layer_norm(h, params["ln2_gamma"], params["ln2_beta"])
                return gelu(m @ params["W_1"] + params["b_1"]) @ params["W_2"] + params["b_2"]

            for branch in (attention_branch, mlp_branch):
                h = h + branch(h)
            return np.einsum("nd,vd->nv", h, W_emb)
        '''),
    # --- generate
    wrong("generate_never_feeds_back", GEN, "every new token is predicted from the prompt alone", '''
        def generate(token_ids, params, num_heads, max_new_tokens):
            prompt = list(token_ids)
            out = list(prompt)
            for _ in range(max_new_tokens):
                logits = decoder_forward(np.array(prompt), params, num_heads)
                out.append(int(np.argmax(logits[-1])))
            return out
        '''),
    wrong("generate_returns_only_new_tokens", GEN, "returns the continuation without the prompt",
          '''
        def generate(token_ids, params, num_heads, max_new_tokens):
            ids = list(token_ids)
            new = []
            for _ in range(max_new_tokens):
                logits = decoder_forward(np.array(ids), params, num_heads)
                ids.append(int(np.argmax(logits[-1])))
                new.append(ids[-1])
            return new
        '''),
    wrong("generate_argmax_of_first_position", GEN, "reads logits[0] instead of logits[-1]", '''
        def generate(token_ids, params, num_heads, max_new_tokens):
            ids = list(token_ids)
            for _ in range(max_new_tokens):
                logits = decoder_forward(np.array(ids), params, num_heads)
                ids.append(int(np.argmax(logits[0])))
            return ids
        '''),
    wrong("generate_argmax_without_axis", GEN, "np.argmax(logits) over the flattened logits", '''
        def generate(token_ids, params, num_heads, max_new_tokens):
            ids = list(token_ids)
            for _ in range(max_new_tokens):
                logits = decoder_forward(np.array(ids), params, num_heads)
                ids.append(int(np.argmax(logits)))
            return ids
        '''),
    correct("generate_numpy_integers", GEN, "appends np.int64 ids from np.argmax", '''
        def generate(token_ids, params, num_heads, max_new_tokens):
            ids = list(token_ids)
            while len(ids) < len(token_ids) + max_new_tokens:
                ids.append(np.argmax(decoder_forward(ids, params, num_heads)[-1]))
            return ids
        '''),
    wrong("generate_feeds_only_last_token", GEN, "decoder_forward sees only the last id", '''
        def generate(token_ids, params, num_heads, max_new_tokens):
            ids = list(token_ids)
            for _ in range(max_new_tokens):
                logits = decoder_forward(np.array(ids[-1:]), params, num_heads)
                ids.append(int(np.argmax(logits[-1])))
            return ids
        '''),
    wrong("generate_returns_array", GEN, "returns a NumPy array where the contract says a list",
          '''
        def generate(token_ids, params, num_heads, max_new_tokens):
            ids = np.asarray(token_ids)
            for _ in range(max_new_tokens):
                logits = decoder_forward(ids, params, num_heads)
                ids = np.append(ids, np.argmax(logits[-1]))
            return ids
        '''),
    correct("generate_array_then_tolist", GEN, "grows a NumPy array, returns ids.tolist()", '''
        def generate(token_ids, params, num_heads, max_new_tokens):
            ids = np.array(token_ids, dtype=np.int64)
            for _ in range(max_new_tokens):
                next_id = decoder_forward(ids, params, num_heads)[-1].argmax()
                ids = np.concatenate([ids, [next_id]])
            return ids.tolist()
        '''),
]
