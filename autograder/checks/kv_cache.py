"""Hidden checks for 08-kv-cache (the KV cache and grouped-query attention).

Every size, input, split into chunks and weight is a pure function of ``(case, seed)``:
observe makes the calls with the student's code, judge rebuilds the same inputs and compares
the answers with ``autograder.reference.kv_cache`` (head selection by index, masks from
positions, RoPE by complex multiplication in float64, ``F.scaled_dot_product_attention(...,
enable_gqa=True)`` on the whole sequence). ``GroupedQueryAttention`` is built with the
grader's weights loaded by the contract's attribute paths and fed through ``GraderCache``, the
grader's own cache (the contract's ``update``/``seq_len`` only), so the module is judged apart
from the learner's ``KVCache``; the visible configuration of ``gqa_basics`` runs the learner's
module with the learner's cache, as the visible cell does. ``KVCache`` is judged through its
contract alone: the grader's tensors in, everything cached so far out, ``seq_len``.

Points and claims (spec section 6): every point rests on answers compared with the reference
on the grader's inputs, with tolerances fixed here or computed from the reference (each chunk
against the reference's whole-sequence output, ``rtol = atol = 1e-5`` in float32). The
chunked-versus-whole property only names a bug in a message (a chunk that differs from the
reference while the learner's own whole-sequence output is right). The cache's contents after
a forward are answers too: the grader's cache holds what the module appended, compared with
the reference's rotated keys and plain values. Claims, read with unbound ``nn.Module``
methods and judged beside passing outputs of the same case: the attributes, the parameter
names, the RoPE buffers and the meta-device forward (``gqa_contract``).
"""

from __future__ import annotations

import numpy as np
import torch

from autograder.checks import Check, Student, Verdict
from autograder.checks._common import _peek, integer, linear, randn, size, uniform

ASSIGNMENT = "08-kv-cache"

REPEAT = "repeat_kv"
MASK = "cached_causal_mask"
CACHE = "KVCache"
GQA = "GroupedQueryAttention"
LAYERS = ("W_query", "W_key", "W_value", "out_proj")
DEFAULT_BASE = 10000.0
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def _label(exercise: str):
    return lambda case: f"{exercise} [{case[0]}]"


def _base(seed: int, stream: int = 7) -> float:
    """A theta_base drawn log-uniformly between about 30 and 10**6."""
    return round(10 ** uniform(seed, 1.5, 6.0, stream), 1)


# --- repeat_kv --------------------------------------------------------------------------------

REPEAT_HINT = ("output head h is key/value head h // n_rep: each head repeated n_rep times in a "
               "row along dim 1 (torch.repeat_interleave(x, n_rep, dim=1))")


def _repeat_inputs(case: tuple, seed: int) -> tuple[torch.Tensor, int]:
    """``x`` and ``n_rep``: the visible example, or (b, kv, n, hd, n_rep, dtype) specs."""
    if case[1] == "visible":
        return torch.arange(12.0).view(1, 2, 3, 2), 3
    b, kv, n, hd, n_rep, dtype = case[1]
    shape = tuple(size(seed, spec, i) for i, spec in enumerate((b, kv, n, hd)))
    return randn(seed, shape, stream=1).to(DTYPES[dtype]), size(seed, n_rep, 4)


def _repeat_what(x: torch.Tensor, n_rep: int) -> str:
    return f"{REPEAT}(x, {n_rep}) for x of shape {tuple(x.shape)}, {str(x.dtype)[6:]}"


def _observe_repeat(student: Student, case: tuple, seed: int) -> dict:
    x, n_rep = _repeat_inputs(case, seed)
    seen = {"out": student.call(REPEAT, x, n_rep)}
    if case[1] == "visible":
        seen["n_rep 1"] = student.call(REPEAT, x, 1)
        seen["n_rep 0"] = student.call(REPEAT, x, 0)
    return seen


def _judge_repeat(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference.kv_cache import repeat_kv, repeat_kv_tiled

    x, n_rep = _repeat_inputs(case, seed)
    x64 = x.double().numpy()
    dtype = str(x.dtype)[6:]
    verdict.array("out", repeat_kv(x64, n_rep), _repeat_what(x, n_rep), atol=0, rtol=0,
                  dtype=dtype, library="torch", hint=REPEAT_HINT,
                  variants=lambda: {"repeat (tiling: output head h is head h % num_kv_heads), "
                                    "not repeat_interleave": repeat_kv_tiled(x64, n_rep)})
    if case[1] == "visible":
        verdict.array("n_rep 1", x64, _repeat_what(x, 1), atol=0, rtol=0, dtype=dtype,
                      library="torch", hint="with n_rep = 1 the result is x")
        verdict.raises("n_rep 0", f"{REPEAT}(x, 0) (n_rep < 1)", "ValueError", mentions="n_rep")


repeat_kv_basics = Check(
    "repeat_kv_basics", exercise=REPEAT, label=_label(REPEAT),
    cases=[("the visible example", "visible"),
           ("seeded", ((1, 3), (2, 3), (1, 5), (1, 4), (2, 4), "float32"))])
repeat_kv_basics.observe(_observe_repeat)
repeat_kv_basics.judge(_judge_repeat)

repeat_kv_values = Check(
    "repeat_kv_values", exercise=REPEAT, label=_label(REPEAT),
    cases=[("n_rep = 1", ((1, 3), (1, 4), (1, 6), (1, 6), 1, "float32")),
           ("one key/value head (multi-query)", ((1, 3), 1, (1, 6), (1, 6), (2, 8), "float32")),
           ("several key/value heads", ((1, 2), (3, 5), (2, 7), (2, 8), (2, 5), "float32")),
           ("float64", ((1, 2), (2, 4), (1, 5), (1, 6), (2, 4), "float64")),
           ("one position, a large n_rep", (1, (2, 3), 1, (1, 4), (6, 12), "float32"))])
repeat_kv_values.observe(_observe_repeat)
repeat_kv_values.judge(_judge_repeat)

VALID_REPEAT = ("a valid call", ((1, 2), (2, 3), (1, 4), (1, 4), (2, 3), "float32"))


def _bad_n_rep(case: tuple, seed: int) -> int:
    return case[1] if isinstance(case[1], int) else -integer(seed, 1, 5, 9)


repeat_kv_errors = Check(
    "repeat_kv_errors", exercise=REPEAT, label=_label(REPEAT),
    cases=[("n_rep 0", 0), ("n_rep -1", -1), ("a negative n_rep drawn from the seed", "seeded")])


@repeat_kv_errors.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    x, _ = _repeat_inputs(VALID_REPEAT, seed)
    return {"error": student.call(REPEAT, x, _bad_n_rep(case, seed)),
            "valid": _observe_repeat(student, VALID_REPEAT, seed)["out"]}


@repeat_kv_errors.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference.kv_cache import repeat_kv

    x, n_rep = _repeat_inputs(VALID_REPEAT, seed)
    bad = _bad_n_rep(case, seed)
    verdict.raises("error", f"{REPEAT}(x, {bad}) (n_rep < 1)", "ValueError", mentions="n_rep")
    verdict.array("valid", repeat_kv(x.double().numpy(), n_rep), _repeat_what(x, n_rep),
                  atol=0, rtol=0, dtype="float32", library="torch", hint=REPEAT_HINT)


# --- cached_causal_mask -------------------------------------------------------------------------

MASK_HINT = ("True where hidden: the query at absolute position num_cached + i sees keys "
             "0 .. num_cached + i, so key j is hidden when j > num_cached + i "
             "(torch.triu(ones, diagonal=num_cached + 1))")


def _mask_call(case: tuple, seed: int) -> tuple[tuple, dict]:
    """(args, kwargs) of a case: (name, num_new spec, num_cached spec or None (omitted),
    how: "positional" / "keyword")."""
    _, new, cached, how = case
    num_new = size(seed, new, 0)
    if cached is None:
        return (num_new,), {}
    num_cached = size(seed, cached, 1)
    return ((num_new, num_cached), {}) if how == "positional" else \
        ((num_new,), {"num_cached": num_cached})


def _mask_what(args: tuple, kwargs: dict) -> str:
    text = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    return f"{MASK}({text})"


def _observe_mask(student: Student, case: tuple, seed: int) -> dict:
    args, kwargs = _mask_call(case, seed)
    seen = {"mask": student.call(MASK, *args, **kwargs)}
    if case[0] == "the visible example":
        seen["square"] = student.call(MASK, 4)
    return seen


def _judge_one_mask(verdict: Verdict, field: str, args: tuple, kwargs: dict) -> None:
    from autograder.reference.kv_cache import hidden

    num_new = args[0]
    num_cached = args[1] if len(args) > 1 else kwargs.get("num_cached", 0)
    expected = hidden(num_new, num_cached)
    top_left = np.triu(np.ones((num_new, num_cached + num_new), dtype=bool), 1)
    what = _mask_what(args, kwargs)
    if not verdict.array(field, expected, what, dtype="bool", library="torch", hint=MASK_HINT,
                         variants=lambda: {
                             "a mask that ignores the cache (query i sees keys 0..i: the "
                             "diagonal must move right by num_cached)": top_left,
                             "the visible keys marked True (True means hidden)": ~expected}):
        return
    found = verdict.value(field, what)
    if found.device != "cpu":
        verdict.fail(f"{what} is on {found.device}; expected a CPU tensor (the module moves it "
                     "to x.device)")


def _judge_mask(verdict: Verdict, case: tuple, seed: int) -> None:
    args, kwargs = _mask_call(case, seed)
    _judge_one_mask(verdict, "mask", args, kwargs)
    if case[0] == "the visible example":
        _judge_one_mask(verdict, "square", (4,), {})


cached_mask_basics = Check(
    "cached_mask_basics", exercise=MASK, label=_label(MASK),
    cases=[("the visible example", 2, 3, "positional"),
           ("seeded", (1, 6), (1, 8), "positional")])
cached_mask_basics.observe(_observe_mask)
cached_mask_basics.judge(_judge_mask)

cached_mask_values = Check(
    "cached_mask_values", exercise=MASK, label=_label(MASK),
    cases=[("num_cached omitted (the default)", (1, 9), None, "positional"),
           ("num_cached = 0 by keyword", (1, 7), 0, "keyword"),
           ("num_cached by keyword", (2, 6), (1, 9), "keyword"),
           ("one new token after a long cache", 1, (20, 60), "positional"),
           ("a chunk after a cache", (3, 12), (3, 12), "positional"),
           ("one token, nothing cached", 1, None, "positional")])
cached_mask_values.observe(_observe_mask)
cached_mask_values.judge(_judge_mask)

VALID_MASK = ("a valid call", (1, 5), (0, 6), "positional")


def _bad_mask_call(case: tuple, seed: int) -> tuple[tuple, str]:
    _, num_new, num_cached = case
    if num_new == "seeded":
        num_new = -integer(seed, 0, 4, 5)
    if num_cached == "seeded":
        num_cached = -integer(seed, 1, 6, 6)
    return ((num_new,) if num_cached is None else (num_new, num_cached)), \
        ("num_new < 1" if num_new < 1 else "num_cached < 0")


cached_mask_errors = Check(
    "cached_mask_errors", exercise=MASK, label=_label(MASK),
    cases=[("num_new 0", 0, None), ("num_new -1 after a cache", -1, 3),
           ("num_cached -1", 3, -1), ("num_new 0 and num_cached 0", 0, 0),
           ("a negative num_cached drawn from the seed", 2, "seeded"),
           ("num_new drawn from the seed, below 1", "seeded", 2)])


@cached_mask_errors.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    args, _ = _bad_mask_call(case, seed)
    return {"error": student.call(MASK, *args), "valid": _observe_mask(student, VALID_MASK, seed)["mask"]}


@cached_mask_errors.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    args, why = _bad_mask_call(case, seed)
    verdict.raises("error", f"{_mask_what(args, {})} ({why})", "ValueError")
    _judge_one_mask(verdict, "valid", *_mask_call(VALID_MASK, seed))


# --- KVCache ------------------------------------------------------------------------------------

def _updates(case: tuple, seed: int) -> tuple[tuple[int, int, int], list[int], str]:
    """((b, kv, hd), the n_new of each update, dtype): fixed sizes, or drawn from the seed."""
    _, b, kv, hd, steps, dtype = case
    shape = (size(seed, b, 0), size(seed, kv, 1), size(seed, hd, 2))
    if steps == "seeded":
        steps = [integer(seed, 1, 5, 10 + i) for i in range(integer(seed, 2, 6, 3))]
    elif steps == "ones":
        steps = [1] * integer(seed, 4, 9, 3)
    return shape, list(steps), dtype


def _entries(seed: int, shape: tuple[int, int, int], n_new: int, index: int, dtype: str,
             stream: int = 0):
    """The keys and values of update ``index``, ``(b, kv, n_new, hd)`` each."""
    b, kv, hd = shape
    keys = randn(seed, (b, kv, n_new, hd), stream=100 + 2 * index + stream).to(DTYPES[dtype])
    values = randn(seed, (b, kv, n_new, hd), stream=101 + 2 * index + stream).to(DTYPES[dtype])
    return keys, values


def _observe_updates(student: Student, cache, seed: int, shape, steps, dtype, prefix: str = "",
                     stream: int = 0) -> dict:
    """Each update's answer (everything cached so far) and seq_len after it."""
    seen = {}
    for index, n_new in enumerate(steps):
        keys, values = _entries(seed, shape, n_new, index, dtype, stream)
        holder = {}

        def update(keys=keys, values=values, holder=holder):
            holder["pair"] = cache.update(keys, values)
            if not isinstance(holder["pair"], (tuple, list)) or len(holder["pair"]) != 2:
                raise TypeError(f"update returned {type(holder['pair']).__name__}; expected a "
                                "pair (keys_all, values_all)")
            return holder["pair"][0]

        seen[f"{prefix}keys {index}"] = Student.attempt(update)
        seen[f"{prefix}values {index}"] = Student.attempt(lambda h=holder: h["pair"][1])
        seen[f"{prefix}seq_len {index}"] = Student.attempt(lambda: cache.seq_len)
    return seen


def _judge_updates(verdict: Verdict, seed: int, shape, steps, dtype, prefix: str = "",
                   stream: int = 0, what: str = "") -> None:
    keys_all, values_all = [], []
    total = 0
    for index, n_new in enumerate(steps):
        keys, values = _entries(seed, shape, n_new, index, dtype, stream)
        keys_all.append(keys.double().numpy())
        values_all.append(values.double().numpy())
        total += n_new
        sizes = "+".join(str(n) for n in steps[:index + 1])
        step = f"{what}{CACHE} after updates of {sizes} positions ({str(keys.dtype)[6:]})"
        expected_shape = (shape[0], shape[1], total, shape[2])
        hint = "append along dim 2 (the positions), the old entries first, and return everything cached"
        for name, parts in (("keys", keys_all), ("values", values_all)):
            if not verdict.array(f"{prefix}{name} {index}", np.concatenate(parts, axis=2),
                                 f"{step}: the {name} returned, expected shape {expected_shape}",
                                 atol=0, rtol=0, dtype=str(keys.dtype)[6:], library="torch",
                                 hint=hint):
                return
        if not verdict.equal(f"{prefix}seq_len {index}", total, f"{step}: seq_len",
                             hint="seq_len is the number of cached positions, an int"):
            return


def _new_cache(student: Student, seed: int, shape: tuple[int, int, int], dtype: str):
    """A new learner's cache, made after another one was updated: a cache whose entries live
    on the class (shared between instances) starts full, in a fresh process as in a kernel
    that ran the whole notebook."""
    other = student.get(CACHE)()
    try:
        other.update(*_entries(seed, shape, 1, 9, dtype))
    except Exception:  # the cache under test records the failure
        pass
    return student.get(CACHE)()


def _observe_cache(student: Student, case: tuple, seed: int) -> dict:
    shape, steps, dtype = _updates(case, seed)
    cache = _new_cache(student, seed, shape, dtype)
    seen = {"seq_len empty": Student.attempt(lambda: cache.seq_len)}
    seen.update(_observe_updates(student, cache, seed, shape, steps, dtype))
    if case[0] == VISIBLE_CACHE:  # what the visible cell also asserts
        seen["second empty"] = Student.attempt(lambda: student.get(CACHE)().seq_len)
        for why, (keys, values) in _visible_bad(seed).items():
            seen[why] = Student.attempt(lambda k=keys, v=values: cache.update(k, v))
        seen["seq_len after"] = Student.attempt(lambda: cache.seq_len)

        def many():
            other = student.get(CACHE)()
            keys, values = _entries(seed, shape, 1, 1, dtype)
            for _ in range(20):
                other.update(keys, values)
            return [other.seq_len, list(other.update(keys, values)[0].shape)]

        seen["many"] = Student.attempt(many)
    return seen


VISIBLE_CACHE = "updates of 3 then 1 positions"


def _visible_bad(seed: int) -> dict:
    """The visible cell's wrong updates after (2, 2, 3 + 1, 4) float32 entries."""
    keys, values = _entries(seed, (2, 2, 4), 1, 7, "float32")
    return {"a head_dim of 6": (randn(seed, (2, 2, 1, 6), 70), randn(seed, (2, 2, 1, 6), 71)),
            "float64 entries": (keys.double(), values.double()),
            "values of another shape than the keys": (keys, values[..., :2])}


def _judge_cache(verdict: Verdict, case: tuple, seed: int) -> None:
    shape, steps, dtype = _updates(case, seed)
    verdict.equal("seq_len empty", 0, f"{CACHE}().seq_len of a new cache")
    _judge_updates(verdict, seed, shape, steps, dtype)
    if case[0] == VISIBLE_CACHE:
        verdict.equal("second empty", 0, f"a second {CACHE}().seq_len after the first was updated",
                      hint="keep the entries on the instance (self.keys), not on the class")
        for why in _visible_bad(seed):
            verdict.raises(why, f"{CACHE}.update with {why} after (2, 2, 4, 4) float32 entries",
                           "ValueError")
        verdict.equal("seq_len after", 4, f"{CACHE}.seq_len after the failed updates",
                      hint="a failed update leaves the cache unchanged: check before appending")
        verdict.equal("many", [20, [2, 2, 21, 4]], f"a {CACHE} after 20 one-position updates: "
                      "[seq_len, the shape of the keys returned by the 21st]",
                      hint="the cache grows without a fixed capacity")


kv_cache_basics = Check(
    "kv_cache_basics", exercise=CACHE, label=_label(CACHE),
    cases=[("updates of 3 then 1 positions", 2, 2, 4, [3, 1], "float32"),
           ("seeded", (1, 3), (1, 3), (1, 6), "seeded", "float32")])
kv_cache_basics.observe(_observe_cache)
kv_cache_basics.judge(_judge_cache)

CACHE_VALUES = [
    ("uneven updates drawn from the seed", (1, 3), (1, 4), (2, 8), "seeded", "float32"),
    ("one position at a time", (1, 2), (1, 3), (1, 6), "ones", "float32"),
    ("a prompt, then one position at a time", 1, (1, 4), (2, 6), [7, 1, 1, 1], "float32"),
    ("more than 16 positions", (1, 2), (1, 2), (1, 4), [9, 8, 1, 4], "float32"),
    ("float64", (1, 2), (1, 3), (1, 6), "seeded", "float64"),
    ("bfloat16", (1, 2), (1, 3), (1, 6), [2, 1, 3], "bfloat16"),
    ("two caches side by side", (1, 2), (1, 3), (1, 6), "seeded", "float32"),
]

kv_cache_values = Check("kv_cache_values", exercise=CACHE, label=_label(CACHE), cases=CACHE_VALUES)


def _other(case: tuple) -> tuple:
    """The second cache of "two caches side by side": other sizes, other steps."""
    return (case[0], (2, 3), (2, 4), (3, 7), [1, 2, 1, 3], "float32")


@kv_cache_values.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    if case[0] != "two caches side by side":
        return _observe_cache(student, case, seed)
    seen = {}
    shape, steps, dtype = _updates(case, seed)
    first, second = _new_cache(student, seed, shape, dtype), student.get(CACHE)()
    other_shape, other_steps, other_dtype = _updates(_other(case), seed)
    # interleaved: each update of the first cache is followed by one of the second
    for index in range(max(len(steps), len(other_steps))):
        for cache, prefix, sizes, spec, base in ((first, "first ", steps, (shape, dtype), 0),
                                                 (second, "second ", other_steps,
                                                  (other_shape, other_dtype), 1000)):
            if index < len(sizes):
                found = _observe_updates(student, cache, seed, spec[0], [sizes[index]], spec[1],
                                         prefix, base + index)
                seen.update({key[:-1] + str(index): value for key, value in found.items()})
    return seen


@kv_cache_values.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    if case[0] != "two caches side by side":
        _judge_cache(verdict, case, seed)
        return
    for prefix, spec, base in (("first ", case, 0), ("second ", _other(case), 1000)):
        shape, steps, dtype = _updates(spec, seed)
        _judge_split(verdict, seed, shape, steps, dtype, prefix, base)


def _judge_split(verdict: Verdict, seed: int, shape, steps, dtype, prefix: str,
                 base: int) -> None:
    """The interleaved caches: update i drew its entries from stream base + i."""
    keys_all, values_all, total = [], [], 0
    for index, n_new in enumerate(steps):
        keys, values = _entries(seed, shape, n_new, 0, dtype, base + index)
        keys_all.append(keys.double().numpy())
        values_all.append(values.double().numpy())
        total += n_new
        what = (f"the {prefix.strip()} of two {CACHE}s updated in turn, after {index + 1} "
                f"updates ({total} positions)")
        hint = ("each cache keeps its own entries: no state shared between instances (a class "
                "attribute, or a mutable default argument)")
        for name, parts in (("keys", keys_all), ("values", values_all)):
            if not verdict.array(f"{prefix}{name} {index}", np.concatenate(parts, axis=2),
                                 f"{what}: the {name} returned", atol=0, rtol=0,
                                 dtype="float32", library="torch", hint=hint):
                return
        if not verdict.equal(f"{prefix}seq_len {index}", total, f"{what}: seq_len", hint=hint):
            return


CACHE_ERRORS = [
    ("3-D keys", "keys 3-D"), ("3-D values", "values 3-D"),
    ("keys and values of different shapes", "mismatch"),
    ("a head_dim that differs from the cache's", "head_dim"),
    ("num_kv_heads that differs from the cache's", "heads"),
    ("a batch that differs from the cache's", "batch"),
    ("a dtype that differs from the cache's", "dtype"),
]


def _error_sizes(seed: int) -> tuple[tuple[int, int, int], int, int]:
    shape = (integer(seed, 1, 2, 20), integer(seed, 1, 3, 21), 2 * integer(seed, 1, 3, 22))
    return shape, integer(seed, 1, 4, 23), integer(seed, 1, 3, 24)


def _bad_update(kind: str, seed: int):
    """The keys and values of a wrong update after a valid first one."""
    (b, kv, hd), _, n_new = _error_sizes(seed)
    keys, values = _entries(seed, (b, kv, hd), n_new, 5, "float32")
    other = {"head_dim": (b, kv, n_new, hd + 2), "heads": (b, kv + 1, n_new, hd),
             "batch": (b + 1, kv, n_new, hd)}
    if kind == "keys 3-D":
        return keys[0], values
    if kind == "values 3-D":
        return keys, values[:, 0]
    if kind == "mismatch":
        return keys, randn(seed, (b, kv, n_new + 1, hd), stream=60)
    if kind == "dtype":
        return keys.double(), values.double()
    return randn(seed, other[kind], stream=61), randn(seed, other[kind], stream=62)


kv_cache_errors = Check("kv_cache_errors", exercise=CACHE, label=_label(CACHE),
                        cases=CACHE_ERRORS)


@kv_cache_errors.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    shape, first, third = _error_sizes(seed)
    cache = _new_cache(student, seed, shape, "float32")
    seen = _observe_updates(student, cache, seed, shape, [first], "float32", "first ")
    keys, values = _bad_update(case[1], seed)
    seen["error"] = Student.attempt(lambda: cache.update(keys, values))
    seen["seq_len after"] = Student.attempt(lambda: cache.seq_len)
    # the next valid update: the failed one left nothing behind
    keys, values = _entries(seed, shape, third, 1, "float32")
    holder = {}
    seen["after keys"] = Student.attempt(
        lambda: holder.setdefault("pair", cache.update(keys, values))[0])
    seen["after values"] = Student.attempt(lambda: holder["pair"][1])
    seen["after seq_len"] = Student.attempt(lambda: cache.seq_len)
    return seen


@kv_cache_errors.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    shape, first, third = _error_sizes(seed)
    _judge_updates(verdict, seed, shape, [first], "float32", "first ")
    verdict.raises("error", f"{CACHE}.update with {case[0]} (after {first} cached positions)",
                   "ValueError")
    verdict.equal("seq_len after", first, f"{CACHE}.seq_len after the failed update",
                  hint="a failed update leaves the cache unchanged: check before appending")
    keys_all, values_all = [], []
    for index, n_new in enumerate([first, third]):
        keys, values = _entries(seed, shape, n_new, index, "float32")
        keys_all.append(keys.double().numpy())
        values_all.append(values.double().numpy())
    what = f"{CACHE}.update of {third} positions after the failed update"
    hint = "a failed update leaves the cache unchanged: validate before appending anything"
    verdict.array("after keys", np.concatenate(keys_all, axis=2), f"{what}: the keys returned",
                  atol=0, rtol=0, dtype="float32", library="torch", hint=hint)
    verdict.array("after values", np.concatenate(values_all, axis=2),
                  f"{what}: the values returned", atol=0, rtol=0, dtype="float32",
                  library="torch", hint=hint)
    verdict.equal("after seq_len", first + third, f"{what}: seq_len", hint=hint)


# --- the grader's cache ---------------------------------------------------------------------

class GraderCache:
    """The grader's KV cache: the contract's ``update`` and ``seq_len``, by concatenation.
    It runs with the student's module (observe side); what it holds after a forward is an
    answer, compared with the reference's rotated keys and plain values."""

    def __init__(self):
        self._keys = None
        self._values = None

    @property
    def seq_len(self) -> int:
        return 0 if self._keys is None else int(self._keys.shape[2])

    def update(self, keys, values):
        if not isinstance(keys, torch.Tensor) or not isinstance(values, torch.Tensor) \
                or keys.dim() != 4 or keys.shape != values.shape:
            raise ValueError("update(keys, values) takes two tensors of one shape "
                             "(b, num_kv_heads, n_new, head_dim)")
        if self._keys is not None and (keys.shape[:2] != self._keys.shape[:2]
                                       or keys.shape[3] != self._keys.shape[3]
                                       or keys.dtype != self._keys.dtype):
            raise ValueError(f"keys {tuple(keys.shape)} do not match the cache "
                             f"{tuple(self._keys.shape)} outside dim 2")
        keys, values = keys.detach().clone(), values.detach().clone()
        if self._keys is None:
            self._keys, self._values = keys, values
        else:
            self._keys = torch.cat([self._keys, keys], dim=2)
            self._values = torch.cat([self._values, values], dim=2)
        return self._keys, self._values


# --- GroupedQueryAttention --------------------------------------------------------------------

GQA_NEEDS = (REPEAT, MASK)


def _config(case: tuple, seed: int) -> dict:
    """A module configuration, its input and its split into chunks. ``case``: (name, spec);
    spec values are ints or ranges, or: kv "one" / "all" / "divisor" (a divisor of
    num_heads strictly between 1 and num_heads), bias None (omitted) / True / False, base
    None (omitted) / "seeded", chunks "whole" (no cache) / "steps" / "prompt" / "uneven" or a
    list, dtype "float32" / "float64", scale of x."""
    spec = dict(case[1])
    cfg = {}
    for stream, key in enumerate(("d_in", "half", "n", "extra", "batch")):
        cfg[key] = size(seed, spec[key], 20 + stream)
    kv = spec["kv"]
    if kv == "divisor":
        cfg["heads"], cfg["kv"] = [(4, 2), (6, 2), (6, 3), (8, 2), (8, 4)][integer(seed, 0, 4, 26)]
    else:
        cfg["heads"] = size(seed, spec["heads"], 27)
        cfg["kv"] = 1 if kv == "one" else cfg["heads"] if kv == "all" else size(seed, kv, 28)
    cfg["head_dim"] = 2 * cfg["half"]
    cfg["d_out"] = cfg["heads"] * cfg["head_dim"]
    cfg["ctx"] = cfg["n"] + cfg["extra"]
    cfg["bias"] = spec.get("bias")
    cfg["base"] = None if spec.get("base") is None else _base(seed)
    cfg["scale"] = spec.get("scale", 1.0)
    cfg["dtype"] = spec.get("dtype", "float32")
    cfg["chunks"] = _chunks(spec.get("chunks", "whole"), cfg["n"], seed)
    cfg["cache"] = spec.get("cache", "grader")
    return cfg


def _chunks(spec, n: int, seed: int) -> list[int] | None:
    if spec == "whole":
        return None
    if spec == "steps":
        return [1] * n
    if spec == "prompt":
        prompt = integer(seed, 2, max(2, n - 3), 30)
        return [prompt] + [1] * (n - prompt)
    if spec == "uneven":  # sizes drawn from the seed; at least one chunk of 2+ after the first
        found, left, i = [], n, 0
        while left:
            step = min(left, integer(seed, 1, 4, 31 + i))
            found.append(step)
            left -= step
            i += 1
        if len(found) < 2 or max(found[1:]) < 2:
            found = [1, 2, n - 3] if n > 3 else [1, n - 1]
        return found
    assert sum(spec) == n
    return list(spec)


def _args(cfg: dict) -> tuple[tuple, dict]:
    kwargs = {}
    if cfg["bias"] is not None:
        kwargs["qkv_bias"] = cfg["bias"]
    if cfg["base"] is not None:
        kwargs["theta_base"] = cfg["base"]
    return (cfg["d_in"], cfg["d_out"], cfg["ctx"], cfg["heads"], cfg["kv"]), kwargs


def _weights(cfg: dict, seed: int) -> dict:
    """The grader's weights by the contract's attribute paths (a bias on each of the three
    projections when qkv_bias=True; out_proj always has one)."""
    kv_out = cfg["kv"] * cfg["head_dim"]
    sizes = {"W_query": (cfg["d_in"], cfg["d_out"]), "W_key": (cfg["d_in"], kv_out),
             "W_value": (cfg["d_in"], kv_out), "out_proj": (cfg["d_out"], cfg["d_out"])}
    weights = {}
    for stream, name in enumerate(LAYERS):
        bias = True if name == "out_proj" else bool(cfg["bias"])
        weights.update(linear(seed, name, *sizes[name], bias, stream=stream))
    return weights


def _x(cfg: dict, seed: int, n: int | None = None, stream: int = 10) -> torch.Tensor:
    x = randn(seed, (cfg["batch"], cfg["n"] if n is None else n, cfg["d_in"]), stream=stream,
              scale=cfg["scale"])
    return x.to(DTYPES[cfg["dtype"]])


def _build(student: Student, cfg: dict, seed: int):
    args, kwargs = _args(cfg)
    model = student.build(GQA, args, kwargs, weights=_weights(cfg, seed), seed=seed)
    if cfg["dtype"] == "float64":
        model = model.to(torch.float64)
    return model


def _forward(model, x, cache=None):
    """``model(x)`` or ``model(x, cache)`` without gradients (train and eval agree)."""
    with torch.no_grad():
        return model(x) if cache is None else model(x, cache)


def _what(case: tuple, cfg: dict) -> str:
    args, kwargs = _args(cfg)
    text = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    dtype = ", after .to(torch.float64)" if cfg["dtype"] == "float64" else ""
    return f"{GQA}({text}){dtype} [{case[0]}]"


def _reference(cfg: dict, seed: int, x: torch.Tensor, **options) -> np.ndarray:
    from autograder.reference.kv_cache import attention

    base = DEFAULT_BASE if cfg["base"] is None else cfg["base"]
    return attention(x.double().numpy(), _weights(cfg, seed), cfg["heads"], cfg["kv"], base,
                     **options)


def _tolerance(cfg: dict) -> dict:
    """rtol = atol = 1e-5 in float32 (spec section 4), atol scaled with the inputs; scores of
    about 1e4 in float32 leave output errors up to ~2e-4 x scale."""
    if cfg["scale"] > 1.0:
        return {"atol": 2e-3 * cfg["scale"], "rtol": 1e-3}
    return {"atol": 1e-5, "rtol": 1e-5}


GQA_HINT = ("project, split the heads (num_heads for queries, num_kv_heads for keys and values), "
            "rotate queries and keys at positions past .. past + n_new - 1, repeat each key/value "
            "head for num_heads // num_kv_heads query heads in a row (head h reads h // n_rep), "
            "causal softmax(q k^T / sqrt(head_dim)) v, merge the heads, out_proj")

BUGS = {
    "restart": "RoPE positions restarting at 0 in every chunk: rotate the new tokens with "
               "cos[past:past + n_new], sin[past:past + n_new]",
    "square_mask": "a mask that ignores the cache (query i of a chunk sees keys 0..i, as "
                   "is_causal=True does on a chunk after a cached one): mask with "
                   "cached_causal_mask(n_new, past)",
    "tiled": "key/value heads repeated with repeat (query head h reads head h % "
             "num_kv_heads): use repeat_interleave (head h reads h // n_rep)",
    "rotated_twice": "the cached keys rotated again after the append: keys are rotated once, "
                     "when they enter the cache",
    "no_mask": "attention without the causal mask",
    "no_rope": "no RoPE at all",
}


def _variants(cfg: dict, seed: int, x: torch.Tensor, chunks, span: slice) -> dict:
    found = {}
    for bug, label in BUGS.items():
        if bug == "tiled" and (cfg["kv"] in (1, cfg["heads"])):
            continue
        found[label] = _reference(cfg, seed, x, chunks=chunks, bug=bug)[:, span]
    return found


def _judge_whole(verdict: Verdict, field: str, case: tuple, cfg: dict, seed: int,
                 x: torch.Tensor, what: str = "") -> bool:
    """An output without a cache against the reference."""
    n = x.shape[1]
    return verdict.array(field, _reference(cfg, seed, x),
                         f"{_what(case, cfg)}: output for x of shape {tuple(x.shape)} without a "
                         f"cache{what}", dtype=cfg["dtype"], library="torch",
                         variants=lambda: _variants(cfg, seed, x, None, slice(0, n)),
                         hint=GQA_HINT, **_tolerance(cfg))


def _chunk_hint(verdict: Verdict, cfg: dict, expected: np.ndarray, span: slice, past: int,
                size_: int) -> str:
    """The chunked-versus-whole property, for the message only: the learner's own output on
    the whole sequence (``whole``) is right where this chunk is wrong."""
    whole = _peek(verdict, "whole")
    if whole is None or whole.shape != expected.shape:
        return GQA_HINT
    tolerance = _tolerance(cfg)
    if not np.allclose(whole[:, span], expected[:, span], **tolerance):
        return GQA_HINT
    return (f"chunked generation differs from one call on the whole sequence (your output on "
            f"the whole sequence is right here): the chunk of {size_} tokens after {past} "
            "cached positions must be rotated at positions past .. past + n_new - 1, its "
            "queries masked with cached_causal_mask(n_new, past) against every cached key, "
            "and the keys appended to the cache once rotated")


def _observe_chunks(model, x, chunks, cache, seen: dict) -> None:
    start = 0
    for index, n_new in enumerate(chunks):
        part = x[:, start:start + n_new]
        seen[f"chunk {index}"] = Student.attempt(lambda p=part: _forward(model, p, cache))
        start += n_new


def _judge_chunks(verdict: Verdict, case: tuple, cfg: dict, seed: int, x: torch.Tensor,
                  chunks: list[int], cache_name: str) -> bool:
    expected = _reference(cfg, seed, x)
    start = 0
    for index, n_new in enumerate(chunks):
        span = slice(start, start + n_new)
        what = (f"{_what(case, cfg)} fed {chunks} tokens through {cache_name}: chunk {index} "
                f"(positions {start}..{start + n_new - 1})")
        if not verdict.array(f"chunk {index}", expected[:, span], what, dtype=cfg["dtype"],
                             library="torch",
                             variants=lambda s=span: _variants(cfg, seed, x, chunks, s),
                             hint=_chunk_hint(verdict, cfg, expected, span, start, n_new),
                             **_tolerance(cfg)):
            return False
        start += n_new
    return True


class _Recorder:
    """The learner's cache, recording what the module appends (as the visible cell does)."""

    def __init__(self, inner):
        self.inner, self.appended = inner, []

    @property
    def seq_len(self):
        return self.inner.seq_len

    def update(self, keys, values):
        self.appended.append((keys.clone(), values.clone()))
        return self.inner.update(keys, values)


def _observe_cached(student: Student, case: tuple, seed: int) -> dict:
    cfg = _config(case, seed)
    model = _build(student, cfg, seed)
    x = _x(cfg, seed)
    seen = {"whole": Student.attempt(lambda: _forward(model, x))}
    if cfg["cache"] == "learner":
        kv_shape = (cfg["batch"], cfg["kv"], cfg["head_dim"])
        cache = _Recorder(_new_cache(student, seed, kv_shape, cfg["dtype"]))
    else:
        cache = GraderCache()
    _observe_chunks(model, x, cfg["chunks"], cache, seen)
    if cfg["cache"] == "learner":  # what the visible cell also asserts
        seen["seq_len"] = Student.attempt(lambda: cache.seq_len)
        seen["again"] = Student.attempt(lambda: _forward(model, x))
        seen["appended keys"] = Student.attempt(lambda: cache.appended[0][0])
        seen["appended values"] = Student.attempt(lambda: cache.appended[0][1])
        seen["overflow"] = Student.attempt(
            lambda: _forward(model, _x(cfg, seed, 5, stream=14), cache))
        seen["seq_len after"] = Student.attempt(lambda: cache.seq_len)
        args, kwargs = _args(cfg)

        def biases():
            built = student.get(GQA)(*args, **{**kwargs, "qkv_bias": True})
            return [getattr(built, name).bias is not None for name in LAYERS[:3]]

        seen["biases"] = Student.attempt(biases)
        seen["kv 3"] = Student.attempt(lambda: student.get(GQA)(8, 8, 10, 4, 3))
    else:
        seen["cache keys"] = Student.attempt(lambda: cache._keys)
        seen["cache values"] = Student.attempt(lambda: cache._values)
    return seen


def _judge_cached(verdict: Verdict, case: tuple, seed: int) -> None:
    cfg = _config(case, seed)
    x = _x(cfg, seed)
    _judge_whole(verdict, "whole", case, cfg, seed, x)
    name = "your KVCache" if cfg["cache"] == "learner" else "the grader's cache"
    if not _judge_chunks(verdict, case, cfg, seed, x, cfg["chunks"], name):
        return
    from autograder.reference.kv_cache import cache_contents, projections

    if cfg["cache"] == "learner":
        what = _what(case, cfg)
        verdict.equal("seq_len", cfg["n"], f"{CACHE}.seq_len after {cfg['chunks']} tokens")
        _judge_whole(verdict, "again", case, cfg, seed, x, " (a second call: nothing is kept "
                     "between calls without a cache)")
        base = DEFAULT_BASE if cfg["base"] is None else cfg["base"]
        keys, values = cache_contents(x.double().numpy(), _weights(cfg, seed), cfg["heads"],
                                      cfg["kv"], base)
        first = cfg["chunks"][0]
        hint = ("append the keys after RoPE and the values (never rotated) of the num_kv_heads "
                "heads, before repeating them for the query heads")
        for name, expected in (("keys", keys), ("values", values)):
            verdict.array(f"appended {name}", expected[:, :, :first], f"{what}: the {name} the "
                          f"first chunk appends to your KVCache", dtype="float32",
                          library="torch", hint=hint, **_tolerance(cfg))
        verdict.raises("overflow", f"{what}: 5 new tokens after {cfg['n']} cached positions "
                       f"(context_length is {cfg['ctx']})", "ValueError")
        verdict.equal("seq_len after", cfg["n"], f"{CACHE}.seq_len after the overflowing call",
                      hint="raise before touching the cache: check past + n_new <= "
                           "context_length first")
        verdict.equal("biases", [True, True, True], f"{GQA} with qkv_bias=True: W_query, W_key "
                      "and W_value have a bias", hint="pass bias=qkv_bias to nn.Linear")
        verdict.raises("kv 3", f"{GQA}(8, 8, 10, 4, 3) (num_kv_heads does not divide "
                       "num_heads)", "ValueError", mentions="num_kv_heads")
        return

    base = DEFAULT_BASE if cfg["base"] is None else cfg["base"]
    weights = _weights(cfg, seed)
    keys, values = cache_contents(x.double().numpy(), weights, cfg["heads"], cfg["kv"], base)
    shape = (cfg["batch"], cfg["kv"], cfg["n"], cfg["head_dim"])
    what = f"{_what(case, cfg)}: what the grader's cache holds after {cfg['chunks']} tokens"
    hint = ("append the keys after RoPE and the values (never rotated) of the num_kv_heads "
            "heads, before repeating them for the query heads, once per forward")

    def unrotated():
        _, k, _ = projections(x.double().numpy(), weights, cfg["heads"], cfg["kv"], base,
                              np.zeros(cfg["n"]))
        return {"the keys before RoPE: cache them after the rotation": k.numpy()}

    verdict.array("cache keys", keys, f"{what}: keys, expected shape {shape}",
                  dtype=cfg["dtype"], library="torch", variants=unrotated, hint=hint,
                  **_tolerance(cfg))
    verdict.array("cache values", values, f"{what}: values, expected shape {shape}",
                  dtype=cfg["dtype"], library="torch", hint=hint, **_tolerance(cfg))


GQA_BASICS = [
    ("the visible configuration, with your KVCache",
     {"d_in": 8, "heads": 4, "kv": 2, "half": 1, "n": 6, "extra": 4, "batch": 2,
      "chunks": [3, 1, 2], "cache": "learner"}),
    # head_dim of 4 or more: with head_dim 2, theta_base ** 0 = 1 and the base cannot show
    ("seeded", {"d_in": (3, 10), "heads": (2, 4), "kv": "divisor", "half": (2, 3), "n": (4, 9),
                "extra": (0, 4), "batch": (1, 3), "chunks": "uneven"}),
]

gqa_basics = Check("gqa_basics", exercise=GQA, label=_label(GQA), cases=GQA_BASICS,
                   needs=GQA_NEEDS + (CACHE,))
gqa_basics.observe(_observe_cached)
gqa_basics.judge(_judge_cached)


GQA_VALUES = [
    ("default qkv_bias and theta_base, num_kv_heads a divisor of num_heads",
     {"d_in": (3, 10), "kv": "divisor", "half": (2, 4), "n": (2, 9), "extra": (1, 6),
      "batch": (1, 3)}),
    ("num_kv_heads = 1 (multi-query), qkv_bias=True, theta_base drawn from the seed",
     {"d_in": (3, 10), "heads": (2, 5), "kv": "one", "half": (1, 4), "n": (2, 9),
      "extra": (0, 4), "batch": (1, 2), "bias": True, "base": "seeded"}),
    ("num_kv_heads = num_heads (multi-head), qkv_bias=False",
     {"d_in": (3, 10), "heads": (1, 4), "kv": "all", "half": (1, 4), "n": (2, 9),
      "extra": (0, 4), "batch": (1, 2), "bias": False}),
    ("qkv_bias=True on all three projections, a divisor, theta_base drawn",
     {"d_in": (3, 10), "kv": "divisor", "half": (1, 3), "n": (3, 9), "extra": (0, 3),
      "batch": (1, 2), "bias": True, "base": "seeded"}),
    ("all context_length tokens", {"d_in": (3, 8), "kv": "divisor", "half": (1, 3),
                                   "n": (3, 10), "extra": 0, "batch": (1, 2)}),
    ("one token", {"d_in": (2, 8), "heads": (1, 4), "kv": "one", "half": (1, 4), "n": 1,
                   "extra": (0, 6), "batch": (1, 3)}),
    ("inputs scaled so the scores reach about 1e4 (a softmax must subtract the row maximum)",
     {"d_in": (4, 8), "kv": "divisor", "half": (1, 3), "n": (3, 9), "extra": (0, 3),
      "batch": (1, 2), "scale": 60.0}),
    ("float64 after .to(torch.float64)",
     {"d_in": (3, 8), "kv": "divisor", "half": (1, 3), "n": (2, 8), "extra": (0, 3),
      "batch": (1, 2), "bias": True, "dtype": "float64"}),
]

gqa_values = Check("gqa_values", exercise=GQA, label=_label(GQA), cases=GQA_VALUES,
                   needs=GQA_NEEDS)


def _again(cfg: dict, seed: int) -> torch.Tensor:
    """A second input, of another length: nothing may be kept between calls without a cache."""
    return _x(cfg, seed, integer(seed, 1, cfg["ctx"], 32), stream=12)


@gqa_values.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    cfg = _config(case, seed)
    model = _build(student, cfg, seed)
    x, again = _x(cfg, seed), _again(cfg, seed)
    return {"out": Student.attempt(lambda: _forward(model, x)),
            "again": Student.attempt(lambda: _forward(model, again))}


@gqa_values.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    cfg = _config(case, seed)
    _judge_whole(verdict, "out", case, cfg, seed, _x(cfg, seed))
    _judge_whole(verdict, "again", case, cfg, seed, _again(cfg, seed),
                 " (a second call: nothing is kept between calls without a cache)")


GQA_CACHED = [
    ("uneven chunks, num_kv_heads a divisor",
     {"d_in": (3, 10), "kv": "divisor", "half": (2, 4), "n": (6, 14), "extra": (0, 4),
      "batch": (1, 2), "chunks": "uneven"}),
    ("one token at a time, num_kv_heads = 1",
     {"d_in": (3, 10), "heads": (2, 4), "kv": "one", "half": (1, 3), "n": (3, 8),
      "extra": (0, 4), "batch": (1, 2), "chunks": "steps"}),
    ("a prompt, then one token at a time, qkv_bias=True, theta_base drawn",
     {"d_in": (3, 10), "kv": "divisor", "half": (1, 3), "n": (5, 10), "extra": (0, 4),
      "batch": (1, 2), "bias": True, "base": "seeded", "chunks": "prompt"}),
    ("uneven chunks, num_kv_heads = num_heads, qkv_bias=True",
     {"d_in": (3, 10), "heads": (1, 4), "kv": "all", "half": (1, 3), "n": (6, 12),
      "extra": (0, 4), "batch": (1, 2), "bias": True, "chunks": "uneven"}),
    ("uneven chunks filling context_length exactly, num_kv_heads = 1",
     {"d_in": (3, 8), "heads": (2, 4), "kv": "one", "half": (1, 3), "n": (6, 12), "extra": 0,
      "batch": 1, "chunks": "uneven"}),
    ("float64 after .to(torch.float64), uneven chunks",
     {"d_in": (3, 8), "kv": "divisor", "half": (1, 3), "n": (5, 10), "extra": (0, 3),
      "batch": (1, 2), "dtype": "float64", "chunks": "uneven"}),
]

gqa_cached = Check("gqa_cached", exercise=GQA, label=_label(GQA), cases=GQA_CACHED,
                   needs=GQA_NEEDS)
gqa_cached.observe(_observe_cached)
gqa_cached.judge(_judge_cached)


GQA_CONTRACT = [
    ("the contract configuration", {"d_in": 6, "heads": 4, "kv": 2, "half": 2, "n": 5,
                                    "extra": 3, "batch": 2, "bias": True}),
    ("seeded", {"d_in": (3, 10), "kv": "divisor", "half": (1, 3), "n": (3, 8), "extra": (1, 4),
                "batch": (1, 2), "bias": True, "base": "seeded"}),
]

gqa_contract = Check("gqa_contract", exercise=GQA, label=_label(GQA), cases=GQA_CONTRACT,
                     needs=GQA_NEEDS)


def _bad_configs(cfg: dict) -> dict:
    """Constructor arguments that must raise, and the argument the message must name."""
    heads, half, d_in, ctx = cfg["heads"], cfg["half"], cfg["d_in"], cfg["ctx"]
    return {
        "d_out not divisible by num_heads": ((d_in, heads * 2 * half + 1, ctx, heads, 1), None),
        "num_kv_heads 0": ((d_in, cfg["d_out"], ctx, heads, 0), "num_kv_heads"),
        "num_kv_heads not dividing num_heads": ((d_in, cfg["d_out"], ctx, heads, heads + 1),
                                                "num_kv_heads"),
        "an odd head_dim": ((d_in, heads * (2 * half + 1), ctx, heads, 1), None),
    }


def _prefix(cfg: dict) -> int:
    return cfg["ctx"] - 1  # one position left: a chunk of 2 overflows


@gqa_contract.observe
def _(student: Student, case: tuple, seed: int) -> dict:
    cfg = _config(case, seed)
    seen = {}
    for why, (args, _) in _bad_configs(cfg).items():
        seen[why] = Student.attempt(lambda a=args: student.get(GQA)(*a))
    model = _build(student, cfg, seed)
    x = _x(cfg, seed, cfg["ctx"] + 1, stream=13)
    seen["out"] = Student.attempt(lambda: _forward(model, x[:, :cfg["n"]]))
    seen["too long"] = Student.attempt(lambda: _forward(model, x))
    cache = GraderCache()
    prefix = _prefix(cfg)
    seen["prefix"] = Student.attempt(lambda: _forward(model, x[:, :prefix], cache))
    seen["overflow"] = Student.attempt(lambda: _forward(model, x[:, prefix:prefix + 2], cache))
    seen["seq_len after"] = Student.attempt(lambda: cache.seq_len)
    seen["last"] = Student.attempt(lambda: _forward(model, x[:, prefix:prefix + 1], cache))
    for attr in ("num_heads", "num_kv_heads", "head_dim"):
        seen[attr] = Student.attempt(lambda a=attr: getattr(model, a))
    seen["parameters"] = Student.attempt(
        lambda: sorted([n, list(p.shape)] for n, p in torch.nn.Module.named_parameters(model)))
    seen["tables"] = Student.attempt(
        lambda: sorted([list(b.shape), str(b.dtype)[6:]]
                       for _, b in torch.nn.Module.named_buffers(model)))
    seen["meta"] = Student.attempt(lambda: _meta(model, cfg))  # last: it empties the module
    return seen


def _meta(model, cfg: dict) -> list:
    """``[device, *shape]`` of a forward on the meta device after ``module.to("meta")``."""
    out = _forward(model.to("meta"), torch.empty(cfg["batch"], cfg["n"], cfg["d_in"],
                                                 device="meta"))
    return [out.device.type, *(int(n) for n in out.shape)]


@gqa_contract.judge
def _(verdict: Verdict, case: tuple, seed: int) -> None:
    cfg = _config(case, seed)
    what = _what(case, cfg)
    for why, (args, mentions) in _bad_configs(cfg).items():
        verdict.raises(why, f"{GQA}{args} ({why})", "ValueError", mentions=mentions)
    x = _x(cfg, seed, cfg["ctx"] + 1, stream=13)
    prefix = _prefix(cfg)
    _judge_whole(verdict, "out", case, cfg, seed, x[:, :cfg["n"]])
    verdict.raises("too long", f"{what} on {cfg['ctx'] + 1} tokens without a cache "
                   f"(context_length is {cfg['ctx']})", "ValueError")
    expected = _reference(cfg, seed, x[:, :cfg["ctx"]])
    verdict.array("prefix", expected[:, :prefix], f"{what}: the first {prefix} tokens through "
                  "the grader's cache", dtype="float32", library="torch", hint=GQA_HINT,
                  **_tolerance(cfg))
    verdict.raises("overflow", f"{what}: 2 new tokens after {prefix} cached positions "
                   f"(context_length is {cfg['ctx']})", "ValueError")
    verdict.equal("seq_len after", prefix, f"{what}: the grader's cache after the overflowing "
                  "call (seq_len)", hint="raise before touching the cache: check past + n_new "
                  "<= context_length at the top of forward")
    verdict.array("last", expected[:, prefix:], f"{what}: the last token after the failed call "
                  "(position context_length - 1)", dtype="float32", library="torch",
                  variants=lambda: _variants(cfg, seed, x[:, :cfg["ctx"]], [prefix, 1],
                                             slice(prefix, cfg["ctx"])),
                  hint="a failed forward leaves the cache unchanged; the last token sits at "
                       "position context_length - 1", **_tolerance(cfg))
    # claims about structure, judged beside the behaviour above
    for attr, value in (("num_heads", cfg["heads"]), ("num_kv_heads", cfg["kv"]),
                        ("head_dim", cfg["head_dim"])):
        verdict.equal(attr, value, f"{what}.{attr}")
    kv_out = cfg["kv"] * cfg["head_dim"]
    shapes = {"W_query": [cfg["d_out"], cfg["d_in"]], "W_key": [kv_out, cfg["d_in"]],
              "W_value": [kv_out, cfg["d_in"]], "out_proj": [cfg["d_out"], cfg["d_out"]]}
    expected_parameters = sorted(
        [f"{layer}.{p}", shape if p == "weight" else shape[:1]]
        for layer, shape in shapes.items() for p in ("weight", "bias"))
    parameters = verdict.value("parameters", f"{what}: parameter names and shapes", list)
    if parameters == expected_parameters:
        verdict.ok("parameters")
    else:
        verdict.fail(f"{what} has parameters {parameters}; expected exactly "
                     f"{expected_parameters}: W_key and W_value map d_in to num_kv_heads * "
                     "head_dim, and the RoPE tables are buffers, not nn.Parameter")
    tables = verdict.value("tables", f"{what}: its buffers", list)
    rope = [t for t in tables if t == [[cfg["ctx"], cfg["head_dim"]], "float32"]]
    if len(rope) >= 2:
        verdict.ok("tables")
    else:
        verdict.fail(f"{what} has buffers of shapes and dtypes {tables}; expected the cos and "
                     f"sin tables, ({cfg['ctx']}, {cfg['head_dim']}) float32, registered with "
                     "self.register_buffer")
    verdict.equal("meta", ["meta", cfg["batch"], cfg["n"], cfg["d_out"]],
                  f"{what} after .to('meta'), a forward on a meta input as [device, shape]",
                  hint="register the RoPE tables as buffers, and move the mask to x.device")
