"""Hidden checks for 03-causal-masking (PyTorch).

Every size, input and weight is built by the check's ``inputs`` from the case and its seed
(``_common``), once on each side. The grader loads its own weights into the student's
``CausalAttention`` by the contract's attribute paths; the judge compares the answers with
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

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn

from autograder import data
from autograder.checks import Case, Check, Student, Verdict
from autograder.checks._common import (
    EXTREME_TOLERANCE,
    MASK_FOLLOWS_HINT,
    QKV,
    STABLE_HINT,
    Size,
    call_text,
    forward,
    future_changed,
    integer,
    judge_causal,
    judge_no_bias,
    mask_window,
    meta_forward,
    moderate_future,
    no_bias,
    qkv_weights,
    randn,
    rate,
    size,
    swapped_mask_forward,
    token_input,
    tokens,
    window_hidden,
)

ASSIGNMENT = "03-causal-masking"

CM = "causal_mask"
CA = "CausalAttention"

MASK_HINT = "True strictly above the diagonal (torch.triu(..., diagonal=1))"


# --- causal_mask ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Mask(Case):
    """``causal_mask(num_tokens)``: a size, or a ``(low, high)`` range drawn from the seed."""

    num_tokens: Size


def _num_tokens(case: Mask, seed: int) -> int:
    return size(seed, case.num_tokens, 0)


def _observe_mask(student: Student, case: Mask, n: int) -> dict:
    return {"mask": student.call(CM, n)}


def _judge_mask(verdict: Verdict, case: Mask, n: int) -> None:
    from autograder.reference.causal_masking import reference_mask

    expected = reference_mask(n)
    verdict.array("mask", expected, f"{CM}({n})", dtype="bool", library="torch",
                  variants={"torch.tril (True on and below the diagonal): True must mean hidden, "
                            "the future": ~expected,
                            "a mask that also hides the diagonal (diagonal=0): every token must "
                            "see itself": np.triu(np.ones((n, n), dtype=bool))},
                  hint=MASK_HINT)


mask_check = partial(Check, exercise=CM, inputs=_num_tokens, observe=_observe_mask,
                     judge=_judge_mask)

causal_mask_basics = mask_check("causal_mask_basics", cases=[
    Mask("causal_mask(3), the visible call", 3), Mask("causal_mask(4)", 4),
    Mask("causal_mask of a size drawn from the seed", (2, 12)),
])

causal_mask_sizes = mask_check("causal_mask_sizes", cases=[
    Mask("causal_mask(1)", 1), Mask("causal_mask(2)", 2), Mask("a small seeded size", (3, 9)),
    Mask("a larger seeded size", (10, 40)),
])


# --- CausalAttention ------------------------------------------------------------------------

@dataclass(frozen=True)
class Causal(Case):
    """A ``CausalAttention(d_in, d_out, context_length, dropout, qkv_bias)`` holding the
    grader's weights, probed as ``kind`` says on an input of each ``(batch, num_tokens)`` of
    ``sizes``. Sizes are ints or ``(low, high)`` ranges drawn from the seed; num_tokens is
    capped at context_length ("context": exactly it, "short": fewer); ``dropout`` is a rate or
    a range; ``bias`` None leaves ``qkv_bias`` to its default. Kinds:

    - "visible": the visible cell's calls (keyword arguments, a shorter input, the future,
      one token too many, and its structure asserts as claims);
    - "eval": outputs in eval mode; "extreme": integer weights, scores around 1e4;
      "float64": after ``.to(torch.float64)``;
    - "meta": the mask buffer swapped, then ``.to("meta")``, with the structure claims;
    - "errors": too many tokens (and a valid call); "future": causality;
      "dropout": train mode under ``torch.manual_seed``.
    """

    kind: str
    d_in: Size
    d_out: Size
    context: Size
    dropout: float | tuple[float, float]
    bias: bool | None
    sizes: tuple[tuple[Size, Size | str], ...]


@dataclass(frozen=True)
class CausalCall:
    args: tuple
    kwargs: dict
    seed: int  # torch.manual_seed before the module is built
    d_in: int
    d_out: int
    context: int
    p: float
    weights: dict
    xs: list
    what: str
    t: int | None = None  # the future probe changes the tokens after t ...
    changed: torch.Tensor | None = None  # ... of xs[0], into this
    too_long: tuple = ()  # inputs of more than context_length tokens
    window: int | None = None  # the swapped mask's window (kind "meta")
    train_seeds: tuple = ()  # torch.manual_seed before each train-mode forward


NOTES = {"extreme": " with integer weights (scores around 1e4)",
         "float64": ".to(torch.float64) on float64 input", "dropout": " in train mode",
         "meta": ".to('meta')"}


def _causal(case: Causal, seed: int) -> CausalCall:
    d_in, ctx = size(seed, case.d_in, 1), size(seed, case.context, 3)
    d_out = 4 if case.kind == "extreme" else size(seed, case.d_out, 2)  # sqrt(4): exact scores
    p = rate(seed, case.dropout, stream=0)
    xs = []
    for i, (b, n) in enumerate(case.sizes):
        n = tokens(seed, (1, ctx - 1) if n == "short" else n, ctx, 21 + 2 * i)
        xs.append(token_input(seed, (size(seed, b, 20 + 2 * i), n, d_in), i, case.kind))
    kwargs = {} if case.bias is None else {"qkv_bias": case.bias}
    if case.kind == "visible":
        args, kwargs = (d_in, d_out), {"context_length": ctx, "dropout": p, **kwargs}
    else:
        args = (d_in, d_out, ctx, p)
    t, changed, too_long, window, train_seeds = None, None, (), None, ()
    weights = qkv_weights(seed, d_in, d_out, bool(case.bias), case.kind == "extreme")
    if case.kind in ("visible", "future"):
        t = 2 if case.kind == "visible" else integer(seed, 0, xs[0].shape[1] - 2, 5)
        changed = future_changed(xs[0], t, seed)
        if case.kind == "future":
            changed = _moderate(changed, t, weights, d_out)
    if case.kind in ("visible", "errors"):
        too_long = (randn(seed, (1, ctx + 1, d_in), 40),)
    if case.kind == "errors":
        too_long += (randn(seed, (2, ctx + integer(seed, 2, 9, 4), d_in), 41),)
    if case.kind == "meta":
        window = mask_window(seed, xs[0].shape[1])
    if case.kind == "dropout":
        train_seeds = tuple(seed + 1 + i for i in range(len(xs)))
    return CausalCall(args, kwargs, seed, d_in, d_out, ctx, p, weights, xs,
                      call_text(CA, args, kwargs) + NOTES.get(case.kind, " in eval mode"),
                      t, changed, too_long, window, train_seeds)


def _moderate(changed: torch.Tensor, t: int, weights: dict, d_out: int) -> torch.Tensor:
    """``_common.moderate_future`` with the reference's scaled scores."""
    def scores(x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        q, k = (x @ weights[f"{name}.weight"].double().T for name in ("W_query", "W_key"))
        if "W_query.bias" in weights:
            q, k = q + weights["W_query.bias"].double(), k + weights["W_key.bias"].double()
        return q @ k.transpose(-1, -2) / d_out ** 0.5

    return moderate_future(changed, t, scores)


def _claims_no_bias(case: Causal) -> bool:
    """Whether a case asks that no projection has a bias: a key bias adds the same amount to
    every score of a query's row, so no output shows it and only this claim, judged next to
    the outputs, does."""
    return case.kind in ("visible", "eval") and not case.bias


def _buffers(module) -> dict:
    """The module's registered buffers, read with the unbound ``nn.Module`` method (a claim:
    the module's own ``named_buffers`` may be overridden)."""
    return dict(nn.Module.named_buffers(module))


def _observe_ca(student: Student, case: Causal, call: CausalCall) -> dict:
    module = student.build(CA, call.args, call.kwargs, weights=call.weights, seed=call.seed)
    seen = {}
    if case.kind == "dropout":
        for i, (x, train_seed) in enumerate(zip(call.xs, call.train_seeds, strict=True)):
            seen[f"out {i}"] = Student.attempt(lambda x=x, s=train_seed: forward(module, x, s))
        return seen
    module.eval()
    if _claims_no_bias(case):
        seen["no bias"] = Student.attempt(lambda: no_bias(module, QKV))
    if case.kind in ("visible", "meta"):  # structure facts, judged with behaviour in this case
        seen["mask buffer"] = Student.attempt(lambda: "mask" in _buffers(module))
        seen["dropout"] = Student.attempt(lambda: type(module.dropout).__name__)
    if case.kind == "meta":
        x = call.xs[0]
        seen["mask parameter"] = Student.attempt(
            lambda: "mask" in dict(nn.Module.named_parameters(module)))
        seen["mask shape"] = Student.attempt(lambda: list(_buffers(module)["mask"].shape))
        seen["mask dtype"] = Student.attempt(
            lambda: str(_buffers(module)["mask"].dtype).replace("torch.", ""))
        seen["swapped"] = Student.attempt(lambda: swapped_mask_forward(module, x, call.window))
        seen["dropout p"] = Student.attempt(lambda: module.dropout.p)
        seen["meta"] = Student.attempt(lambda: meta_forward(module, tuple(x.shape)))
        return seen
    if case.kind == "float64":
        module.to(torch.float64)
    for i, x in enumerate(call.xs):
        seen[f"out {i}"] = Student.attempt(lambda x=x: forward(module, x))
    if call.changed is not None:
        seen["changed"] = Student.attempt(lambda: forward(module, call.changed))
    for i, x in enumerate(call.too_long):
        seen[f"too long {i}"] = Student.attempt(lambda x=x: forward(module, x))
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


def _judge_outputs(verdict: Verdict, case: Causal, call: CausalCall) -> None:
    from autograder.reference.causal_masking import (
        eval_bugs,
        reference_causal_attention,
        reference_train_output,
        train_bugs,
    )

    float64 = case.kind == "float64"
    tolerance = EXTREME_TOLERANCE if case.kind == "extreme" else 2e-5
    weights, p = call.weights, call.p
    for i, x in enumerate(call.xs):
        n = x.shape[1]
        hint = ("weights = softmax(masked scores / sqrt(d_out)), hidden scores set to -inf, "
                "with the loaded W_query, W_key, W_value")
        if n < call.context:
            hint += (f"; with {n} < context_length = {call.context} tokens, slice the mask to "
                     "[:num_tokens, :num_tokens]")
        if case.kind == "dropout":
            train_seed = call.train_seeds[i]
            expected = reference_train_output(x, weights, p, train_seed)
            variants = lambda x=x, t=train_seed: train_bugs(x, weights, p, t)  # noqa: E731
            hint = ("apply self.dropout once, to the attention weights right after the softmax, "
                    "and to nothing else (self.dropout = nn.Dropout(dropout))")
            what = f"{call.what} after torch.manual_seed({train_seed})"
        else:
            expected = reference_causal_attention(x, weights)
            variants = lambda x=x: eval_bugs(x, weights)  # noqa: E731
            if p > 0:
                hint += ("; in eval mode self.dropout must do nothing (use nn.Dropout, not "
                         "F.dropout with training=True)")
            if float64:
                hint = ("after module.to(torch.float64) every parameter and buffer is float64: "
                        "are W_query, W_key, W_value registered nn.Linear modules, and is "
                        "nothing cast to float32?")
            if case.kind == "extreme":
                hint = STABLE_HINT
            if case.bias is None:
                hint += "; qkv_bias defaults to False: no projection has a bias"
            what = call.what
        what = f"{what} on x of shape {tuple(x.shape)}"
        if not verdict.array(f"out {i}", expected, what, atol=1e-10 if float64 else tolerance,
                             rtol=1e-9 if float64 else max(tolerance, 1e-4),
                             dtype="float64" if float64 else "float32", library="torch",
                             variants=variants, hint=hint):
            _explain(verdict, f"out {i}", what, n, call.context)


def _judge_ca(verdict: Verdict, case: Causal, call: CausalCall) -> None:
    from autograder.reference.causal_masking import reference_causal_attention

    if case.kind == "meta":
        _judge_meta(verdict, call)
        return
    _judge_outputs(verdict, case, call)
    if call.changed is not None:
        judge_causal(verdict, "out 0", "changed",
                     reference_causal_attention(call.changed, call.weights), call.t, call.what,
                     atol=2e-5, rtol=1e-4, dtype="float32", library="torch")
    if _claims_no_bias(case):
        judge_no_bias(verdict, call.what, QKV)
    for i, x in enumerate(call.too_long):
        verdict.raises(f"too long {i}", f"{call.what} on {x.shape[1]} tokens", "ValueError",
                       mentions="context_length")
    if case.kind == "visible":
        verdict.equal("mask buffer", True, f"{call.what}: 'mask' is among named_buffers()",
                      hint="register it with self.register_buffer('mask', ...)")
        verdict.equal("dropout", "Dropout", f"{call.what}: the type of self.dropout",
                      hint="self.dropout = nn.Dropout(dropout)")


def _judge_meta(verdict: Verdict, call: CausalCall) -> None:
    """The point rests on ``swapped``: the forward with the grader's mask swapped into the
    registered buffer, against the reference under that mask. The rest are claims the
    student's process reports (forgeable by code that recognises the probe: a forward that
    answers meta tensors on meta input, a fake buffer), judged only beside it."""
    from autograder.reference.causal_masking import reference_causal_attention

    x, what, window = call.xs[0], call.what, call.window
    b, n = x.shape[:2]
    verdict.array("swapped", reference_causal_attention(x, call.weights,
                                                        hidden=window_hidden(n, window)),
                  f"{what} with the grader's mask (each query sees itself and the {window} "
                  "keys before it) swapped into its registered 'mask' buffer, on x of shape "
                  f"{tuple(x.shape)}", atol=2e-5, rtol=1e-4, dtype="float32", library="torch",
                  hint=MASK_FOLLOWS_HINT)
    verdict.equal("meta", ["meta", b, n, call.d_out],
                  f"{what}: the device and shape of the output on a meta input of shape "
                  f"({b}, {n}, {call.d_in}) (a registered buffer moves with .to('meta'); a "
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
    verdict.equal("mask shape", [call.context, call.context],
                  f"{what}: the shape of the mask buffer",
                  hint="the buffer is (context_length, context_length); forward slices it")
    dtype = verdict.value("mask dtype", f"{what}: the dtype of the mask buffer", str)
    if dtype == "bool" or dtype.startswith(("float", "bfloat")):
        verdict.ok("mask dtype")
    else:
        verdict.fail(f"{what}: the mask buffer has dtype {dtype}; expected bool (or float 0/1)")
    verdict.equal("dropout", "Dropout", f"{what}: the type of self.dropout",
                  hint="self.dropout = nn.Dropout(dropout)")
    verdict.equal("dropout p", call.p, f"{what}: self.dropout.p",
                  hint="self.dropout = nn.Dropout(dropout)")


# CausalAttention may build its mask with causal_mask
causal_check = partial(Check, exercise=CA, inputs=_causal, observe=_observe_ca, judge=_judge_ca,
                       needs=(CM,))

causal_attention_basics = causal_check("causal_attention_basics", cases=[
    Causal("CausalAttention(3, 2, context_length=6, dropout=0.0), the visible calls",
           "visible", 3, 2, 6, 0.0, None, ((2, "context"), (2, 4))),
    Causal("CausalAttention of sizes drawn from the seed", "eval", (2, 6), (1, 6), (3, 9), 0.0,
           None, (((1, 3), "context"), ((1, 3), (1, 8)))),
    # what the visible cell also asserts: qkv_bias both ways, dropout off in eval mode,
    # scores around 1e4
    Causal("CausalAttention with qkv_bias=True and dropout, in eval mode", "eval", (3, 7),
           (2, 6), (5, 9), (0.2, 0.6), True, (((2, 3), "context"), ((1, 3), (2, 8)))),
    Causal("CausalAttention with qkv_bias=False", "eval", (2, 5), (5, 9), (4, 7), (0.3, 0.7),
           False, ((1, "context"), (1, (1, 3)))),
    Causal("CausalAttention with extreme scores", "extreme", (3, 6), 4, (4, 8), 0.0, True,
           (((1, 3), "context"), (1, (2, 8)))),
])

causal_attention_values = causal_check("causal_attention_values", cases=[
    Causal("CausalAttention with qkv_bias=True and dropout, in eval mode", "eval", (3, 7),
           (2, 6), (5, 9), (0.2, 0.6), True, (((2, 3), "context"), ((1, 3), (2, 8)))),
    Causal("CausalAttention with qkv_bias=False", "eval", (2, 5), (5, 9), (4, 7), (0.3, 0.7),
           False, ((1, "context"), (1, (1, 3)))),
    Causal("CausalAttention, default qkv_bias, one token", "eval", (2, 6), (2, 6), (2, 6), 0.0,
           None, (((1, 3), 1), ((1, 2), (2, 6)))),
    Causal("CausalAttention with extreme scores", "extreme", (3, 6), 4, (4, 8), 0.0, True,
           (((1, 3), "context"), (1, (2, 8)))),
    Causal("CausalAttention in float64", "float64", (2, 5), (2, 6), (3, 7), 0.0, True,
           (((1, 3), "context"), (1, (1, 6)))),
])

causal_attention_buffer = causal_check("causal_attention_buffer", blame=False, cases=[
    Causal("CausalAttention.to('meta') on context_length tokens", "meta", (2, 6), (2, 6),
           (3, 9), (0.05, 0.5), None, (((1, 3), "context"),)),
    Causal("CausalAttention.to('meta') on fewer tokens", "meta", (2, 6), (2, 6), (5, 10),
           (0.05, 0.5), True, (((1, 3), (1, 4)),)),
])

causal_attention_errors = causal_check("causal_attention_errors", blame=False, cases=[
    Causal("CausalAttention on too many tokens", "errors", (2, 5), (2, 5), (2, 8), 0.0, None,
           ((1, "context"),)),
    Causal("CausalAttention with qkv_bias on too many tokens", "errors", (2, 5), (2, 5), (1, 4),
           (0.1, 0.5), True, (((1, 2), "context"),)),
])

causal_attention_future = causal_check("causal_attention_future", cases=[
    Causal("CausalAttention: the future must not leak", "future", (2, 6), (2, 6), (6, 12), 0.0,
           None, (((1, 3), "context"),)),
    Causal("CausalAttention on fewer tokens than context_length", "future", (2, 6), (2, 6),
           (8, 12), 0.0, True, ((1, (3, 7)),)),
])

causal_attention_dropout = causal_check("causal_attention_dropout", cases=[
    Causal("CausalAttention with dropout", "dropout", (2, 5), (2, 6), (4, 8), (0.2, 0.6), None,
           (((1, 3), "context"),)),
    Causal("CausalAttention with dropout and qkv_bias=True", "dropout", (2, 5), (2, 6), (4, 8),
           (0.1, 0.5), True, ((1, "short"), ((2, 3), "context"))),
])
