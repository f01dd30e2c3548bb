"""Hidden checks for 08-kv-cache (the KV cache and grouped-query attention).

A table of typed cases per exercise; one ``inputs`` per family builds a case's sizes,
tensors, splits into chunks and weights from the case and its seed, once on each side;
observe makes the calls with the student's code, judge compares the answers with
``autograder.reference.kv_cache`` (head selection by index, masks from positions, RoPE by
complex multiplication in float64, ``F.scaled_dot_product_attention(..., enable_gqa=True)``
on the whole sequence). ``GroupedQueryAttention`` is built with the grader's weights loaded by
the contract's attribute paths and fed through ``GraderCache``, the grader's own cache (the
contract's ``update``/``seq_len`` only), so the module is judged apart from the learner's
``KVCache``; the visible configuration of ``gqa_basics`` runs the learner's module with the
learner's cache, as the visible cell does. ``KVCache`` is judged through its contract alone:
the grader's tensors in, everything cached so far out, ``seq_len``. ``GroupedQueryAttention``
needs ``repeat_kv`` and ``cached_causal_mask`` (it may call them; ``gqa_basics`` also runs the
learner's ``KVCache``); the checks of errors and of the contract do not blame (``blame=False``).

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

from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch

from autograder.checks import Case, Check, Student, Verdict
from autograder.checks._common import (
    QKV,
    Size,
    _peek,
    attention_weights,
    call_text,
    integer,
    keywords,
    meta_forward,
    randn,
    rope_base,
    size,
)

ASSIGNMENT = "08-kv-cache"

REPEAT = "repeat_kv"
MASK = "cached_causal_mask"
CACHE = "KVCache"
GQA = "GroupedQueryAttention"
DEFAULT_BASE = 10000.0
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
DRAWN = "drawn"  # a wrong argument drawn from the seed

Pair = tuple[torch.Tensor, torch.Tensor]  # keys and values of one update


def _dtype(x: torch.Tensor) -> str:
    return str(x.dtype)[6:]


# --- repeat_kv --------------------------------------------------------------------------------

REPEAT_HINT = ("output head h is key/value head h // n_rep: each head repeated n_rep times in a "
               "row along dim 1 (torch.repeat_interleave(x, n_rep, dim=1))")


@dataclass(frozen=True)
class Repeat(Case):
    """``repeat_kv(x, n_rep)`` for x of ``shape`` (batch, num_kv_heads, positions, head_dim),
    sizes or ranges as ``n_rep``; ``shape`` None: the visible cell's x = arange(12).view(1, 2,
    3, 2) with n_rep 3, and the calls with n_rep 1 and 0 beside it."""

    shape: tuple[Size, Size, Size, Size] | None
    n_rep: Size = 3
    dtype: str = "float32"


@dataclass(frozen=True)
class RepeatCall:
    x: torch.Tensor
    n_rep: int

    @property
    def what(self) -> str:
        return f"{REPEAT}(x, {self.n_rep}) for x of shape {tuple(self.x.shape)}, {_dtype(self.x)}"


def _repeat_call(case: Repeat, seed: int) -> RepeatCall:
    shape = tuple(size(seed, spec, i) for i, spec in enumerate(case.shape))
    return RepeatCall(randn(seed, shape, stream=1).to(DTYPES[case.dtype]), size(seed, case.n_rep, 4))


def _repeats(case: Repeat, seed: int) -> dict[str, RepeatCall]:
    """The calls of a case, by the field of their answers."""
    if case.shape is not None:
        return {"out": _repeat_call(case, seed)}
    x = torch.arange(12.0).view(1, 2, 3, 2)
    return {"out": RepeatCall(x, 3), "n_rep 1": RepeatCall(x, 1), "n_rep 0": RepeatCall(x, 0)}


def _observe_repeats(student: Student, case: Case, calls: dict[str, RepeatCall]) -> dict:
    return {field: student.call(REPEAT, call.x, call.n_rep) for field, call in calls.items()}


def _judge_repeats(verdict: Verdict, case: Case, calls: dict[str, RepeatCall]) -> None:
    from autograder.reference.kv_cache import repeat_kv, repeat_kv_tiled

    for field, call in calls.items():
        if call.n_rep < 1:
            verdict.raises(field, f"{call.what} (n_rep < 1)", "ValueError", mentions="n_rep")
            continue
        x64 = call.x.double().numpy()
        verdict.array(field, repeat_kv(x64, call.n_rep), call.what, atol=0, rtol=0,
                      dtype=_dtype(call.x), library="torch",
                      hint="with n_rep = 1 the result is x" if call.n_rep == 1 else REPEAT_HINT,
                      variants=lambda c=call, x=x64: {
                          "repeat (tiling: output head h is head h % num_kv_heads), not "
                          "repeat_interleave": repeat_kv_tiled(x, c.n_rep)})


repeat_check = partial(Check, exercise=REPEAT, inputs=_repeats, observe=_observe_repeats,
                       judge=_judge_repeats)

repeat_kv_basics = repeat_check(
    "repeat_kv_basics",
    cases=[Repeat("the visible example", None),
           Repeat("seeded", ((1, 3), (2, 3), (1, 5), (1, 4)), (2, 4))])

repeat_kv_values = repeat_check(
    "repeat_kv_values",
    cases=[Repeat("n_rep = 1", ((1, 3), (1, 4), (1, 6), (1, 6)), 1),
           Repeat("one key/value head (multi-query)", ((1, 3), 1, (1, 6), (1, 6)), (2, 8)),
           Repeat("several key/value heads", ((1, 2), (3, 5), (2, 7), (2, 8)), (2, 5)),
           Repeat("float64", ((1, 2), (2, 4), (1, 5), (1, 6)), (2, 4), "float64"),
           Repeat("one position, a large n_rep", (1, (2, 3), 1, (1, 4)), (6, 12))])


@dataclass(frozen=True)
class BadRepeat(Case):
    """``repeat_kv`` with ``n_rep`` below 1 (``DRAWN``: a negative one drawn from the seed),
    beside a valid call: it does not always raise."""

    n_rep: int | str


def _bad_repeats(case: BadRepeat, seed: int) -> dict[str, RepeatCall]:
    valid = _repeat_call(Repeat("a valid call", ((1, 2), (2, 3), (1, 4), (1, 4)), (2, 3)), seed)
    n_rep = -integer(seed, 1, 5, 9) if case.n_rep == DRAWN else case.n_rep
    return {"error": RepeatCall(valid.x, n_rep), "valid": valid}


repeat_kv_errors = repeat_check(
    "repeat_kv_errors", inputs=_bad_repeats, blame=False,
    cases=[BadRepeat("n_rep 0", 0), BadRepeat("n_rep -1", -1),
           BadRepeat("a negative n_rep drawn from the seed", DRAWN)])


# --- cached_causal_mask -------------------------------------------------------------------------

MASK_HINT = ("True where hidden: the query at absolute position num_cached + i sees keys "
             "0 .. num_cached + i, so key j is hidden when j > num_cached + i "
             "(torch.triu(ones, diagonal=num_cached + 1))")


@dataclass(frozen=True)
class Masked(Case):
    """``cached_causal_mask(num_new, num_cached)``, sizes or ranges; ``num_cached`` None:
    omitted (the default); ``keyword``: num_cached passed by keyword; ``visible``: also
    ``cached_causal_mask(4)`` (chapter 3's ``causal_mask(4)``) and ``cached_causal_mask(0)``
    (a ValueError), as the visible cell asserts."""

    num_new: Size
    num_cached: Size | None
    keyword: bool = False
    visible: bool = False


@dataclass(frozen=True)
class MaskCall:
    num_new: int
    num_cached: int | None  # None: omitted
    keyword: bool = False

    @property
    def args(self) -> tuple:
        return (self.num_new,) if self.num_cached is None or self.keyword else \
            (self.num_new, self.num_cached)

    @property
    def kwargs(self) -> dict:
        return {"num_cached": self.num_cached} if self.keyword else {}

    @property
    def what(self) -> str:
        return call_text(MASK, self.args, self.kwargs)


def _mask_call(case: Masked, seed: int) -> MaskCall:
    cached = None if case.num_cached is None else size(seed, case.num_cached, 1)
    return MaskCall(size(seed, case.num_new, 0), cached, case.keyword)


def _masks(case: Masked, seed: int) -> dict[str, MaskCall]:
    """The calls of a case, by the field of their answers."""
    visible = {"square": MaskCall(4, None), "num_new 0": MaskCall(0, None)}
    return {"mask": _mask_call(case, seed)} | (visible if case.visible else {})


def _observe_masks(student: Student, case: Case, calls: dict[str, MaskCall]) -> dict:
    return {field: student.call(MASK, *call.args, **call.kwargs) for field, call in calls.items()}


def _judge_masks(verdict: Verdict, case: Case, calls: dict[str, MaskCall]) -> None:
    from autograder.reference.kv_cache import hidden

    for field, call in calls.items():
        num_new, num_cached = call.num_new, call.num_cached or 0
        if num_new < 1 or num_cached < 0:
            why = "num_new < 1" if num_new < 1 else "num_cached < 0"
            verdict.raises(field, f"{call.what} ({why})", "ValueError")
            continue
        expected = hidden(num_new, num_cached)
        top_left = np.triu(np.ones((num_new, num_cached + num_new), dtype=bool), 1)
        if not verdict.array(field, expected, call.what, dtype="bool", library="torch",
                             hint=MASK_HINT, variants=lambda e=expected, t=top_left: {
                                 "a mask that ignores the cache (query i sees keys 0..i: the "
                                 "diagonal must move right by num_cached)": t,
                                 "the visible keys marked True (True means hidden)": ~e}):
            continue
        found = verdict.value(field, call.what)
        if found.device != "cpu":
            verdict.fail(f"{call.what} is on {found.device}; expected a CPU tensor (the module "
                         "moves it to x.device)")


mask_check = partial(Check, exercise=MASK, inputs=_masks, observe=_observe_masks,
                     judge=_judge_masks)

cached_mask_basics = mask_check(
    "cached_mask_basics",
    cases=[Masked("the visible example", 2, 3, visible=True), Masked("seeded", (1, 6), (1, 8))])

cached_mask_values = mask_check(
    "cached_mask_values",
    cases=[Masked("num_cached omitted (the default)", (1, 9), None),
           Masked("num_cached = 0 by keyword", (1, 7), 0, keyword=True),
           Masked("num_cached by keyword", (2, 6), (1, 9), keyword=True),
           Masked("one new token after a long cache", 1, (20, 60)),
           Masked("a chunk after a cache", (3, 12), (3, 12)),
           Masked("one token, nothing cached", 1, None)])


@dataclass(frozen=True)
class BadMask(Case):
    """``cached_causal_mask`` with num_new below 1 or num_cached below 0 (``DRAWN``: drawn
    from the seed; ``num_cached`` None: omitted), beside a valid call."""

    num_new: int | str
    num_cached: int | str | None = None


def _bad_masks(case: BadMask, seed: int) -> dict[str, MaskCall]:
    num_new = -integer(seed, 0, 4, 5) if case.num_new == DRAWN else case.num_new
    num_cached = -integer(seed, 1, 6, 6) if case.num_cached == DRAWN else case.num_cached
    return {"error": MaskCall(num_new, num_cached),
            "valid": _mask_call(Masked("a valid call", (1, 5), (0, 6)), seed)}


cached_mask_errors = mask_check(
    "cached_mask_errors", inputs=_bad_masks, blame=False,
    cases=[BadMask("num_new 0", 0), BadMask("num_new -1 after a cache", -1, 3),
           BadMask("num_cached -1", 3, -1), BadMask("num_new 0 and num_cached 0", 0, 0),
           BadMask("a negative num_cached drawn from the seed", 2, DRAWN),
           BadMask("num_new drawn from the seed, below 1", DRAWN, 2)])


# --- KVCache ------------------------------------------------------------------------------------

APPEND_HINT = ("append along dim 2 (the positions), the old entries first, and return "
               "everything cached")
UNCHANGED_HINT = "a failed update leaves the cache unchanged: check before appending"
OWN_HINT = ("each cache keeps its own entries: no state shared between instances (a class "
            "attribute, or a mutable default argument)")


def _entries(seed: int, shape: tuple[int, int, int], n_new: int, dtype: str,
             stream: int) -> Pair:
    """The keys and values of one update, ``(b, kv, n_new, hd)`` each, drawn from streams
    ``stream`` and ``stream + 1``."""
    b, kv, hd = shape
    return (randn(seed, (b, kv, n_new, hd), stream=stream).to(DTYPES[dtype]),
            randn(seed, (b, kv, n_new, hd), stream=stream + 1).to(DTYPES[dtype]))


def _run(seed: int, shape: tuple[int, int, int], steps: list[int], dtype: str, first: int = 100,
         step: int = 2) -> list[Pair]:
    """The updates of one cache: update i draws from stream ``first + step * i``."""
    return [_entries(seed, shape, n_new, dtype, first + step * i) for i, n_new in enumerate(steps)]


@dataclass(frozen=True)
class CacheCall:
    """What a case feeds the learner's caches: each update's keys and values, the one update
    of a cache made just before (``_new_cache``, stream 118), and wrong updates by name."""

    updates: list[Pair]
    decoy: Pair
    beside: list[Pair] | None = None  # a second cache's updates, in turn with these
    wrong: dict[str, Pair] | None = None  # each must raise ValueError, leaving the cache as it was
    repeated: Pair | None = None  # visible: the one position of 21 updates of another cache


def _new_cache(student: Student, decoy: Pair):
    """A new learner's cache, made after another one was updated: a cache whose entries live
    on the class (shared between instances) starts full, in a fresh process as in a kernel
    that ran the whole notebook."""
    other = student.get(CACHE)()
    try:
        other.update(*decoy)
    except Exception:  # the cache under test records the failure
        pass
    return student.get(CACHE)()


def _observe_update(cache, pair: Pair, prefix: str, index: int) -> dict:
    """One update's answer (everything cached so far) and seq_len after it."""
    holder = {}

    def update():
        holder["pair"] = cache.update(*pair)
        if not isinstance(holder["pair"], (tuple, list)) or len(holder["pair"]) != 2:
            raise TypeError(f"update returned {type(holder['pair']).__name__}; expected a "
                            "pair (keys_all, values_all)")
        return holder["pair"][0]

    return {f"{prefix}keys {index}": Student.attempt(update),
            f"{prefix}values {index}": Student.attempt(lambda: holder["pair"][1]),
            f"{prefix}seq_len {index}": Student.attempt(lambda: cache.seq_len)}


def _judge_updates(verdict: Verdict, updates: list[Pair], prefix: str = "", start: int = 0,
                   title=None, hint: str = APPEND_HINT,
                   count_hint: str = "seq_len is the number of cached positions, an int") -> bool:
    """The answers of updates ``start`` and after: everything cached so far, and seq_len.
    ``title(index, total)`` names the state after update ``index`` in messages."""
    total = 0
    for index, (keys, _) in enumerate(updates):
        total += keys.shape[2]
        if index < start:
            continue
        sizes = "+".join(str(k.shape[2]) for k, _ in updates[:index + 1])
        what = title(index, total) if title else \
            f"{CACHE} after updates of {sizes} positions ({_dtype(keys)})"
        shape = (keys.shape[0], keys.shape[1], total, keys.shape[3])
        for name, column in (("keys", 0), ("values", 1)):
            expected = np.concatenate([p[column].double().numpy() for p in updates[:index + 1]],
                                      axis=2)
            if not verdict.array(f"{prefix}{name} {index}", expected,
                                 f"{what}: the {name} returned, expected shape {shape}",
                                 atol=0, rtol=0, dtype=_dtype(keys), library="torch", hint=hint):
                return False
        if not verdict.equal(f"{prefix}seq_len {index}", total, f"{what}: seq_len",
                             hint=count_hint):
            return False
    return True


@dataclass(frozen=True)
class Updates(Case):
    """A new KVCache of (batch, num_kv_heads, head_dim) entries, sizes or ranges, updated with
    ``steps`` positions at a time: a tuple, "seeded" (2 to 6 updates of 1 to 5 positions) or
    "ones" (4 to 9 updates of one); ``visible``: also what the visible cell asserts (a second
    new cache, wrong updates, 21 updates); ``beside``: a second cache of its own sizes and
    steps, updated in turn with this one."""

    batch: Size
    kv_heads: Size
    head_dim: Size
    steps: tuple[int, ...] | str
    dtype: str = "float32"
    visible: bool = False
    beside: Updates | None = None


def _steps(case: Updates, seed: int) -> tuple[tuple[int, int, int], list[int]]:
    shape = (size(seed, case.batch, 0), size(seed, case.kv_heads, 1), size(seed, case.head_dim, 2))
    if case.steps == "seeded":
        return shape, [integer(seed, 1, 5, 10 + i) for i in range(integer(seed, 2, 6, 3))]
    if case.steps == "ones":
        return shape, [1] * integer(seed, 4, 9, 3)
    return shape, list(case.steps)


def _updates(case: Updates, seed: int) -> CacheCall:
    shape, steps = _steps(case, seed)
    decoy = _entries(seed, shape, 1, case.dtype, 118)
    if case.beside is not None:  # in turn: update i of the first from stream 100 + i, the second 1100 + i
        other_shape, other_steps = _steps(case.beside, seed)
        return CacheCall(_run(seed, shape, steps, case.dtype, step=1), decoy,
                    beside=_run(seed, other_shape, other_steps, case.beside.dtype, 1100, 1))
    if not case.visible:
        return CacheCall(_run(seed, shape, steps, case.dtype), decoy)
    keys, values = _entries(seed, (2, 2, 4), 1, "float32", 114)  # after (2, 2, 4, 4) float32 entries
    wrong = {"a head_dim of 6": (randn(seed, (2, 2, 1, 6), 70), randn(seed, (2, 2, 1, 6), 71)),
             "float64 entries": (keys.double(), values.double()),
             "values of another shape than the keys": (keys, values[..., :2])}
    return CacheCall(_run(seed, shape, steps, case.dtype), decoy, wrong=wrong,
                repeated=_entries(seed, shape, 1, case.dtype, 102))


def _observe_cache(student: Student, case: Updates, call: CacheCall) -> dict:
    cache = _new_cache(student, call.decoy)
    if call.beside is not None:
        second = student.get(CACHE)()
        seen = {}
        for index in range(max(len(call.updates), len(call.beside))):
            for each, prefix, updates in ((cache, "first ", call.updates),
                                          (second, "second ", call.beside)):
                if index < len(updates):
                    seen.update(_observe_update(each, updates[index], prefix, index))
        return seen
    seen = {"seq_len empty": Student.attempt(lambda: cache.seq_len)}
    for index, pair in enumerate(call.updates):
        seen.update(_observe_update(cache, pair, "", index))
    if case.visible:  # what the visible cell also asserts
        seen["second empty"] = Student.attempt(lambda: student.get(CACHE)().seq_len)
        for why, pair in call.wrong.items():
            seen[why] = Student.attempt(lambda p=pair: cache.update(*p))
        seen["seq_len after"] = Student.attempt(lambda: cache.seq_len)

        def many():
            other = student.get(CACHE)()
            for _ in range(20):
                other.update(*call.repeated)
            return [other.seq_len, list(other.update(*call.repeated)[0].shape)]

        seen["many"] = Student.attempt(many)
    return seen


def _judge_cache(verdict: Verdict, case: Updates, call: CacheCall) -> None:
    if call.beside is not None:
        for prefix, updates in (("first ", call.updates), ("second ", call.beside)):
            _judge_updates(verdict, updates, prefix, hint=OWN_HINT, count_hint=OWN_HINT,
                           title=lambda index, total, p=prefix: (
                               f"the {p.strip()} of two {CACHE}s updated in turn, after "
                               f"{index + 1} updates ({total} positions)"))
        return
    verdict.equal("seq_len empty", 0, f"{CACHE}().seq_len of a new cache")
    _judge_updates(verdict, call.updates)
    if case.visible:
        verdict.equal("second empty", 0, f"a second {CACHE}().seq_len after the first was updated",
                      hint="keep the entries on the instance (self.keys), not on the class")
        for why in call.wrong:
            verdict.raises(why, f"{CACHE}.update with {why} after (2, 2, 4, 4) float32 entries",
                           "ValueError")
        verdict.equal("seq_len after", 4, f"{CACHE}.seq_len after the failed updates",
                      hint=UNCHANGED_HINT)
        verdict.equal("many", [20, [2, 2, 21, 4]], f"a {CACHE} after 20 one-position updates: "
                      "[seq_len, the shape of the keys returned by the 21st]",
                      hint="the cache grows without a fixed capacity")


cache_check = partial(Check, exercise=CACHE, inputs=_updates, observe=_observe_cache,
                      judge=_judge_cache)

kv_cache_basics = cache_check(
    "kv_cache_basics",
    cases=[Updates("updates of 3 then 1 positions", 2, 2, 4, (3, 1), visible=True),
           Updates("seeded", (1, 3), (1, 3), (1, 6), "seeded")])

kv_cache_values = cache_check(
    "kv_cache_values",
    cases=[Updates("uneven updates drawn from the seed", (1, 3), (1, 4), (2, 8), "seeded"),
           Updates("one position at a time", (1, 2), (1, 3), (1, 6), "ones"),
           Updates("a prompt, then one position at a time", 1, (1, 4), (2, 6), (7, 1, 1, 1)),
           Updates("more than 16 positions", (1, 2), (1, 2), (1, 4), (9, 8, 1, 4)),
           Updates("float64", (1, 2), (1, 3), (1, 6), "seeded", "float64"),
           Updates("bfloat16", (1, 2), (1, 3), (1, 6), (2, 1, 3), "bfloat16"),
           Updates("two caches side by side", (1, 2), (1, 3), (1, 6), "seeded",
                   beside=Updates("the second cache", (2, 3), (2, 4), (3, 7), (1, 2, 1, 3)))])


@dataclass(frozen=True)
class BadUpdate(Case):
    """A wrong update after a valid one, then a valid one; sizes drawn from the seed.
    ``kind``: "keys 3-D", "values 3-D", "mismatch" (values of another shape), "head_dim",
    "heads", "batch" (another size than the cache's) or "dtype"."""

    kind: str


def _bad_update(case: BadUpdate, seed: int) -> CacheCall:
    b, kv, hd = shape = (integer(seed, 1, 2, 20), integer(seed, 1, 3, 21),
                         2 * integer(seed, 1, 3, 22))
    first, n_new = integer(seed, 1, 4, 23), integer(seed, 1, 3, 24)
    keys, values = _entries(seed, shape, n_new, "float32", 110)
    other = {"head_dim": (b, kv, n_new, hd + 2), "heads": (b, kv + 1, n_new, hd),
             "batch": (b + 1, kv, n_new, hd)}
    if case.kind in other:
        wrong = randn(seed, other[case.kind], stream=61), randn(seed, other[case.kind], stream=62)
    else:
        wrong = {"keys 3-D": (keys[0], values), "values 3-D": (keys, values[:, 0]),
                 "mismatch": (keys, randn(seed, (b, kv, n_new + 1, hd), stream=60)),
                 "dtype": (keys.double(), values.double())}[case.kind]
    return CacheCall(_run(seed, shape, [first, n_new], "float32"),
                _entries(seed, shape, 1, "float32", 118), wrong={"error": wrong})


def _observe_bad_update(student: Student, case: BadUpdate, call: CacheCall) -> dict:
    cache = _new_cache(student, call.decoy)
    seen = _observe_update(cache, call.updates[0], "", 0)
    seen["error"] = Student.attempt(lambda: cache.update(*call.wrong["error"]))
    seen["seq_len after"] = Student.attempt(lambda: cache.seq_len)
    # the next valid update: the failed one left nothing behind
    return seen | _observe_update(cache, call.updates[1], "", 1)


def _judge_bad_update(verdict: Verdict, case: BadUpdate, call: CacheCall) -> None:
    first, then = (keys.shape[2] for keys, _ in call.updates)
    _judge_updates(verdict, call.updates[:1])
    verdict.raises("error", f"{CACHE}.update with {case.label} (after {first} cached "
                   "positions)", "ValueError")
    verdict.equal("seq_len after", first, f"{CACHE}.seq_len after the failed update",
                  hint=UNCHANGED_HINT)
    _judge_updates(verdict, call.updates, start=1, hint=UNCHANGED_HINT, count_hint=UNCHANGED_HINT,
                   title=lambda index, total: f"{CACHE}.update of {then} positions after the "
                                              "failed update")


kv_cache_errors = Check(
    "kv_cache_errors", exercise=CACHE, inputs=_bad_update, observe=_observe_bad_update,
    judge=_judge_bad_update, blame=False,
    cases=[BadUpdate("3-D keys", "keys 3-D"), BadUpdate("3-D values", "values 3-D"),
           BadUpdate("keys and values of different shapes", "mismatch"),
           BadUpdate("a head_dim that differs from the cache's", "head_dim"),
           BadUpdate("num_kv_heads that differs from the cache's", "heads"),
           BadUpdate("a batch that differs from the cache's", "batch"),
           BadUpdate("a dtype that differs from the cache's", "dtype")])


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


# --- GroupedQueryAttention --------------------------------------------------------------------

GQA_NEEDS = (REPEAT, MASK)  # it may call repeat_kv and cached_causal_mask

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


@dataclass(frozen=True)
class Attention(Case):
    """A ``GroupedQueryAttention`` and how its input goes through it. Sizes or ranges:
    ``d_in``, ``half`` (head_dim = 2 * half; 2 or more lets theta_base show), ``n`` tokens,
    ``extra`` (context_length = n + extra), ``batch``; ``kv``: "one", "all" (num_heads),
    "divisor" ((num_heads, num_kv_heads) one of (4, 2), (6, 2), (6, 3), (8, 2), (8, 4)) or a
    size beside ``heads``; ``bias`` None: qkv_bias omitted; ``base``: a theta_base drawn from
    the seed (else omitted); ``chunks``: "whole" (no cache), "steps" (one token at a time),
    "prompt" (then one at a time), "uneven" (drawn) or a tuple; ``cache``: "grader" or
    "learner" (the learner's KVCache, and what the visible cell also asserts)."""

    d_in: Size
    half: Size
    n: Size
    extra: Size
    batch: Size
    kv: str | Size = "divisor"
    heads: Size = 1
    bias: bool | None = None
    base: bool = False
    chunks: str | tuple[int, ...] = "whole"
    dtype: str = "float32"
    scale: float = 1.0
    cache: str = "grader"


@dataclass(frozen=True)
class ModuleCall:
    """A case's module, its weights and its inputs: what both sides use."""

    label: str
    d_in: int
    heads: int
    kv: int
    head_dim: int
    n: int
    ctx: int
    batch: int
    bias: bool | None  # None: omitted
    base: float | None  # None: omitted (the default)
    dtype: str
    scale: float
    chunks: list[int] | None  # None: one call without a cache
    seed: int  # torch.manual_seed before the constructor
    weights: dict
    x: torch.Tensor
    decoy: Pair | None = None  # the learner's cache: one update of a cache made before it
    overflow: torch.Tensor | None = None  # the learner's cache: 5 tokens past context_length
    again: torch.Tensor | None = None  # gqa_values: a second input, of another length
    long: torch.Tensor | None = None  # gqa_contract: context_length + 1 tokens

    @property
    def d_out(self) -> int:
        return self.heads * self.head_dim

    @property
    def args(self) -> tuple:
        return self.d_in, self.d_out, self.ctx, self.heads, self.kv

    @property
    def kwargs(self) -> dict:
        return keywords(qkv_bias=self.bias, theta_base=self.base)

    @property
    def what(self) -> str:
        dtype = ", after .to(torch.float64)" if self.dtype == "float64" else ""
        return f"{call_text(GQA, self.args, self.kwargs)}{dtype} [{self.label}]"

    @property
    def tolerance(self) -> dict:
        """rtol = atol = 1e-5 in float32 (spec section 4), atol scaled with the inputs; scores
        of about 1e4 in float32 leave output errors up to ~2e-4 x scale."""
        if self.scale > 1.0:
            return {"atol": 2e-3 * self.scale, "rtol": 1e-3}
        return {"atol": 1e-5, "rtol": 1e-5}

    def tokens(self, n: int, stream: int) -> torch.Tensor:
        return _tokens(self.seed, (self.batch, n, self.d_in), self.scale, self.dtype, stream)

    @property
    def theta_base(self) -> float:
        """The theta_base the module uses."""
        return DEFAULT_BASE if self.base is None else self.base

    def reference(self, x: torch.Tensor, **options) -> np.ndarray:
        from autograder.reference.kv_cache import attention

        return attention(x.double().numpy(), self.weights, self.heads, self.kv, self.theta_base,
                         **options)

    def variants(self, x: torch.Tensor, chunks, span: slice) -> dict:
        return {label: self.reference(x, chunks=chunks, bug=bug)[:, span]
                for bug, label in BUGS.items()
                if bug != "tiled" or self.kv not in (1, self.heads)}


def _tokens(seed: int, shape: tuple[int, int, int], scale: float, dtype: str,
            stream: int) -> torch.Tensor:
    return randn(seed, shape, stream=stream, scale=scale).to(DTYPES[dtype])


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


def _module(case: Attention, seed: int) -> ModuleCall:
    d_in, half, n, extra, batch = (size(seed, spec, 20 + stream) for stream, spec in
                                   enumerate((case.d_in, case.half, case.n, case.extra,
                                              case.batch)))
    if case.kv == "divisor":
        heads, kv = [(4, 2), (6, 2), (6, 3), (8, 2), (8, 4)][integer(seed, 0, 4, 26)]
    else:
        heads = size(seed, case.heads, 27)
        kv = 1 if case.kv == "one" else heads if case.kv == "all" else size(seed, case.kv, 28)
    head_dim = 2 * half
    learner = case.cache == "learner"
    return ModuleCall(case.label, d_in, heads, kv, head_dim, n, n + extra, batch, case.bias,
                 rope_base(seed) if case.base else None, case.dtype, case.scale,
                 _chunks(case.chunks, n, seed), seed,
                 attention_weights(seed, d_in, heads * head_dim, bool(case.bias), kv * head_dim),
                 _tokens(seed, (batch, n, d_in), case.scale, case.dtype, 10),
                 _entries(seed, (batch, kv, head_dim), 1, case.dtype, 118) if learner else None,
                 _tokens(seed, (batch, 5, d_in), case.scale, case.dtype, 14) if learner else None)


def _build(student: Student, call: ModuleCall):
    model = student.build(GQA, call.args, call.kwargs, weights=call.weights, seed=call.seed)
    return model.to(torch.float64) if call.dtype == "float64" else model


def _forward(model, x, cache=None):
    """``model(x)`` or ``model(x, cache)`` without gradients (train and eval agree)."""
    with torch.no_grad():
        return model(x) if cache is None else model(x, cache)


def _judge_whole(verdict: Verdict, field: str, call: ModuleCall, x: torch.Tensor,
                 note: str = "") -> bool:
    """An output without a cache against the reference."""
    return verdict.array(field, call.reference(x),
                         f"{call.what}: output for x of shape {tuple(x.shape)} without a "
                         f"cache{note}", dtype=call.dtype, library="torch",
                         variants=lambda: call.variants(x, None, slice(0, x.shape[1])),
                         hint=GQA_HINT, **call.tolerance)


def _chunk_hint(verdict: Verdict, call: ModuleCall, expected: np.ndarray, span: slice, past: int,
                size_: int) -> str:
    """The chunked-versus-whole property, for the message only: the learner's own output on
    the whole sequence (``whole``) is right where this chunk is wrong."""
    whole = _peek(verdict, "whole")
    if whole is None or whole.shape != expected.shape or \
            not np.allclose(whole[:, span], expected[:, span], **call.tolerance):
        return GQA_HINT
    return (f"chunked generation differs from one call on the whole sequence (your output on "
            f"the whole sequence is right here): the chunk of {size_} tokens after {past} "
            "cached positions must be rotated at positions past .. past + n_new - 1, its "
            "queries masked with cached_causal_mask(n_new, past) against every cached key, "
            "and the keys appended to the cache once rotated")


def _judge_chunks(verdict: Verdict, call: ModuleCall, cache_name: str) -> bool:
    x, chunks = call.x, call.chunks
    expected = call.reference(x)
    start = 0
    for index, n_new in enumerate(chunks):
        span = slice(start, start + n_new)
        what = (f"{call.what} fed {chunks} tokens through {cache_name}: chunk {index} "
                f"(positions {start}..{start + n_new - 1})")
        if not verdict.array(f"chunk {index}", expected[:, span], what, dtype=call.dtype,
                             library="torch",
                             variants=lambda s=span: call.variants(x, chunks, s),
                             hint=_chunk_hint(verdict, call, expected, span, start, n_new),
                             **call.tolerance):
            return False
        start += n_new
    return True


def _observe_cached(student: Student, case: Attention, call: ModuleCall) -> dict:
    model = _build(student, call)
    x = call.x
    seen = {"whole": Student.attempt(lambda: _forward(model, x))}
    learner = case.cache == "learner"
    cache = _Recorder(_new_cache(student, call.decoy)) if learner else GraderCache()
    start = 0
    for index, n_new in enumerate(call.chunks):
        part = x[:, start:start + n_new]
        seen[f"chunk {index}"] = Student.attempt(lambda p=part: _forward(model, p, cache))
        start += n_new
    if not learner:
        seen["cache keys"] = Student.attempt(lambda: cache._keys)
        seen["cache values"] = Student.attempt(lambda: cache._values)
        return seen
    # what the visible cell also asserts
    seen["seq_len"] = Student.attempt(lambda: cache.seq_len)
    seen["again"] = Student.attempt(lambda: _forward(model, x))
    seen["appended keys"] = Student.attempt(lambda: cache.appended[0][0])
    seen["appended values"] = Student.attempt(lambda: cache.appended[0][1])
    seen["overflow"] = Student.attempt(lambda: _forward(model, call.overflow, cache))
    seen["seq_len after"] = Student.attempt(lambda: cache.seq_len)

    def biases():
        built = student.get(GQA)(*call.args, **{**call.kwargs, "qkv_bias": True})
        return [getattr(built, name).bias is not None for name in QKV]

    seen["biases"] = Student.attempt(biases)
    seen["kv 3"] = Student.attempt(lambda: student.get(GQA)(8, 8, 10, 4, 3))
    return seen


def _judge_cached(verdict: Verdict, case: Attention, call: ModuleCall) -> None:
    from autograder.reference.kv_cache import cache_contents, projections

    _judge_whole(verdict, "whole", call, call.x)
    learner = case.cache == "learner"
    if not _judge_chunks(verdict, call, "your KVCache" if learner else "the grader's cache"):
        return
    x64 = call.x.double().numpy()
    keys, values = cache_contents(x64, call.weights, call.heads, call.kv, call.theta_base)
    if not learner:
        shape = (call.batch, call.kv, call.n, call.head_dim)
        what = f"{call.what}: what the grader's cache holds after {call.chunks} tokens"
        hint = ("append the keys after RoPE and the values (never rotated) of the num_kv_heads "
                "heads, before repeating them for the query heads, once per forward")

        def unrotated():
            _, k, _ = projections(x64, call.weights, call.heads, call.kv, call.theta_base,
                                  np.zeros(call.n))
            return {"the keys before RoPE: cache them after the rotation": k.numpy()}

        verdict.array("cache keys", keys, f"{what}: keys, expected shape {shape}",
                      dtype=call.dtype, library="torch", variants=unrotated, hint=hint,
                      **call.tolerance)
        verdict.array("cache values", values, f"{what}: values, expected shape {shape}",
                      dtype=call.dtype, library="torch", hint=hint, **call.tolerance)
        return
    verdict.equal("seq_len", call.n, f"{CACHE}.seq_len after {call.chunks} tokens")
    _judge_whole(verdict, "again", call, call.x, " (a second call: nothing is kept between "
                 "calls without a cache)")
    first = call.chunks[0]
    hint = ("append the keys after RoPE and the values (never rotated) of the num_kv_heads "
            "heads, before repeating them for the query heads")
    for name, expected in (("keys", keys), ("values", values)):
        verdict.array(f"appended {name}", expected[:, :, :first], f"{call.what}: the {name} "
                      "the first chunk appends to your KVCache", dtype="float32",
                      library="torch", hint=hint, **call.tolerance)
    verdict.raises("overflow", f"{call.what}: 5 new tokens after {call.n} cached positions "
                   f"(context_length is {call.ctx})", "ValueError")
    verdict.equal("seq_len after", call.n, f"{CACHE}.seq_len after the overflowing call",
                  hint="raise before touching the cache: check past + n_new <= "
                       "context_length first")
    verdict.equal("biases", [True, True, True], f"{GQA} with qkv_bias=True: W_query, W_key "
                  "and W_value have a bias", hint="pass bias=qkv_bias to nn.Linear")
    verdict.raises("kv 3", f"{GQA}(8, 8, 10, 4, 3) (num_kv_heads does not divide "
                   "num_heads)", "ValueError", mentions="num_kv_heads")


cached_check = partial(Check, exercise=GQA, inputs=_module, observe=_observe_cached,
                       judge=_judge_cached, needs=GQA_NEEDS)

gqa_basics = cached_check(
    "gqa_basics", needs=GQA_NEEDS + (CACHE,),
    cases=[Attention("the visible configuration, with your KVCache", d_in=8, heads=4, kv=2,
                     half=1, n=6, extra=4, batch=2, chunks=(3, 1, 2), cache="learner"),
           # head_dim of 4 or more: with head_dim 2, theta_base ** 0 = 1 and the base cannot show
           Attention("seeded", d_in=(3, 10), half=(2, 3), n=(4, 9), extra=(0, 4), batch=(1, 3),
                     chunks="uneven")])

gqa_cached = cached_check(
    "gqa_cached",
    cases=[Attention("uneven chunks, num_kv_heads a divisor", d_in=(3, 10), half=(2, 4),
                     n=(6, 14), extra=(0, 4), batch=(1, 2), chunks="uneven"),
           Attention("one token at a time, num_kv_heads = 1", d_in=(3, 10), heads=(2, 4),
                     kv="one", half=(1, 3), n=(3, 8), extra=(0, 4), batch=(1, 2),
                     chunks="steps"),
           Attention("a prompt, then one token at a time, qkv_bias=True, theta_base drawn",
                     d_in=(3, 10), half=(1, 3), n=(5, 10), extra=(0, 4), batch=(1, 2),
                     bias=True, base=True, chunks="prompt"),
           Attention("uneven chunks, num_kv_heads = num_heads, qkv_bias=True", d_in=(3, 10),
                     heads=(1, 4), kv="all", half=(1, 3), n=(6, 12), extra=(0, 4), batch=(1, 2),
                     bias=True, chunks="uneven"),
           Attention("uneven chunks filling context_length exactly, num_kv_heads = 1",
                     d_in=(3, 8), heads=(2, 4), kv="one", half=(1, 3), n=(6, 12), extra=0,
                     batch=1, chunks="uneven"),
           Attention("float64 after .to(torch.float64), uneven chunks", d_in=(3, 8),
                     half=(1, 3), n=(5, 10), extra=(0, 3), batch=(1, 2), dtype="float64",
                     chunks="uneven")])


def _with_again(case: Attention, seed: int) -> ModuleCall:
    """A second input, of another length: nothing may be kept between calls without a cache."""
    call = _module(case, seed)
    return replace(call, again=call.tokens(integer(seed, 1, call.ctx, 32), 12))


def _observe_values(student: Student, case: Attention, call: ModuleCall) -> dict:
    model = _build(student, call)
    return {"out": Student.attempt(lambda: _forward(model, call.x)),
            "again": Student.attempt(lambda: _forward(model, call.again))}


def _judge_values(verdict: Verdict, case: Attention, call: ModuleCall) -> None:
    _judge_whole(verdict, "out", call, call.x)
    _judge_whole(verdict, "again", call, call.again,
                 " (a second call: nothing is kept between calls without a cache)")


gqa_values = Check(
    "gqa_values", exercise=GQA, inputs=_with_again, observe=_observe_values,
    judge=_judge_values, needs=GQA_NEEDS,
    cases=[Attention("default qkv_bias and theta_base, num_kv_heads a divisor of num_heads",
                     d_in=(3, 10), half=(2, 4), n=(2, 9), extra=(1, 6), batch=(1, 3)),
           Attention("num_kv_heads = 1 (multi-query), qkv_bias=True, theta_base drawn from the "
                     "seed", d_in=(3, 10), heads=(2, 5), kv="one", half=(1, 4), n=(2, 9),
                     extra=(0, 4), batch=(1, 2), bias=True, base=True),
           Attention("num_kv_heads = num_heads (multi-head), qkv_bias=False", d_in=(3, 10),
                     heads=(1, 4), kv="all", half=(1, 4), n=(2, 9), extra=(0, 4), batch=(1, 2),
                     bias=False),
           Attention("qkv_bias=True on all three projections, a divisor, theta_base drawn",
                     d_in=(3, 10), half=(1, 3), n=(3, 9), extra=(0, 3), batch=(1, 2), bias=True,
                     base=True),
           Attention("all context_length tokens", d_in=(3, 8), half=(1, 3), n=(3, 10), extra=0,
                     batch=(1, 2)),
           Attention("one token", d_in=(2, 8), heads=(1, 4), kv="one", half=(1, 4), n=1,
                     extra=(0, 6), batch=(1, 3)),
           Attention("inputs scaled so the scores reach about 1e4 (a softmax must subtract the "
                     "row maximum)", d_in=(4, 8), half=(1, 3), n=(3, 9), extra=(0, 3),
                     batch=(1, 2), scale=60.0),
           Attention("float64 after .to(torch.float64)", d_in=(3, 8), half=(1, 3), n=(2, 8),
                     extra=(0, 3), batch=(1, 2), bias=True, dtype="float64")])


def _with_long(case: Attention, seed: int) -> ModuleCall:
    """The input of context_length + 1 tokens whose prefixes the contract feeds."""
    call = _module(case, seed)
    return replace(call, long=call.tokens(call.ctx + 1, 13))


def _bad_configs(call: ModuleCall) -> dict:
    """Constructor arguments that must raise, and the argument the message must name."""
    heads, half, d_in, ctx, d_out = call.heads, call.head_dim // 2, call.d_in, call.ctx, \
        call.d_out
    return {
        "d_out not divisible by num_heads": ((d_in, heads * 2 * half + 1, ctx, heads, 1), None),
        "num_kv_heads 0": ((d_in, d_out, ctx, heads, 0), "num_kv_heads"),
        "num_kv_heads not dividing num_heads": ((d_in, d_out, ctx, heads, heads + 1),
                                                "num_kv_heads"),
        "an odd head_dim": ((d_in, heads * (2 * half + 1), ctx, heads, 1), None),
    }


def _observe_contract(student: Student, case: Attention, call: ModuleCall) -> dict:
    seen = {why: Student.attempt(lambda a=args: student.get(GQA)(*a))
            for why, (args, _) in _bad_configs(call).items()}
    model = _build(student, call)
    x, prefix = call.long, call.ctx - 1  # one position left: a chunk of 2 overflows
    seen["out"] = Student.attempt(lambda: _forward(model, x[:, :call.n]))
    seen["too long"] = Student.attempt(lambda: _forward(model, x))
    cache = GraderCache()
    seen["prefix"] = Student.attempt(lambda: _forward(model, x[:, :prefix], cache))
    seen["overflow"] = Student.attempt(lambda: _forward(model, x[:, prefix:prefix + 2], cache))
    seen["seq_len after"] = Student.attempt(lambda: cache.seq_len)
    seen["last"] = Student.attempt(lambda: _forward(model, x[:, prefix:prefix + 1], cache))
    for attr in ("num_heads", "num_kv_heads", "head_dim"):
        seen[attr] = Student.attempt(lambda a=attr: getattr(model, a))
    seen["parameters"] = Student.attempt(
        lambda: sorted([n, list(p.shape)] for n, p in torch.nn.Module.named_parameters(model)))
    seen["tables"] = Student.attempt(
        lambda: sorted([list(b.shape), _dtype(b)] for _, b in torch.nn.Module.named_buffers(model)))
    # last: it empties the module
    seen["meta"] = Student.attempt(lambda: meta_forward(model, (call.batch, call.n, call.d_in)))
    return seen


def _judge_contract(verdict: Verdict, case: Attention, call: ModuleCall) -> None:
    what, ctx, x, prefix = call.what, call.ctx, call.long, call.ctx - 1
    for why, (args, mentions) in _bad_configs(call).items():
        verdict.raises(why, f"{GQA}{args} ({why})", "ValueError", mentions=mentions)
    _judge_whole(verdict, "out", call, x[:, :call.n])
    verdict.raises("too long", f"{what} on {ctx + 1} tokens without a cache "
                   f"(context_length is {ctx})", "ValueError")
    expected = call.reference(x[:, :ctx])
    verdict.array("prefix", expected[:, :prefix], f"{what}: the first {prefix} tokens through "
                  "the grader's cache", dtype="float32", library="torch", hint=GQA_HINT,
                  **call.tolerance)
    verdict.raises("overflow", f"{what}: 2 new tokens after {prefix} cached positions "
                   f"(context_length is {ctx})", "ValueError")
    verdict.equal("seq_len after", prefix, f"{what}: the grader's cache after the overflowing "
                  "call (seq_len)", hint="raise before touching the cache: check past + n_new "
                  "<= context_length at the top of forward")
    verdict.array("last", expected[:, prefix:], f"{what}: the last token after the failed call "
                  "(position context_length - 1)", dtype="float32", library="torch",
                  variants=lambda: call.variants(x[:, :ctx], [prefix, 1], slice(prefix, ctx)),
                  hint="a failed forward leaves the cache unchanged; the last token sits at "
                       "position context_length - 1", **call.tolerance)
    # claims about structure, judged beside the behaviour above
    for attr, value in (("num_heads", call.heads), ("num_kv_heads", call.kv),
                        ("head_dim", call.head_dim)):
        verdict.equal(attr, value, f"{what}.{attr}")
    kv_out = call.kv * call.head_dim
    shapes = {"W_query": [call.d_out, call.d_in], "W_key": [kv_out, call.d_in],
              "W_value": [kv_out, call.d_in], "out_proj": [call.d_out, call.d_out]}
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
    if len([t for t in tables if t == [[ctx, call.head_dim], "float32"]]) >= 2:
        verdict.ok("tables")
    else:
        verdict.fail(f"{what} has buffers of shapes and dtypes {tables}; expected the cos and "
                     f"sin tables, ({ctx}, {call.head_dim}) float32, registered with "
                     "self.register_buffer")
    verdict.equal("meta", ["meta", call.batch, call.n, call.d_out],
                  f"{what} after .to('meta'), a forward on a meta input as [device, shape]",
                  hint="register the RoPE tables as buffers, and move the mask to x.device")


gqa_contract = Check(  # errors and claims about structure: a failure here is not wrong values
    "gqa_contract", exercise=GQA, inputs=_with_long, observe=_observe_contract,
    judge=_judge_contract, needs=GQA_NEEDS, blame=False,
    cases=[Attention("the contract configuration", d_in=6, heads=4, kv=2, half=2, n=5, extra=3,
                     batch=2, bias=True),
           Attention("seeded", d_in=(3, 10), half=(1, 3), n=(3, 8), extra=(1, 4), batch=(1, 2),
                     bias=True, base=True)])
