"""Bug catalog for 01-positional-encoding."""

from testkit.catalog import correct, wrong

ASSIGNMENT = "01-positional-encoding"

PE = "sinusoidal_positional_encoding"
ADD = "add_positional_encoding"
REL = "relative_position_matrix"

_CHECKS = '''
            if seq_len <= 0:
                raise ValueError(f"seq_len must be positive, got {seq_len}")
            if d_model <= 0 or d_model % 2:
                raise ValueError(f"d_model must be a positive even number, got {d_model}")'''

CASES = [
    wrong("cos_uses_pos_minus_1", PE, "published bug: the cosine is taken at pos - 1", f'''
        def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):{_CHECKS}
            pe = np.zeros((seq_len, d_model))
            for pos in range(seq_len):
                for i in range(0, d_model, 2):
                    pe[pos, i] = np.sin(pos / base ** (i / d_model))
                    pe[pos, i + 1] = np.cos((pos - 1) / base ** (i / d_model))
            return pe
        '''),
    wrong("sin_cos_swapped", PE, "cosine on even dimensions, sine on odd ones", f'''
        def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):{_CHECKS}
            angles = np.arange(seq_len)[:, None] / base ** (np.arange(0, d_model, 2) / d_model)
            pe = np.zeros((seq_len, d_model))
            pe[:, 0::2] = np.cos(angles)
            pe[:, 1::2] = np.sin(angles)
            return pe
        '''),
    wrong("exponent_missing_factor_2", PE, "frequencies base**(i/d) with i the pair index", f'''
        def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):{_CHECKS}
            angles = np.arange(seq_len)[:, None] / base ** (np.arange(d_model // 2) / d_model)
            pe = np.zeros((seq_len, d_model))
            pe[:, 0::2] = np.sin(angles)
            pe[:, 1::2] = np.cos(angles)
            return pe
        '''),
    wrong("halves_not_interleaved", PE, "all sines, then all cosines (concatenated)", f'''
        def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):{_CHECKS}
            angles = np.arange(seq_len)[:, None] / base ** (np.arange(0, d_model, 2) / d_model)
            return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
        '''),
    wrong("positions_from_one", PE, "positions 1..seq_len instead of 0..seq_len-1", f'''
        def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):{_CHECKS}
            angles = np.arange(1, seq_len + 1)[:, None] / base ** (np.arange(0, d_model, 2) / d_model)
            pe = np.zeros((seq_len, d_model))
            pe[:, 0::2] = np.sin(angles)
            pe[:, 1::2] = np.cos(angles)
            return pe
        '''),
    wrong("no_argument_checks", PE, "odd or non-positive sizes are not rejected", '''
        def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
            angles = np.arange(seq_len)[:, None] / base ** (np.arange(0, d_model, 2) / d_model)
            pe = np.zeros((seq_len, d_model))
            pe[:, 0::2] = np.sin(angles)
            pe[:, 1::2] = np.cos(angles[:, : d_model // 2])
            return pe
        '''),
    wrong("float32_table", PE, "returns float32 where float64 is specified", f'''
        def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):{_CHECKS}
            angles = np.arange(seq_len)[:, None] / base ** (np.arange(0, d_model, 2) / d_model)
            pe = np.zeros((seq_len, d_model), dtype=np.float32)
            pe[:, 0::2] = np.sin(angles)
            pe[:, 1::2] = np.cos(angles)
            return pe
        '''),
    wrong("adds_in_place", ADD, "published bug: x += pe modifies the caller's array", '''
        def add_positional_encoding(x, base=10000.0):
            x += sinusoidal_positional_encoding(x.shape[-2], x.shape[-1], base).astype(x.dtype)
            return x
        '''),
    wrong("ignores_base", ADD, "the base argument is not passed on", '''
        def add_positional_encoding(x, base=10000.0):
            pe = sinusoidal_positional_encoding(x.shape[-2], x.shape[-1])
            return x + pe.astype(x.dtype)
        '''),
    wrong("promotes_dtype", ADD, "float32 input gives a float64 result", '''
        def add_positional_encoding(x, base=10000.0):
            return x + sinusoidal_positional_encoding(x.shape[-2], x.shape[-1], base)
        '''),
    wrong("no_batch_support", ADD, "unpacks x.shape as (seq_len, d_model): fails on batches", '''
        def add_positional_encoding(x, base=10000.0):
            seq_len, d_model = x.shape
            return x + sinusoidal_positional_encoding(seq_len, d_model, base).astype(x.dtype)
        '''),
    wrong("rotation_transposed", REL, "sine signs flipped: shifts by -offset", '''
        def relative_position_matrix(offset, d_model, base=10000.0):
            M = np.zeros((d_model, d_model))
            for i in range(d_model // 2):
                angle = offset * base ** (-2 * i / d_model)
                c, s = np.cos(angle), np.sin(angle)
                M[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[c, -s], [s, c]]
            return M
        '''),
    wrong("rotation_ignores_base", REL, "frequencies always use 10000", '''
        def relative_position_matrix(offset, d_model, base=10000.0):
            M = np.zeros((d_model, d_model))
            for i in range(d_model // 2):
                angle = offset * 10000.0 ** (-2 * i / d_model)
                c, s = np.cos(angle), np.sin(angle)
                M[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[c, s], [-s, c]]
            return M
        '''),
    correct("encoding_with_loops", PE, "explicit loops over positions and pairs", f'''
        def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):{_CHECKS}
            pe = np.zeros((seq_len, d_model))
            for p in range(seq_len):
                for i in range(d_model // 2):
                    pe[p, 2 * i] = np.sin(p / base ** (2 * i / d_model))
                    pe[p, 2 * i + 1] = np.cos(p / base ** (2 * i / d_model))
            return pe
        '''),
    correct("encoding_exp_log_stack", PE, "exp(-2i log(base)/d) frequencies, stack + reshape",
            f'''
        def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):{_CHECKS}
            div_term = np.exp(np.arange(0, d_model, 2) * (-np.log(base) / d_model))
            angles = np.arange(seq_len)[:, None] * div_term
            return np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(seq_len, d_model)
        '''),
    correct("add_in_float64_then_cast", ADD, "adds in float64, casts the sum to x.dtype", '''
        def add_positional_encoding(x, base=10000.0):
            pe = sinusoidal_positional_encoding(x.shape[-2], x.shape[-1], base)
            return (x.astype(np.float64) + pe).astype(x.dtype)
        '''),
    correct("add_with_copy", ADD, "copies x, then adds in place into the copy", '''
        def add_positional_encoding(x, base=10000.0):
            out = np.array(x, copy=True)
            out += sinusoidal_positional_encoding(x.shape[-2], x.shape[-1], base).astype(x.dtype)
            return out
        '''),
    correct("rotation_vectorised", REL, "all blocks at once with fancy indexing", '''
        def relative_position_matrix(offset, d_model, base=10000.0):
            angles = offset * base ** (-np.arange(0, d_model, 2) / d_model)
            even = np.arange(0, d_model, 2)
            M = np.zeros((d_model, d_model))
            M[even, even] = M[even + 1, even + 1] = np.cos(angles)
            M[even, even + 1] = np.sin(angles)
            M[even + 1, even] = -np.sin(angles)
            return M
        '''),
]
