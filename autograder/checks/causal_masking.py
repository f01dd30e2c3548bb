"""Hidden checks for 03-causal-masking (PyTorch).

Every size, input and weight is a pure function of the case and its seed (``_common``). The
grader loads its own weights into the student's ``CausalAttention`` by the contract's
attribute paths; the judge rebuilds them and compares the answers with
``autograder.reference.causal_masking``. Structure is tested through behaviour: the mask
buffer by a forward pass after ``module.to("meta")``, registered parameters by a float64
forward after ``module.to(torch.float64)``, dropout by a train-mode forward under a seed.
Structure facts the student process reports (buffer names, ``self.dropout``) are judged only
in a case whose behaviour is judged too.

Points and claims (spec section 6, "Claims are claims"): every point rests on answers
compared with the reference. The mask buffer is judged by behaviour: a forward with the
grader's windowed mask swapped into the registered ``mask`` buffer (``_common.
swapped_mask_forward``) must give the reference under that mask, which a plain tensor
attribute (in place or not) or a mask built in ``forward`` cannot. What rests on claims, read
with the unbound ``nn.Module`` methods and judged only beside a passing behaviour of the same
case, and could be forged by code that recognises the probe: in ``causal_attention_basics``
(1 point) that ``mask`` is among the buffers, that ``self.dropout`` is an ``nn.Dropout`` and
that no projection has a bias when ``qkv_bias`` is False (a key bias is invisible in every
output: softmax cancels it); in ``causal_attention_buffer`` (1 point) the mask's shape and
dtype, that it is not a parameter, ``self.dropout.p`` and the meta-device forward.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from autograder import data
from autograder.checks import Check, Student, Verdict
from autograder.checks._common import (
    EXTREME_TOLERANCE,
    MASK_FOLLOWS_HINT,
    STABLE_HINT,
    future_changed,
    integer,
    judge_causal,
    judge_no_bias,
    linear,
    mask_window,
    no_bias,
    randn,
    rng,
    size,
    swapped_mask_forward,
    uniform,
    window_hidden,
)

ASSIGNMENT = "03-causal-masking"

CM = "causal_mask"
CA = "CausalAttention"
PROJ = ("W_query", "W_key", "W_value")

MASK_HINT = "True strictly above the diagonal (torch.triu(..., diagonal=1))"




# --- causal_mask ----------------------------------------------------------------------------

def _mask_size(case: tuple, seed: int) -> int:
    return size(seed, case[1], 0)


def _observe_mask(student: Student, case: tuple, seed: int) -> dict:
    return {"mask": student.call(CM, _mask_size(case, seed))}


def _judge_mask(verdict: Verdict, case: tuple, seed: int) -> None:
    from autograder.reference.causal_masking import reference_mask

    n = _mask_size(case, seed)
    expected = reference_mask(n)
    verdict.array("mask", expected, f"{CM}({n})", dtype="bool", library="torch",
                  variants={"torch.tril (True on and below the diagonal): True must mean hidden, "
                            "the future": ~expected,
                            "a mask that also hides the diagonal (diagonal=0): every token must "
                            "see itself": np.triu(np.ones((n, n), dtype=bool))},
                  hint=MASK_HINT)


def _mask_check(grade_id: str, cases: list[tuple]) -> Check:
    check = Check(grade_id, exercise=CM, cases=cases)
    check.observe(_observe_mask)
    check.judge(_judge_mask)
    return check


causal_mask_basics = _mask_check("causal_mask_basics", [
    ("causal_mask(3), the visible call", 3), ("causal_mask(4)", 4),
    ("causal_mask of a size drawn from the seed", (2, 12)),
])

causal_mask_sizes = _mask_check("causal_mask_sizes", [
    ("causal_mask(1)", 1), ("causal_mask(2)", 2), ("a small seeded size", (3, 9)),
    ("a larger seeded size", (10, 40)),
])


# --- CausalAttention ------------------------------------------------------------------------
#
# A case: (label, kind, d_in, d_out, context_length, dropout, qkv_bias, sizes). Sizes are
# ints or (low, high) ranges drawn from the seed; dropout is a float or a (low, high) range;
# qkv_bias None leaves it to the default; sizes are [(batch, num_tokens), ...] where
# num_tokens "ctx" is context_length, "short" is drawn below it, and larger draws are capped
# at it. Kinds:
#   "visible"  the visible cell's calls (keyword arguments, shorter input, future, too long,
#              and its structure asserts as claims),
#   "eval"     outputs in eval mode,       "extreme"  integer weights, scores around 1e4,
#   "float64"  after .to(torch.float64),    "meta"     after .to("meta"), plus claims,
#   "errors"   too many tokens (and one valid call), "future" causality,
#   "dropout"  train mode under torch.manual_seed.

def _ca_setup(case: tuple, seed: int) -> dict:
    _, kind, d_in, d_out, ctx, dropout, bias, sizes = case
    d_in, d_out, ctx = size(seed, d_in, 1), size(seed, d_out, 2), size(seed, ctx, 3)
    if kind == "extreme":
        d_out = 4  # sqrt(d_out) = 2: the scaled scores stay exact
    p = dropout if isinstance(dropout, float) else round(uniform(seed, *dropout), 2)
    weights = {}
    for stream, name in enumerate(PROJ):
        weights.update(linear(seed, name, d_in, d_out, bool(bias), stream=stream))
    if kind == "extreme":
        weights["W_query.weight"] = _integers(seed, (d_out, d_in), 10, 100.0)
        weights["W_key.weight"] = _integers(seed, (d_out, d_in), 11)
        if bias:
            weights["W_query.bias"] = _integers(seed, (d_out,), 12, 100.0)
            weights["W_key.bias"] = _integers(seed, (d_out,), 13)
    xs = []
    for i, (b, n) in enumerate(sizes):
        if n == "short":  # strictly fewer tokens than context_length: the mask must be sliced
            n = integer(seed, 1, ctx - 1, 21 + 2 * i)
        else:
            n = ctx if n == "ctx" else min(ctx, size(seed, n, 21 + 2 * i))
        shape = (size(seed, b, 20 + 2 * i), n, d_in)
        x = _integers(seed, shape, 30 + i) if kind == "extreme" else randn(seed, shape, 30 + i)
        xs.append(x.to(torch.float64) if kind == "float64" else x)
    setup = {"d_in": d_in, "d_out": d_out, "ctx": ctx, "p": p, "bias": bias,
             "weights": weights, "xs": xs}
    if kind == "visible":
        x = xs[0]
        setup["t"] = 2
        setup["changed"] = future_changed(x, 2, seed)
        setup["too long"] = randn(seed, (1, ctx + 1, d_in), 40)
    if kind == "errors":
        setup["too long"] = [randn(seed, (1, ctx + 1, d_in), 40),
                             randn(seed, (2, ctx + integer(seed, 2, 9, 4), d_in), 41)]
    if kind == "future":
        n = xs[0].shape[1]
        setup["t"] = integer(seed, 0, n - 2, 5)
        setup["changed"] = future_changed(xs[0], setup["t"], seed)
    return setup


def _integers(seed: int, shape: tuple[int, ...], stream: int, scale: float = 1.0):
    """Integers in [-3, 3] times ``scale`` as float32: sums of products stay exact."""
    values = rng(seed, 6000 + stream).integers(-3, 4, shape) * scale
    return torch.from_numpy(values.astype(np.float32))


def _ca_what(case: tuple, s: dict) -> str:
    if case[1] == "visible":
        args = f"{s['d_in']}, {s['d_out']}, context_length={s['ctx']}, dropout={s['p']}"
    else:
        args = f"{s['d_in']}, {s['d_out']}, {s['ctx']}, {s['p']}"
    if s["bias"] is not None:
        args += f", qkv_bias={s['bias']}"
    notes = {"extreme": " with integer weights (scores around 1e4)",
             "float64": ".to(torch.float64) on float64 input",
             "dropout": " in train mode", "meta": ".to('meta')"}
    return f"{CA}({args})" + notes.get(case[1], " in eval mode")


def _claims_no_bias(kind: str, s: dict) -> bool:
    """Whether a case asks that no projection has a bias: a key bias adds the same amount to
    every score of a query's row, so no output shows it and only this claim, judged next to
    the outputs, does."""
    return kind in ("visible", "eval") and not s["bias"]


def _buffers(module) -> dict:
    """The module's registered buffers, read with the unbound ``nn.Module`` method (a claim:
    the module's own ``named_buffers`` may be overridden)."""
    return dict(nn.Module.named_buffers(module))


def _train_seed(seed: int) -> int:
    return seed + 1


def _forward(module, x):
    with torch.no_grad():
        return module(x)


def _observe_ca(student: Student, case: tuple, seed: int) -> dict:
    kind = case[1]
    s = _ca_setup(case, seed)
    kwargs = {} if s["bias"] is None else {"qkv_bias": s["bias"]}
    if kind == "visible":
        args = (s["d_in"], s["d_out"])
        kwargs.update(context_length=s["ctx"], dropout=s["p"])
    else:
        args = (s["d_in"], s["d_out"], s["ctx"], s["p"])
    module = student.build(CA, args, kwargs, weights=s["weights"], seed=seed)
    seen = {}
    if kind == "dropout":
        module.train()
        for i, x in enumerate(s["xs"]):
            torch.manual_seed(_train_seed(seed) + i)
            seen[f"out {i}"] = Student.attempt(lambda x=x: _forward(module, x))
        return seen
    module.eval()
    if _claims_no_bias(kind, s):
        seen["no bias"] = Student.attempt(lambda: no_bias(module, PROJ))
    if kind in ("visible", "meta"):  # structure facts, judged with behaviour in this case
        seen["mask buffer"] = Student.attempt(lambda: "mask" in _buffers(module))
        seen["dropout"] = Student.attempt(lambda: type(module.dropout).__name__)
    if kind == "meta":
        seen["mask parameter"] = Student.attempt(
            lambda: "mask" in dict(nn.Module.named_parameters(module)))
        seen["mask shape"] = Student.attempt(lambda: list(_buffers(module)["mask"].shape))
        seen["mask dtype"] = Student.attempt(
            lambda: str(_buffers(module)["mask"].dtype).replace("torch.", ""))
        x = s["xs"][0]
        seen["swapped"] = Student.attempt(
            lambda: swapped_mask_forward(module, x, mask_window(seed, x.shape[1])))
        seen["dropout p"] = Student.attempt(lambda: module.dropout.p)

        def on_meta(x):
            out = _forward(module.to("meta"), torch.empty(x.shape, device="meta"))
            return [str(out.device), *(int(n) for n in out.shape)]

        seen["meta"] = Student.attempt(lambda: on_meta(s["xs"][0]))
        return seen
    if kind == "float64":
        module.to(torch.float64)
    for i, x in enumerate(s["xs"]):
        seen[f"out {i}"] = Student.attempt(lambda x=x: _forward(module, x))
    if "changed" in s:
        seen["changed"] = Student.attempt(lambda: _forward(module, s["changed"]))
    if kind == "visible":
        seen["too long"] = Student.attempt(lambda: _forward(module, s["too long"]))
    if kind == "errors":
        for i, x in enumerate(s["too long"]):
            seen[f"too long {i}"] = Student.attempt(lambda x=x: _forward(module, x))
    return seen


def _explain(verdict: Verdict, field: str, what: str, num_tokens: int, ctx: int) -> None:
    """After a failure of ``field``, name the likely cause of a crash or of NaN outputs (never
    evidence: the failure is already recorded)."""
    seen = verdict.seen
    if not isinstance(seen, dict) or field not in seen:
        return
    try:
        found = data.decode(seen[field])
    except (data.Malformed, ValueError, TypeError):
        return
    if isinstance(found, data.Raised) and found.type != "NotImplementedError" \
            and num_tokens < ctx:
        verdict.fail(f"{what}: with num_tokens = {num_tokens} < context_length = {ctx}, is the "
                     "mask sliced to [:num_tokens, :num_tokens]?")
    if isinstance(found, data.Array) and found.values is not None \
            and found.values.dtype.kind == "f" and np.isnan(found.values).any():
        verdict.fail(f"{what} contains NaN: a row of the weights had every score at -inf (does "
                     "the mask hide the diagonal or the past, i.e. is True meant as hidden?), "
                     "dropout multiplied a -inf score by 0 (dropout belongs after the softmax), "
                     "or exp overflowed (subtract the row max)")


def _judge_outputs(verdict: Verdict, case: tuple, seed: int, s: dict, what: str) -> None:
    from autograder.reference.causal_masking import (
        eval_bugs,
        reference_causal_attention,
        reference_train_output,
        train_bugs,
    )

    kind = case[1]
    float64 = kind == "float64"
    tolerance = EXTREME_TOLERANCE if kind == "extreme" else 2e-5
    for i, x in enumerate(s["xs"]):
        n = x.shape[1]
        hint = ("weights = softmax(masked scores / sqrt(d_out)), hidden scores set to -inf, "
                "with the loaded W_query, W_key, W_value")
        if n < s["ctx"]:
            hint += (f"; with {n} < context_length = {s['ctx']} tokens, slice the mask to "
                     "[:num_tokens, :num_tokens]")
        if kind == "dropout":
            train_seed = _train_seed(seed) + i
            expected = reference_train_output(x, s["weights"], s["p"], train_seed)
            variants = lambda x=x, t=train_seed: train_bugs(x, s["weights"], s["p"], t)  # noqa: E731
            hint = ("apply self.dropout once, to the attention weights right after the softmax, "
                    "and to nothing else (self.dropout = nn.Dropout(dropout))")
            call = f"{what} after torch.manual_seed({train_seed})"
        else:
            expected = reference_causal_attention(x, s["weights"])
            variants = lambda x=x: eval_bugs(x, s["weights"])  # noqa: E731
            if s["p"] > 0:
                hint += ("; in eval mode self.dropout must do nothing (use nn.Dropout, not "
                         "F.dropout with training=True)")
            if float64:
                hint = ("after module.to(torch.float64) every parameter and buffer is float64: "
                        "are W_query, W_key, W_value registered nn.Linear modules, and is "
                        "nothing cast to float32?")
            if kind == "extreme":
                hint = STABLE_HINT
            if s["bias"] is None:
                hint += "; qkv_bias defaults to False: no projection has a bias"
            call = what
        call = f"{call} on x of shape {tuple(x.shape)}"
        if not verdict.array(f"out {i}", expected, call, atol=1e-10 if float64 else tolerance,
                             rtol=1e-9 if float64 else max(tolerance, 1e-4),
                             dtype="float64" if float64 else "float32", library="torch",
                             variants=variants, hint=hint):
            _explain(verdict, f"out {i}", call, n, s["ctx"])


def _judge_ca(verdict: Verdict, case: tuple, seed: int) -> None:
    kind = case[1]
    s = _ca_setup(case, seed)
    what = _ca_what(case, s)
    if kind == "meta":
        _judge_meta(verdict, s, what, seed)
        return
    _judge_outputs(verdict, case, seed, s, what)
    if "changed" in s:
        from autograder.reference.causal_masking import reference_causal_attention

        judge_causal(verdict, "out 0", "changed",
                     reference_causal_attention(s["changed"], s["weights"]), s["t"], what,
                     atol=2e-5, rtol=1e-4, dtype="float32", library="torch")
    if _claims_no_bias(kind, s):
        judge_no_bias(verdict, what, PROJ)
    if kind == "visible":
        verdict.raises("too long", f"{what} on {s['ctx'] + 1} tokens", "ValueError",
                       mentions="context_length")
        verdict.equal("mask buffer", True, f"{what}: 'mask' is among named_buffers()",
                      hint="register it with self.register_buffer('mask', ...)")
        verdict.equal("dropout", "Dropout", f"{what}: the type of self.dropout",
                      hint="self.dropout = nn.Dropout(dropout)")
    if kind == "errors":
        for i, x in enumerate(s["too long"]):
            verdict.raises(f"too long {i}", f"{what} on {x.shape[1]} tokens", "ValueError",
                           mentions="context_length")


def _judge_meta(verdict: Verdict, s: dict, what: str, seed: int) -> None:
    """The point rests on ``swapped``: the forward with the grader's mask swapped into the
    registered buffer, against the reference under that mask. The rest are claims the
    student's process reports (forgeable by code that recognises the probe: a forward that
    answers meta tensors on meta input, a fake buffer), judged only beside it."""
    from autograder.reference.causal_masking import reference_causal_attention

    x = s["xs"][0]
    b, n = x.shape[:2]
    window = mask_window(seed, n)
    verdict.array("swapped", reference_causal_attention(x, s["weights"],
                                                        hidden=window_hidden(n, window)),
                  f"{what} with the grader's mask (each query sees itself and the {window} "
                  "keys before it) swapped into its registered 'mask' buffer, on x of shape "
                  f"{tuple(x.shape)}", atol=2e-5, rtol=1e-4, dtype="float32", library="torch",
                  hint=MASK_FOLLOWS_HINT)
    verdict.equal("meta", ["meta", b, n, s["d_out"]],
                  f"{what}: the device and shape of the output on a meta input of shape "
                  f"({b}, {n}, {s['d_in']}) (a registered buffer moves with .to('meta'); a "
                  "plain tensor attribute, or a mask built on the CPU in forward, stays behind)",
                  hint="a registered buffer moves with the module; a plain tensor attribute (or "
                       "a mask built in forward on the CPU) stays behind: use "
                       "self.register_buffer('mask', ...) and slice it to [:n, :n]")
    verdict.equal("mask buffer", True, f"{what}: 'mask' is among named_buffers()",
                  hint="register it with self.register_buffer('mask', ...) so that it moves "
                       "with .to()")
    verdict.equal("mask parameter", False, f"{what}: 'mask' is among named_parameters()",
                  hint="the mask is a buffer (self.register_buffer), not an nn.Parameter: the "
                       "optimizer must never see it")
    verdict.equal("mask shape", [s["ctx"], s["ctx"]], f"{what}: the shape of the mask buffer",
                  hint="the buffer is (context_length, context_length); forward slices it")
    dtype = verdict.value("mask dtype", f"{what}: the dtype of the mask buffer", str)
    if dtype == "bool" or dtype.startswith(("float", "bfloat")):
        verdict.ok("mask dtype")
    else:
        verdict.fail(f"{what}: the mask buffer has dtype {dtype}; expected bool (or float 0/1)")
    verdict.equal("dropout", "Dropout", f"{what}: the type of self.dropout",
                  hint="self.dropout = nn.Dropout(dropout)")
    verdict.equal("dropout p", s["p"], f"{what}: self.dropout.p",
                  hint="self.dropout = nn.Dropout(dropout)")


def _ca_check(grade_id: str, cases: list[tuple]) -> Check:
    check = Check(grade_id, exercise=CA, cases=cases)
    check.observe(_observe_ca)
    check.judge(_judge_ca)
    return check


causal_attention_basics = _ca_check("causal_attention_basics", [
    ("CausalAttention(3, 2, context_length=6, dropout=0.0), the visible calls", "visible", 3, 2,
     6, 0.0, None, [(2, "ctx"), (2, 4)]),
    ("CausalAttention of sizes drawn from the seed", "eval", (2, 6), (1, 6), (3, 9), 0.0, None,
     [((1, 3), "ctx"), ((1, 3), (1, 8))]),
    # what the visible cell also asserts: qkv_bias both ways, dropout off in eval mode,
    # scores around 1e4
    ("CausalAttention with qkv_bias=True and dropout, in eval mode", "eval", (3, 7), (2, 6),
     (5, 9), (0.2, 0.6), True, [((2, 3), "ctx"), ((1, 3), (2, 8))]),
    ("CausalAttention with qkv_bias=False", "eval", (2, 5), (5, 9), (4, 7), (0.3, 0.7), False,
     [(1, "ctx"), (1, (1, 3))]),
    ("CausalAttention with extreme scores", "extreme", (3, 6), 4, (4, 8), 0.0, True,
     [((1, 3), "ctx"), (1, (2, 8))]),
])

causal_attention_values = _ca_check("causal_attention_values", [
    ("CausalAttention with qkv_bias=True and dropout, in eval mode", "eval", (3, 7), (2, 6),
     (5, 9), (0.2, 0.6), True, [((2, 3), "ctx"), ((1, 3), (2, 8))]),
    ("CausalAttention with qkv_bias=False", "eval", (2, 5), (5, 9), (4, 7), (0.3, 0.7), False,
     [(1, "ctx"), (1, (1, 3))]),
    ("CausalAttention, default qkv_bias, one token", "eval", (2, 6), (2, 6), (2, 6), 0.0, None,
     [((1, 3), 1), ((1, 2), (2, 6))]),
    ("CausalAttention with extreme scores", "extreme", (3, 6), 4, (4, 8), 0.0, True,
     [((1, 3), "ctx"), (1, (2, 8))]),
    ("CausalAttention in float64", "float64", (2, 5), (2, 6), (3, 7), 0.0, True,
     [((1, 3), "ctx"), (1, (1, 6))]),
])

causal_attention_buffer = _ca_check("causal_attention_buffer", [
    ("CausalAttention.to('meta') on context_length tokens", "meta", (2, 6), (2, 6), (3, 9),
     (0.05, 0.5), None, [((1, 3), "ctx")]),
    ("CausalAttention.to('meta') on fewer tokens", "meta", (2, 6), (2, 6), (5, 10),
     (0.05, 0.5), True, [((1, 3), (1, 4))]),
])

causal_attention_errors = _ca_check("causal_attention_errors", [
    ("CausalAttention on too many tokens", "errors", (2, 5), (2, 5), (2, 8), 0.0, None,
     [(1, "ctx")]),
    ("CausalAttention with qkv_bias on too many tokens", "errors", (2, 5), (2, 5), (1, 4),
     (0.1, 0.5), True, [((1, 2), "ctx")]),
])

causal_attention_future = _ca_check("causal_attention_future", [
    ("CausalAttention: the future must not leak", "future", (2, 6), (2, 6), (6, 12), 0.0, None,
     [((1, 3), "ctx")]),
    ("CausalAttention on fewer tokens than context_length", "future", (2, 6), (2, 6), (8, 12),
     0.0, True, [(1, (3, 7))]),
])

causal_attention_dropout = _ca_check("causal_attention_dropout", [
    ("CausalAttention with dropout", "dropout", (2, 5), (2, 6), (4, 8), (0.2, 0.6), None,
     [((1, 3), "ctx")]),
    ("CausalAttention with dropout and qkv_bias=True", "dropout", (2, 5), (2, 6), (4, 8),
     (0.1, 0.5), True, [(1, "short"), ((2, 3), "ctx")]),
])
