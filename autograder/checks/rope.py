"""Hidden checks for 06-rope (split-halves, "rotate half" convention)."""

from __future__ import annotations

import numpy as np
import torch

from autograder import data
from autograder.checks import Check, Student, Verdict

ASSIGNMENT = "06-rope"

PRE = "precompute_rope_params"
ROPE = "compute_rope"
MHA = "RoPEMultiHeadAttention"
LAYERS = ("W_query", "W_key", "W_value", "out_proj")


def _randn(seed: int, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(dtype)


def _angles(kind, rows: int, head_dim: int) -> np.ndarray:
    """Input angles ``(rows, head_dim // 2)``: the RoPE ladder for a base, or random ones."""
    if isinstance(kind, str):  # "random:<seed>"
        seed = int(kind.split(":")[1])
        return np.random.default_rng(seed).uniform(-np.pi, np.pi, (rows, head_dim // 2))
    omega = float(kind) ** (-np.arange(0, head_dim, 2) / head_dim)
    return np.arange(rows, dtype=np.float64)[:, None] * omega[None, :]


def _tables(kind, rows: int, head_dim: int, dtype=torch.float32):
    """The cos/sin tables handed to compute_rope (built here, not by the student)."""
    full = np.concatenate([_angles(kind, rows, head_dim)] * 2, axis=-1)[:, :head_dim]
    return torch.tensor(np.cos(full), dtype=dtype), torch.tensor(np.sin(full), dtype=dtype)


# --- precompute_rope_params -----------------------------------------------------------------

BIG_ROWS = [0, 1, 2, 3, 100, 1000, 2048, 4094, 4095]


def _observe_tables(student: Student, args: tuple, kwargs: dict, rows=None):
    """The returned pair, or its shapes and a few rows when the table is large."""
    def run():
        result = student.get(PRE)(*args, **kwargs)
        if rows is None or not isinstance(result, (tuple, list)) or len(result) != 2:
            return result
        out = []
        for table in result:
            shape = tuple(getattr(table, "shape", ()))
            if len(shape) == 2 and shape[0] > max(rows):
                out.append({"shape": list(shape), "rows": table[rows]})
            else:
                out.append({"shape": list(shape), "rows": table})
        return tuple(out)
    return Student.attempt(run)


def _table_bugs(head_dim: int, theta_base: float, context_length: int, rows):
    from autograder.reference.rope import tables

    positions = np.arange(context_length) if rows is None else np.asarray(rows)
    cos, sin = tables(positions, head_dim, theta_base)
    half = _angles(theta_base, context_length, head_dim)[positions]
    no_two = positions[:, None] * theta_base ** (-np.arange(head_dim // 2) / head_dim)
    inter = torch.tensor(half).repeat_interleave(2, dim=-1).numpy()
    bugs = {
        "positions starting at 1 (p runs from 0 to context_length - 1)":
            tables(positions + 1, head_dim, theta_base),
        "frequencies theta_base ** (-i / head_dim) (the exponent needs 2i / head_dim)":
            (np.cos(np.concatenate([no_two] * 2, -1)), np.sin(np.concatenate([no_two] * 2, -1))),
        "angles repeated pairwise [a0, a0, a1, a1, ...] (the interleaved layout; split halves "
        "need [angles, angles])": (np.cos(inter), np.sin(inter)),
        "cos and sin swapped": (sin, cos),
        "theta_base ignored (always 10000)": tables(positions, head_dim, 10000.0),
    }
    return (cos, sin), bugs


def _judge_tables(verdict: Verdict, seen, head_dim, theta_base, context_length, rows, what,
                  atol):
    found = verdict.value(seen, what)
    if found is None:
        return
    if not isinstance(found, (tuple, list)) or len(found) != 2:
        verdict.fail(f"{what} returned {found!r}; expected a pair (cos, sin)")
        return
    (cos, sin), bugs = _table_bugs(head_dim, theta_base, context_length, rows)
    for index, (name, expected) in enumerate((("cos", cos), ("sin", sin))):
        item = found[index]
        shape = tuple(item["shape"])
        if shape != (context_length, head_dim):
            hint = " (the angles must be duplicated as [angles, angles])" \
                if shape == (context_length, head_dim // 2) else ""
            verdict.fail(f"{what}: {name} has shape {shape}; expected "
                         f"({context_length}, {head_dim}){hint}")
            return
        variants = {label: pair[index] for label, pair in bugs.items()}
        observed_rows = seen["items"][index]["items"]["rows"]  # still plain observed data
        where = "" if rows is None else f" at rows {list(rows)}"
        if not verdict.array(observed_rows, expected, f"{what}: {name}{where}", atol=atol,
                             rtol=0, dtype="float32", library="torch", variants=variants):
            return


PRE_CASES = [  # (args, kwargs, head_dim, theta_base, context_length, rows, atol)
    ((8,), {"context_length": 16}, 8, 10000.0, 16, None, 2e-5),
    ((2,), {"context_length": 5}, 2, 10000.0, 5, None, 2e-5),
    ((16, 100.0, 32), {}, 16, 100.0, 32, None, 2e-5),
    ((6,), {"theta_base": 500000.0, "context_length": 12}, 6, 500000.0, 12, None, 2e-5),
    ((4,), {"context_length": 1}, 4, 10000.0, 1, None, 2e-5),
    ((64,), {}, 64, 10000.0, 4096, BIG_ROWS, 1e-3),
    ((128,), {"theta_base": 500000.0, "context_length": 4096}, 128, 500000.0, 4096, BIG_ROWS,
     1e-3),
]


def _pre_what(args, kwargs) -> str:
    text = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    return f"{PRE}({text})"


precompute_basics = Check("precompute_basics", exercise=PRE)


@precompute_basics.observe
def _(student: Student) -> dict:
    return {"tables": _observe_tables(student, (4,), {"context_length": 3}, rows=[0, 1, 2])}


@precompute_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    _judge_tables(verdict, seen["tables"], 4, 10000.0, 3, None, _pre_what((4,), {
        "context_length": 3}), 2e-6)


precompute_values = Check("precompute_values", exercise=PRE)


@precompute_values.observe
def _(student: Student) -> dict:
    return {_pre_what(a, k): _observe_tables(student, a, k, rows=rows or list(range(c)))
            for a, k, _, _, c, rows, _ in PRE_CASES}


@precompute_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    for args, kwargs, head_dim, base, context_length, rows, atol in PRE_CASES:
        _judge_tables(verdict, seen[_pre_what(args, kwargs)], head_dim, base, context_length,
                      rows, _pre_what(args, kwargs), atol)


precompute_errors = Check("precompute_errors", exercise=PRE)
PRE_ERRORS = [((7,), {}), ((5,), {"context_length": 8}), ((1,), {"context_length": 4})]


@precompute_errors.observe
def _(student: Student) -> dict:
    return {_pre_what(a, k): _observe_tables(student, a, k, rows=[0]) for a, k in PRE_ERRORS}


@precompute_errors.judge
def _(seen: dict, verdict: Verdict) -> None:
    for args, kwargs in PRE_ERRORS:
        verdict.raises(seen[_pre_what(args, kwargs)], _pre_what(args, kwargs), "ValueError",
                       mentions="head_dim")


# --- compute_rope -----------------------------------------------------------------------------

ROPE_CASES = [  # (name, seed, x shape, table rows, angles)
    ("2 heads, 5 tokens, head_dim 8, a table of 16 rows", 11, (2, 2, 5, 8), 16, 10000.0),
    ("batch of one, 3 heads, 4 tokens, head_dim 6, a table of exactly 4 rows", 12,
     (1, 3, 4, 6), 4, 10000.0),
    ("one token", 13, (2, 2, 1, 8), 16, 10000.0),
    ("head_dim 2", 14, (1, 2, 7, 2), 8, 10000.0),
    ("more heads than tokens", 15, (2, 6, 3, 8), 16, 10000.0),
    ("theta_base 100, head_dim 16", 16, (2, 4, 6, 16), 6, 100.0),
    ("random angles", 17, (1, 2, 5, 8), 5, "random:3"),
]
LONG = ("4096 tokens, head_dim 4 (rows 0, 1, 2047, 4095 compared)", 18, (1, 1, 4096, 4), 4096,
        10000.0)
LONG_ROWS = [0, 1, 2047, 4095]


def _rope_what(name, shape, rows) -> str:
    return f"{ROPE}(x, cos, sin) with x of shape {shape} ({name}), cos/sin of {rows} rows"


def _judge_rope(verdict: Verdict, seen, seed, shape, rows, kind, what, *, dtype=torch.float32,
                atol=1e-5, rtol=1e-5, keep=None) -> bool:
    from autograder.reference.rope import rope_bugs, rotate

    x = _randn(seed, shape, dtype).to(torch.float64).numpy()
    theta = _angles(kind, rows, shape[-1])[: shape[-2]]
    expected, bugs = rotate(x, theta), rope_bugs(x, theta)
    if keep is not None:
        expected = expected[..., keep, :]
        bugs = {k: v[..., keep, :] for k, v in bugs.items()}
    return verdict.array(seen, expected, what, atol=atol, rtol=rtol,
                         dtype=str(dtype).replace("torch.", ""), library="torch",
                         variants=bugs,
                         hint="out = x * cos + cat(-x2, x1) * sin, with cos/sin sliced to the "
                              "first seq_len rows (x is (batch, num_heads, seq_len, head_dim))")


rope_basics = Check("rope_basics", exercise=ROPE)


@rope_basics.observe
def _(student: Student) -> dict:
    cos, sin = _tables(10000.0, 8, 4)
    return {"out": student.call(ROPE, _randn(10, (1, 1, 3, 4)), cos, sin)}


@rope_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    _judge_rope(verdict, seen["out"], 10, (1, 1, 3, 4), 8, 10000.0,
                _rope_what("toy", (1, 1, 3, 4), 8))


rope_values = Check("rope_values", exercise=ROPE)


@rope_values.observe
def _(student: Student) -> dict:
    seen = {}
    for name, seed, shape, rows, kind in ROPE_CASES:
        seen[name] = student.call(ROPE, _randn(seed, shape), *_tables(kind, rows, shape[-1]))
    name, seed, shape, rows, kind = LONG
    x, (cos, sin) = _randn(seed, shape), _tables(kind, rows, shape[-1])
    seen[name] = Student.attempt(lambda: student.get(ROPE)(x, cos, sin)[..., LONG_ROWS, :])
    return seen


@rope_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    for name, seed, shape, rows, kind in ROPE_CASES:
        _judge_rope(verdict, seen[name], seed, shape, rows, kind, _rope_what(name, shape, rows))
    name, seed, shape, rows, kind = LONG
    _judge_rope(verdict, seen[name], seed, shape, rows, kind, _rope_what(name, shape, rows),
                atol=1e-4, keep=LONG_ROWS)


PROPERTY_POSITIONS = [0, 3, 7, 10, 1000, 1003, 4090, 4093]

rope_properties = Check("rope_properties", exercise=ROPE)


@rope_properties.observe
def _(student: Student) -> dict:
    cos, sin = _tables(10000.0, 4096, 16)
    q, k = _randn(20, (16,)), _randn(21, (16,))
    same_q = q.expand(1, 1, 4096, 16).contiguous()
    same_k = k.expand(1, 1, 4096, 16).contiguous()
    return {
        "q": Student.attempt(lambda: student.get(ROPE)(same_q, cos, sin)[0, 0, PROPERTY_POSITIONS]),
        "k": Student.attempt(lambda: student.get(ROPE)(same_k, cos, sin)[0, 0, PROPERTY_POSITIONS]),
        "random": student.call(ROPE, _randn(22, (2, 3, 64, 16)), *_tables(10000.0, 64, 16)),
    }


@rope_properties.judge
def _(seen: dict, verdict: Verdict) -> None:
    q = verdict.value(seen["q"], f"{ROPE} on a query repeated at 4096 positions")
    k = verdict.value(seen["k"], f"{ROPE} on a key repeated at 4096 positions")
    if q is not None and k is not None:
        if getattr(q, "shape", None) != (8, 16) or getattr(k, "shape", None) != (8, 16):
            verdict.fail(f"{ROPE} on x of shape (1, 1, 4096, 16) should keep that shape")
        else:
            scores = {(m, n): float(q.values[i] @ k.values[j])
                      for i, m in enumerate(PROPERTY_POSITIONS)
                      for j, n in enumerate(PROPERTY_POSITIONS)}
            for offset in (0, 3, -3):
                pairs = [(m, m + offset) for m in PROPERTY_POSITIONS
                         if (m, m + offset) in scores]
                values = [scores[p] for p in pairs]
                if max(values) - min(values) > 2e-3:
                    low, high = pairs[int(np.argmin(values))], pairs[int(np.argmax(values))]
                    verdict.fail(
                        f"relative position: rope(q)_m . rope(k)_n should depend only on m - n, "
                        f"but for m - n = {-offset} the score is {min(values):.5g} at (m, n) = "
                        f"{low} and {max(values):.5g} at {high}. Likely cause: each pair (i, "
                        "i + head_dim/2) must be rotated by one angle p * omega_i (split halves, "
                        "cos then sin)")
                    break
    x = _randn(22, (2, 3, 64, 16)).to(torch.float64).numpy()
    out = verdict.value(seen["random"], f"{ROPE} on x of shape (2, 3, 64, 16)")
    if out is not None and hasattr(out, "values") and out.shape == x.shape:
        before, after = np.linalg.norm(x, axis=-1), np.linalg.norm(out.values, axis=-1)
        worst = np.unravel_index(int(np.argmax(np.abs(after - before))), before.shape)
        if abs(after[worst] - before[worst]) > 1e-4:
            verdict.fail(f"norm preservation: a rotation keeps every head vector's length, but "
                         f"at (batch, head, position) = {tuple(int(i) for i in worst)} the length "
                         f"went from {before[worst]:.5g} to {after[worst]:.5g}. Likely cause: "
                         "cos and sin swapped, or rotate_half mixes dimensions of different pairs")
    elif out is not None:
        verdict.fail(f"{ROPE} on x of shape (2, 3, 64, 16) returned {out!r}; expected the shape "
                     "of x")


DTYPE_CASES = [  # (name, seed, dtype, atol, rtol)
    ("bfloat16", 30, torch.bfloat16, 5e-2, 2e-2),
    ("float16", 31, torch.float16, 5e-3, 5e-3),
]

rope_dtypes = Check("rope_dtypes", exercise=ROPE)


@rope_dtypes.observe
def _(student: Student) -> dict:
    return {name: student.call(ROPE, _randn(seed, (2, 2, 12, 8), dtype), *_tables(10000.0, 16, 8))
            for name, seed, dtype, _, _ in DTYPE_CASES}


@rope_dtypes.judge
def _(seen: dict, verdict: Verdict) -> None:
    for name, seed, dtype, atol, rtol in DTYPE_CASES:
        found = data.decode(seen[name])
        if isinstance(found, data.Array) and found.dtype != name:
            verdict.fail(f"{ROPE} on a {name} x returned {found.dtype}; expected {name} (float32 "
                         f"cos/sin promote the result: cast it back with .to(x.dtype))")
            continue
        _judge_rope(verdict, seen[name], seed, (2, 2, 12, 8), 16, 10000.0,
                    _rope_what(name, (2, 2, 12, 8), 16), dtype=dtype, atol=atol, rtol=rtol)


ROPE_ERRORS = [  # (why, x shape, table rows, table head_dim)
    ("head_dim is odd", (1, 1, 3, 5), 8, 5),
    ("seq_len 9 exceeds the 8 rows of cos", (1, 1, 9, 4), 8, 4),
    ("seq_len 5 exceeds the single row of cos", (1, 2, 5, 4), 1, 4),
    ("x has head_dim 4 but cos/sin have 6 columns", (1, 1, 3, 4), 8, 6),
    ("x has head_dim 8 but cos/sin have 4 columns", (1, 1, 3, 8), 8, 4),
]

rope_errors = Check("rope_errors", exercise=ROPE)


@rope_errors.observe
def _(student: Student) -> dict:
    return {why: student.call(ROPE, _randn(40, shape), *_tables(10000.0, rows, dim))
            for why, shape, rows, dim in ROPE_ERRORS}


@rope_errors.judge
def _(seen: dict, verdict: Verdict) -> None:
    for why, shape, rows, dim in ROPE_ERRORS:
        verdict.raises(seen[why], f"{ROPE}(x, cos, sin) when {why} (x {shape}, cos/sin "
                       f"({rows}, {dim}))", "ValueError")


# --- RoPEMultiHeadAttention -------------------------------------------------------------------

MHA_CASES = [  # (name, seed, (d_in, d_out, context_length, dropout, num_heads), kwargs, x shape)
    ("3 heads of 4, 7 of 10 tokens", 50, (6, 12, 10, 0.0, 3), {}, (2, 7, 6)),
    ("head_dim 2, qkv_bias, batch of one, all 6 tokens", 51, (8, 8, 6, 0.0, 4),
     {"qkv_bias": True}, (1, 6, 8)),
    ("theta_base 100", 55, (6, 8, 8, 0.0, 2), {"theta_base": 100.0}, (2, 8, 6)),
    ("one head, one token", 52, (5, 8, 12, 0.0, 1), {}, (3, 1, 5)),
    ("2 heads of 8, 48 tokens", 53, (16, 16, 64, 0.0, 2), {}, (1, 48, 16)),
]
DROPOUT_CASE = ("train mode, dropout 0.5", 54, (6, 8, 8, 0.5, 2), {}, (2, 5, 6))


def _mha_what(name, args, kwargs) -> str:
    text = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    return f"{MHA}({text}) [{name}]"


def _weights(model) -> dict:
    return {f"{layer}.{p}": getattr(getattr(model, layer), p)
            for layer in LAYERS for p in ("weight", "bias")}


def _observe_module(student: Student, case, *, train_seed=None, extra=None) -> dict:
    name, seed, args, kwargs, shape = case
    holder = {}

    def make():
        torch.manual_seed(seed)
        holder["model"] = student.get(MHA)(*args, **kwargs)
        return None

    seen = {"init": Student.attempt(make)}
    if "model" not in holder:
        return seen
    model = holder["model"]
    seen["weights"] = Student.attempt(lambda: _weights(model))
    x = _randn(seed + 100, shape)

    def forward():
        if train_seed is None:
            model.eval()
        else:
            model.train()
            torch.manual_seed(train_seed)
        return model(x)

    seen["out"] = Student.attempt(forward)
    if extra:
        seen.update(extra(model))
    return seen


def _judge_module(verdict: Verdict, seen: dict, case, *, train_seed=None) -> None:
    from autograder.reference.rope import attention

    name, seed, args, kwargs, shape = case
    what = _mha_what(name, args, kwargs)
    if verdict.value(seen["init"], what) is None and "weights" not in seen:
        return
    weights = verdict.value(seen["weights"], f"{what}: the W_query, W_key, W_value and "
                                             "out_proj layers")
    if weights is None:
        return
    weights = {k: None if v is None else v.values for k, v in weights.items()}
    x = _randn(seed + 100, shape).to(torch.float64).numpy()
    num_heads, dropout = args[4], args[3]
    base = kwargs.get("theta_base", 10000.0)
    common = {"dropout": dropout if train_seed is not None else 0.0, "seed": train_seed}
    expected = attention(x, weights, num_heads, base, **common)
    variants = {
        "RoPE applied to the values too (rotate queries and keys only)":
            attention(x, weights, num_heads, base, rope_v=True, **common),
        "RoPE applied to the queries only, not the keys":
            attention(x, weights, num_heads, base, rope_k=False, **common),
        "RoPE applied to the keys only, not the queries":
            attention(x, weights, num_heads, base, rope_q=False, **common),
        "no RoPE at all (also what rotating queries and keys in the (b, num_tokens, "
        "num_heads, head_dim) layout gives: every token of a head gets the same angle, which "
        "cancels in the scores)": attention(x, weights, num_heads, base, rope_q=False, rope_k=False,
                                    **common),
        "attention without the causal mask":
            attention(x, weights, num_heads, base, causal=False, **common),
    }
    if base != 10000.0:
        variants["theta_base ignored (10000 used)"] = attention(x, weights, num_heads, **common)
    verdict.array(seen["out"], expected, f"{what}: output for x of shape {shape}", atol=2e-5,
                  rtol=1e-4, dtype="float32", library="torch", variants=variants,
                  hint="split the heads to (b, num_heads, num_tokens, head_dim) first, then "
                       "rotate queries and keys with tables of head_dim columns, sliced to "
                       "num_tokens rows")


rope_mha_basics = Check("rope_mha_basics", exercise=MHA)


@rope_mha_basics.observe
def _(student: Student) -> dict:
    def buffers(model) -> dict:  # what the visible tests assert about buffers
        return {"buffers": Student.attempt(lambda: sorted(k for k, _ in model.named_buffers()))}

    return _observe_module(student, MHA_CASES[0], extra=buffers)


@rope_mha_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    _judge_module(verdict, seen, MHA_CASES[0])
    if "buffers" in seen:
        names = verdict.value(seen["buffers"], "the buffers of RoPEMultiHeadAttention")
        if names is not None and ("mask" not in names or len(names) < 2):
            verdict.fail(f"RoPEMultiHeadAttention has buffers {names}; expected the mask and the "
                         "cos/sin tables registered with self.register_buffer")


rope_mha_values = Check("rope_mha_values", exercise=MHA)


@rope_mha_values.observe
def _(student: Student) -> dict:
    seen = {case[0]: _observe_module(student, case) for case in MHA_CASES[1:]}
    seen[DROPOUT_CASE[0]] = _observe_module(student, DROPOUT_CASE, train_seed=7)
    return seen


@rope_mha_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    for case in MHA_CASES[1:]:
        _judge_module(verdict, seen[case[0]], case)
    _judge_module(verdict, seen[DROPOUT_CASE[0]], DROPOUT_CASE, train_seed=7)


CONTRACT = ("contract", 60, (6, 12, 9, 0.25, 3), {"qkv_bias": True}, (1, 4, 6))


def _facts(model) -> dict:
    facts = {}
    for attr in ("d_out", "num_heads", "head_dim"):
        facts[attr] = Student.attempt(lambda attr=attr: getattr(model, attr))
    for layer in LAYERS:
        facts[layer] = Student.attempt(lambda layer=layer: [
            type(getattr(model, layer)).__name__, getattr(model, layer).in_features,
            getattr(model, layer).out_features, getattr(model, layer).bias is not None])
    facts["dropout"] = Student.attempt(lambda: [type(model.dropout).__name__,
                                                float(model.dropout.p)])
    facts["buffers"] = Student.attempt(lambda: sorted(n for n, _ in model.named_buffers()))
    facts["buffer shapes"] = Student.attempt(lambda: {n: list(b.shape)
                                                      for n, b in model.named_buffers()})
    facts["parameters"] = Student.attempt(lambda: sorted(n for n, _ in model.named_parameters()))
    return facts


rope_mha_contract = Check("rope_mha_contract", exercise=MHA)


@rope_mha_contract.observe
def _(student: Student) -> dict:
    seen = _observe_module(student, CONTRACT, extra=lambda m: {"facts": _facts(m)})
    seen["indivisible"] = Student.attempt(lambda: student.get(MHA)(6, 10, 8, 0.0, 3))
    return seen


@rope_mha_contract.judge
def _(seen: dict, verdict: Verdict) -> None:
    what = _mha_what(*CONTRACT[:1], CONTRACT[2], CONTRACT[3])
    verdict.raises(seen["indivisible"], f"{MHA}(6, 10, 8, 0.0, 3) (d_out not divisible by "
                   "num_heads)", "ValueError")
    if "facts" not in seen:
        verdict.value(seen["init"], what)
        return
    facts = seen["facts"]
    for attr, expected in (("d_out", 12), ("num_heads", 3), ("head_dim", 4)):
        verdict.equal(facts[attr], expected, f"{what}.{attr}")
    for layer, shape in (("W_query", [6, 12, True]), ("W_key", [6, 12, True]),
                         ("W_value", [6, 12, True]), ("out_proj", [12, 12, True])):
        verdict.equal(facts[layer], ["Linear"] + shape,
                      f"{what}.{layer} as [type, in_features, out_features, has bias]",
                      hint="W_query, W_key, W_value are nn.Linear(d_in, d_out, bias=qkv_bias); "
                           "out_proj is nn.Linear(d_out, d_out)")
    verdict.equal(facts["dropout"], ["Dropout", 0.25], f"{what}.dropout as [type, p]")
    buffers = verdict.value(facts["buffers"], f"{what}: buffer names")
    shapes = verdict.value(facts["buffer shapes"], f"{what}: buffer shapes")
    if buffers is not None and shapes is not None:
        if "mask" not in buffers:
            verdict.fail(f"{what} has buffers {buffers}; expected a causal mask registered "
                         "with register_buffer under the name 'mask'")
        elif shapes["mask"] != [9, 9]:
            verdict.fail(f"{what}: buffer mask has shape {tuple(shapes['mask'])}; expected "
                         "(context_length, context_length) = (9, 9)")
        if not [b for b in buffers if b != "mask"]:
            verdict.fail(f"{what} registers no buffer for the RoPE tables: store cos and sin "
                         "with self.register_buffer so they move with .to(device)")
    parameters = verdict.value(facts["parameters"], f"{what}: parameter names")
    expected = sorted(f"{layer}.{p}" for layer in LAYERS for p in ("weight", "bias"))
    if parameters is not None and parameters != expected:
        verdict.fail(f"{what} has parameters {parameters}; expected exactly {expected} (the "
                     "RoPE tables are fixed buffers, not nn.Parameter)")
    _judge_module(verdict, seen, CONTRACT)


rope_mha_causal = Check("rope_mha_causal", exercise=MHA)
CAUSAL = ("causal", 70, (8, 8, 10, 0.0, 2), {}, (2, 10, 8))


@rope_mha_causal.observe
def _(student: Student) -> dict:
    name, seed, args, kwargs, shape = CAUSAL

    def outputs():
        torch.manual_seed(seed)
        model = student.get(MHA)(*args, **kwargs).eval()
        x = _randn(seed + 100, shape)
        changed = x.clone()
        changed[:, 6:] = _randn(seed + 200, (2, 4, 8))
        return [model(x), model(changed)]

    def too_long():
        torch.manual_seed(seed)
        model = student.get(MHA)(*args, **kwargs).eval()
        return model(_randn(seed + 300, (1, 11, 8)))

    return {"outputs": Student.attempt(outputs), "too long": Student.attempt(too_long)}


@rope_mha_causal.judge
def _(seen: dict, verdict: Verdict) -> None:
    what = _mha_what(*CAUSAL[:1], CAUSAL[2], CAUSAL[3])
    verdict.raises(seen["too long"], f"{what} on 11 tokens (context_length is 10)", "ValueError")
    outputs = verdict.value(seen["outputs"], f"{what} on 10 tokens")
    if outputs is None:
        return
    first, second = outputs
    if not hasattr(first, "values") or first.shape != (2, 10, 8) or second.shape != (2, 10, 8):
        verdict.fail(f"{what} should return (2, 10, 8) for x of shape (2, 10, 8); found {first!r}")
        return
    diff = float(np.max(np.abs(first.values[:, :6] - second.values[:, :6])))
    if diff > 1e-6:
        verdict.fail(f"{what}: changing tokens 6..9 changed the outputs at positions 0..5 by up "
                     f"to {diff:.3g}; a causal model's output at t must not depend on later "
                     "tokens (is the mask applied to the scores?)")
