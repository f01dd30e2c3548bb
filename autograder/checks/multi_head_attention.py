"""Hidden checks for 05-multi-head-attention (split_heads, merge_heads, MultiHeadAttention).

A table of typed cases per exercise; one ``inputs`` per exercise builds a case's sizes,
tensors and weights from the case and its seed (once with the student's code, once with the
reference). ``MultiHeadAttention`` is built with the grader's weights, loaded by the
contract's attribute paths (``W_query.weight``, ``W_key.bias``, ``out_proj.bias``, ...); the
judge computes the expected outputs with ``F.scaled_dot_product_attention(is_causal=True)``
in float64 (cross-checked with ``nn.MultiheadAttention`` holding the same weights). Nothing
the student process reports about its weights or state_dict is used. ``MultiHeadAttention``
may call ``split_heads`` and ``merge_heads`` (the exercise allows it): it ``needs`` them.

Structure is judged through behaviour: ``.to(torch.float64)`` must give the float64 reference
(W_query, W_key, W_value, out_proj registered), ``.to("meta")`` must keep a forward on the
meta device (``mask`` registered as a buffer), train-mode dropout must match one
``nn.Dropout`` call on the attention weights under the same ``torch.manual_seed``. The
attributes ``d_out``, ``num_heads``, ``head_dim`` and the parameter counts (2,360,064 for
GPT-2 small) are claims: each is judged only in a case whose outputs are judged too.

Points and claims (spec section 6): every point rests on answers compared with the reference
(the answer on the changed future too: causality only names the bug). The mask buffer is
judged by behaviour: with the grader's windowed mask swapped into the registered ``mask``
buffer, the output must be the reference's under that mask. Claims, read with unbound
``nn.Module`` methods or plain attributes and judged beside passing outputs, forgeable by a
determined student: ``d_out``, ``num_heads``, ``head_dim``, the parameter count
(``mha_attributes``, 2 points, whose outputs, float64 forward and swapped-mask forward are
judged too; ``mha_basics``' visible case judges ``head_dim``) and the meta-device forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from autograder.checks import Case, Check, Student, Verdict
from autograder.checks._common import (
    Size,
    attention_weights,
    call_text,
    expect,
    future_changed,
    integer,
    judge_causal,
    judge_float64,
    judge_mask_buffer,
    mask_window,
    probe_module,
    randn,
    rate,
    size,
    tokens,
    window_hidden,
)

ASSIGNMENT = "05-multi-head-attention"
MHA = "MultiHeadAttention"
SPLIT = "split_heads"
MERGE = "merge_heads"
GPT2_PARAMETERS = 2_360_064


# --- split_heads and merge_heads -----------------------------------------------------------

@dataclass(frozen=True)
class Heads(Case):
    """``split_heads``/``merge_heads`` on a (b, n, num_heads * head_dim) tensor of sizes drawn
    from the seed. ``toy``: the visible cell's tensor (token t, feature f -> 10t + f).
    ``error``: also a last dim that ``num_heads`` does not divide (split). ``roundtrip``: the
    input is ``split_heads(x)`` by the formula, a non-contiguous view (merge)."""

    batch: Size = (1, 3)
    tokens: Size = (1, 6)
    heads: Size = (1, 5)
    head_dim: Size = (1, 5)
    toy: bool = False
    error: bool = False
    roundtrip: bool = False


def _sizes(case: Heads, seed: int) -> tuple[int, int, int, int]:
    return (size(seed, case.batch, 1), size(seed, case.tokens, 2), size(seed, case.heads, 3),
            size(seed, case.head_dim, 4))


@dataclass(frozen=True)
class SplitCall:
    x: torch.Tensor
    heads: int
    bad: torch.Tensor | None  # error cases: a last dim that bad_heads does not divide
    bad_heads: int = 0


def _split(case: Heads, seed: int) -> SplitCall:
    if case.toy:
        x, h = (10 * torch.arange(3)[:, None] + torch.arange(4))[None].float(), 2
    else:
        b, n, h, hd = _sizes(case, seed)
        x = randn(seed, (b, n, h * hd), stream=1)
    if not case.error:
        return SplitCall(x, h, None)
    bad_heads = integer(seed, 2, 5, 10)
    d = bad_heads * integer(seed, 1, 3, 11) + integer(seed, 1, bad_heads - 1, 12)
    bad = randn(seed, (integer(seed, 1, 2, 13), integer(seed, 1, 4, 14), d), stream=2)
    return SplitCall(x, h, bad, bad_heads)


SPLIT_HINT = ("view as (b, n, num_heads, head_dim), then transpose(1, 2): viewing straight as "
              "(b, num_heads, n, head_dim) mixes tokens and features")


def _observe_split(student: Student, case: Heads, call: SplitCall) -> dict:
    found = {"out": student.call(SPLIT, call.x, call.heads)}
    if call.bad is not None:
        found["error"] = student.call(SPLIT, call.bad, call.bad_heads)
    return found


def _judge_split(verdict: Verdict, case: Heads, call: SplitCall) -> None:
    from autograder.reference.multi_head_attention import split_heads

    x, h = call.x, call.heads
    b, n, d = x.shape
    verdict.array("out", split_heads(x, h).numpy(), f"{SPLIT}(x, {h}) for x of shape "
                  f"{tuple(x.shape)}", atol=0, rtol=0, dtype="float32", library="torch",
                  variants={"x.view(b, num_heads, n, head_dim) (no transpose)":
                            x.reshape(b, h, n, d // h).numpy(),
                            "x.view(b, n, num_heads, head_dim) (the transpose is missing)":
                            x.reshape(b, n, h, d // h).numpy()}, hint=SPLIT_HINT)
    if call.bad is not None:
        bad, h = call.bad, call.bad_heads
        verdict.raises("error", f"{SPLIT}(x, {h}) for x of shape {tuple(bad.shape)} "
                       f"({bad.shape[-1]} % {h} != 0)", "ValueError")


split_check = partial(Check, exercise=SPLIT, inputs=_split, observe=_observe_split,
                      judge=_judge_split)

split_basics = split_check("split_basics", cases=[
    Heads("the visible cell's toy tensor (1, 3, 4), 2 heads", toy=True),
    Heads("seeded sizes"),
])

# blame=False: its values at these sizes are split_basics' too, and failing it alone is most
# often the missing ValueError, which says nothing of what MultiHeadAttention computes with it
split_contract = split_check("split_contract", blame=False, cases=[
    Heads("seeded sizes", batch=(2, 3), tokens=(2, 7), heads=(2, 4), head_dim=(2, 4)),
    Heads("one token", tokens=1, heads=(2, 4)),
    Heads("one head", heads=1, tokens=(2, 6)),
    Heads("head_dim 1", heads=(2, 8), head_dim=1, tokens=(2, 6)),
    Heads("odd sizes", batch=(1, 3), tokens=(3, 7), heads=(3, 5), head_dim=(3, 5)),
    Heads("d % num_heads != 0 raises ValueError", error=True),
    Heads("d % num_heads != 0 raises ValueError (one token)", tokens=1, error=True),
])


@dataclass(frozen=True)
class MergeCall:
    x: torch.Tensor                 # (b, h, n, hd)
    original: torch.Tensor | None   # round trip: x is split_heads(original) by the formula


def _merge(case: Heads, seed: int) -> MergeCall:
    if case.toy:
        return MergeCall(torch.tensor([[[[0.0, 1.0], [10.0, 11.0]], [[2.0, 3.0], [12.0, 13.0]]]]),
                         None)
    b, n, h, hd = _sizes(case, seed)
    if case.roundtrip:
        original = randn(seed, (b, n, h * hd), stream=3)
        return MergeCall(original.view(b, n, h, hd).transpose(1, 2), original)
    return MergeCall(randn(seed, (b, h, n, hd), stream=3), None)


MERGE_HINT = ("transpose back to (b, n, num_heads, head_dim) before reshaping to "
              "(b, n, num_heads * head_dim)")


def _observe_merge(student: Student, case: Heads, call: MergeCall) -> dict:
    return {"out": student.call(MERGE, call.x)}


def _judge_merge(verdict: Verdict, case: Heads, call: MergeCall) -> None:
    from autograder.reference.multi_head_attention import merge_heads

    x = call.x
    b, h, n, hd = x.shape
    if call.original is not None:  # against the original x: the round trip only names it
        verdict.array("out", call.original.numpy(), f"{MERGE}(split_heads(x, {h})) for x of "
                      f"shape {tuple(call.original.shape)}", atol=0, rtol=0, dtype="float32",
                      library="torch", hint="merge_heads must undo split_heads exactly (its "
                      "input is a non-contiguous view: use reshape, or contiguous() before view)")
        return
    verdict.array("out", merge_heads(x).numpy(), f"{MERGE}(x) for x of shape {tuple(x.shape)}",
                  atol=0, rtol=0, dtype="float32", library="torch",
                  variants={"x.reshape(b, n, h * head_dim) without the transpose":
                            x.reshape(b, n, h * hd).numpy(),
                            "x.permute(0, 2, 3, 1) (head_dim before heads)":
                            x.permute(0, 2, 3, 1).reshape(b, n, h * hd).numpy()},
                  hint=MERGE_HINT)


merge_check = partial(Check, exercise=MERGE, inputs=_merge, observe=_observe_merge,
                      judge=_judge_merge)

merge_basics = merge_check("merge_basics", cases=[
    Heads("the visible cell's (1, 2, 2, 2) heads", toy=True),
    Heads("seeded sizes", heads=(2, 4)),
])

merge_contract = merge_check("merge_contract", cases=[
    Heads("seeded sizes", batch=(2, 3), tokens=(2, 6), heads=(2, 4), head_dim=(2, 5)),
    Heads("one token", tokens=1, heads=(2, 4)),
    Heads("head_dim 1", heads=(2, 6), head_dim=1, tokens=(2, 5)),
    Heads("one head", heads=1, tokens=(2, 5)),
    Heads("merge_heads(split_heads(x)) == x", heads=(2, 5), roundtrip=True),
    Heads("merge_heads(split_heads(x)) == x, head_dim 1", heads=(2, 7), head_dim=1,
          roundtrip=True),
    Heads("merge_heads(split_heads(x)) == x, one head", heads=1, roundtrip=True),
])


# --- MultiHeadAttention ---------------------------------------------------------------------

@dataclass(frozen=True)
class Attention(Case):
    """One MultiHeadAttention built and probed (``probes``: what ``probe_module`` asks, and
    "indivisible": a ``d_out`` that ``num_heads`` does not divide). ``bias`` ``None``:
    qkv_bias omitted (its default is exercised); a ``(low, high)`` dropout is drawn from the
    seed; ``tokens``: "any" (1..context_length), "context" (== context_length), or a size
    (clipped)."""

    d_in: Size = (2, 9)
    heads: Size = (1, 4)
    head_dim: Size = (1, 4)
    context: Size = (3, 10)
    batch: Size = (1, 3)
    tokens: Any = "any"
    dropout: Any = 0.0
    bias: bool | None = None
    scale: float = 1.0        # of the inputs: 60 makes the scores reach about +-1e4
    probes: tuple = ("out", "future")
    d_out: int | None = None  # fixed d_out (then head_dim = d_out // heads)


@dataclass(frozen=True)
class Built:
    """A case resolved for one seed: the module's arguments, the grader's weights, the
    inputs of every probe."""

    args: tuple
    kwargs: dict
    d_in: int
    d_out: int
    heads: int
    context: int
    dropout: float
    bias: bool
    seed: int                 # torch.manual_seed of the build and of train mode
    weights: dict             # by attribute path; out_proj always has a bias
    x: torch.Tensor
    t: int | None             # the causality probe keeps positions 0..t
    future: torch.Tensor | None  # x with the tokens after t changed
    long: torch.Tensor | None  # context_length + 1 tokens
    window: int               # of the grader's mask swapped into the buffer
    bad: tuple                # arguments whose d_out num_heads does not divide

    @property
    def call(self) -> str:
        return call_text(MHA, self.args, self.kwargs)

    @property
    def x_shape(self) -> tuple:
        return tuple(self.x.shape)

    @property
    def out_shape(self) -> tuple:
        return (*self.x_shape[:2], self.d_out)


def _attention(case: Attention, seed: int) -> Built:
    context = size(seed, case.context, 1)
    d_in = size(seed, case.d_in, 2)
    heads = size(seed, case.heads, 3)
    d_out = case.d_out if case.d_out is not None else heads * size(seed, case.head_dim, 4)
    batch = size(seed, case.batch, 5)
    num_tokens = tokens(seed, case.tokens, context)
    dropout = rate(seed, case.dropout)
    t = integer(seed, 0, num_tokens - 2, 8) if num_tokens >= 2 else None
    bad_heads = integer(seed, 2, 5, 9)
    bad_d_out = bad_heads * integer(seed, 1, 3, 10) + integer(seed, 1, bad_heads - 1, 11)
    bad = (integer(seed, 2, 8, 12), bad_d_out, integer(seed, 3, 9, 13), 0.0, bad_heads)
    weights = attention_weights(seed, d_in, d_out, case.bias)
    x = randn(seed, (batch, num_tokens, d_in), stream=1, scale=case.scale)
    return Built((d_in, d_out, context, dropout, heads),
                 {} if case.bias is None else {"qkv_bias": case.bias}, d_in, d_out, heads,
                 context, dropout, bool(case.bias), seed, weights, x, t,
                 future_changed(x, t, seed) if t is not None and "future" in case.probes else None,
                 randn(seed, (1, context + 1, d_in), stream=9) if "long" in case.probes else None,
                 mask_window(seed, num_tokens), bad)


def _observe_mha(student: Student, case: Attention, built: Built) -> dict:
    found = {}
    if "indivisible" in case.probes:  # before the valid build: an exception there ends the case
        found["indivisible"] = Student.attempt(lambda: student.get(MHA)(*built.bad))
    module = student.build(MHA, built.args, built.kwargs, weights=built.weights, seed=built.seed)
    return found | probe_module(module, built.x, case.probes, window=built.window,
                                future=built.future, train_seed=built.seed, long=built.long,
                                attributes=("d_out", "num_heads", "head_dim"))


SHAPE_HINT = ("is head_dim = d_out // num_heads? Each head must get d_out // num_heads "
              "features (with d_out features per head the output has num_heads * d_out, as in "
              "the published [8, 1024, 9216] bug), and out_proj maps d_out to d_out")

VALUE_HINT = ("check the scale 1 / sqrt(head_dim), the causal mask sliced to [:n, :n], the "
              "view (b, n, num_heads, head_dim) + transpose(1, 2) and back, and out_proj")

REGISTERED_HINT = ("W_query, W_key, W_value (nn.Linear(d_in, d_out, bias=qkv_bias)) and "
                   "out_proj (nn.Linear(d_out, d_out)) must be attributes of the module, so that "
                   ".to() converts them and nothing else holds weights")

MASK_HINT = ("register the causal mask with self.register_buffer('mask', ...): a plain tensor "
             "attribute stays behind when the module moves (.to(device))")

NAN_HINT = ("a softmax row where every key is hidden gives NaN; the mask must hide only the "
            "future (torch.triu(..., diagonal=1)), never a token's own position")

GPT2_CAUSES = {
    21_233_664 + 590_592: "W_query/W_key/W_value have num_heads * d_out outputs (d_out not "
                          "divided by num_heads)",
    2_359_296: "out_proj has no bias (it should be nn.Linear(d_out, d_out))",
    1_769_472: "out_proj is missing",
}


def _judge_params(verdict: Verdict, built: Built) -> None:
    """A claim (the unbound ``nn.Module.parameters``), judged beside the case's outputs."""
    what, d_in, d_out = built.call, built.d_in, built.d_out
    count = 3 * d_in * d_out + (3 * d_out if built.bias else 0) + d_out * d_out + d_out
    found = verdict.value("params", f"the number of parameters of {what}", int)
    if found == count:
        verdict.ok("params")
        return
    cause = GPT2_CAUSES.get(found, "") if count == GPT2_PARAMETERS else ""
    verdict.fail(f"{what} has {found:,} parameters; expected {count:,} (3 x {d_in} x {d_out} "
                 "for W_query, W_key, W_value" + (f" + 3 x {d_out} biases" if built.bias else "")
                 + f" + {d_out} x {d_out} + {d_out} for out_proj)"
                 + (f". Likely cause: {cause}" if cause else ""))


def _judge_mha(verdict: Verdict, case: Attention, built: Built) -> None:
    from autograder.reference.multi_head_attention import mha_bugs, mha_forward, mha_torch

    probes, what, x, heads = case.probes, built.call, built.x, built.heads
    on_x = f"{what}(x) for x of shape {built.x_shape}"
    if "indivisible" in probes:
        bad = built.bad
        verdict.raises("indivisible", f"{MHA}{bad} ({bad[1]} % {bad[4]} != 0)", "ValueError")
    double = {k: v.double() for k, v in built.weights.items()}
    if "out" in probes:
        expected = mha_forward(x.double(), double, heads)
        if built.d_in == built.d_out and case.scale == 1.0:  # two references must agree
            independent = mha_torch(x, built.weights, heads).double()
            assert torch.allclose(expected, independent, atol=1e-4), "references disagree"
        variants = lambda: {  # noqa: E731  (computed on failure only)
            k: v.numpy() for k, v in mha_bugs(x.double(), double, heads).items()}
        expect(verdict, "out", expected.numpy(), on_x, atol=1e-5, rtol=1e-4, dtype="float32",
               library="torch", variants=variants, hint=VALUE_HINT, shape=SHAPE_HINT,
               nonfinite=NAN_HINT)
        if "future" in probes and built.t is not None:
            judge_causal(verdict, "out", "future",
                         mha_forward(built.future.double(), double, heads).numpy(), built.t,
                         what, atol=1e-5, rtol=1e-4, dtype="float32", library="torch")
    if "shape" in probes:  # beside a required error: only that the module works at all
        verdict.array_of("out", built.out_shape, on_x, hint=SHAPE_HINT)
        verdict.ok("out")
    if "train" in probes:
        expected = mha_forward(x, built.weights, heads, built.dropout, seed=built.seed)
        expect(verdict, "train", expected.numpy(), f"{what} in train mode under "
               f"torch.manual_seed(seed) for x of shape {built.x_shape}", atol=1e-5, rtol=1e-4,
               dtype="float32", library="torch",
               hint="apply self.dropout once, to the attention weights of shape (b, "
               "num_heads, n, n) right after the softmax; nothing else draws random numbers")
    if "long" in probes:
        verdict.raises("long", f"{what} on {built.context + 1} tokens (context_length="
                       f"{built.context})", "ValueError")
    # claims: judged only beside the behaviour of the same case
    for name, value in (("d_out", built.d_out), ("num_heads", heads),
                        ("head_dim", built.d_out // heads)):
        if name in probes:
            verdict.equal(name, value, f"{what}.{name}",
                          hint="head_dim = d_out // num_heads" if name == "head_dim" else "")
    if "params" in probes:
        _judge_params(verdict, built)
    if "f64" in probes:
        judge_float64(verdict, mha_forward(x.double(), double, heads).numpy(), what,
                      built.x_shape, case.scale, hint=VALUE_HINT, shape=SHAPE_HINT,
                      raised=REGISTERED_HINT, nonfinite="with scores around +-1e4 a softmax "
                      "must subtract the row maximum before exp (torch.softmax does), and "
                      + NAN_HINT)
    if "meta" in probes:
        hidden = window_hidden(built.x_shape[1], built.window)
        judge_mask_buffer(verdict, mha_forward(x.double(), double, heads, hidden=hidden).numpy(),
                          what, built.x_shape, built.out_shape, built.window, MASK_HINT)


# blame: nothing in this chapter calls MultiHeadAttention; mha_attributes and mha_errors
# judge claims and errors, not values
mha_check = partial(Check, exercise=MHA, inputs=_attention, observe=_observe_mha,
                    judge=_judge_mha, needs=(SPLIT, MERGE))

GPT2 = Attention("GPT-2 small: MultiHeadAttention(768, 768, 1024, 0.0, 12)", d_in=768,
                 heads=12, d_out=768, context=1024, batch=1, tokens=(2, 6), bias=False,
                 probes=("out", "head_dim", "params"))

mha_basics = mha_check("mha_basics", cases=[
    Attention("the visible cell's MultiHeadAttention(6, 4, 8, 0.0, 2) on (2, 5, 6)", d_in=6,
              heads=2, d_out=4, context=8, batch=2, tokens=5, probes=("out", "future", "head_dim")),
    Attention("seeded sizes", tokens=(2, 10)),
    # what the visible cell also asserts: qkv_bias both ways, out_proj's bias, the mask
    # buffer, and large scores
    Attention("registered weights and mask, qkv_bias=False", d_in=(3, 8), heads=(2, 3),
              head_dim=(2, 3), context=(4, 9), tokens=(2, 9), dropout=(0.05, 0.3), bias=False,
              probes=("out", "f64", "meta")),
    Attention("registered weights and mask, qkv_bias=True", d_in=(2, 7), heads=(1, 3),
              head_dim=(1, 3), bias=True, probes=("out", "f64", "meta")),
    Attention("scores around +-1e4 (inputs scaled by 60, float64)", d_in=(3, 6), heads=(2, 3),
              head_dim=(2, 3), context=(4, 8), bias=True, scale=60.0, probes=("f64",)),
])

mha_attributes = mha_check("mha_attributes", blame=False, cases=[
    Attention("registered weights and mask, qkv_bias=False", d_in=(3, 8), heads=(2, 3),
              head_dim=(2, 3), context=(4, 9), tokens="context", dropout=(0.05, 0.3), bias=False,
              probes=("out", "d_out", "num_heads", "head_dim", "params", "f64", "meta")),
    Attention("registered weights and mask, qkv_bias=True", d_in=(2, 7), heads=(1, 3),
              head_dim=(1, 3), bias=True,
              probes=("out", "d_out", "num_heads", "head_dim", "params", "f64", "meta")),
    GPT2,
])

mha_values = mha_check("mha_values", cases=[
    Attention("d_in == d_out, num_tokens == context_length", d_in=8, heads=2, d_out=8,
              context=(5, 9), batch=(2, 3), tokens="context"),
    Attention("qkv_bias=True, num_tokens < context_length", d_in=8, heads=4, d_out=8,
              context=(7, 10), batch=3, tokens=(2, 6), bias=True),
    Attention("d_in != d_out, batch of one", d_in=(3, 6), heads=3, head_dim=(2, 3), batch=1,
              tokens=(2, 10)),
    Attention("one head, qkv_bias=True, odd sizes", d_in=(5, 9), heads=1, head_dim=(3, 9),
              tokens=(2, 10), bias=True),
    Attention("one token, head_dim 1", d_in=(3, 6), heads=(4, 6), head_dim=1, tokens=1,
              probes=("out",)),
    Attention("many heads of width 1 and 2", d_in=(4, 8), heads=(4, 6), head_dim=(1, 2),
              tokens=(2, 10)),
    Attention("scores around +-1e4 (inputs scaled by 60, float64)", d_in=(3, 6), heads=(2, 3),
              head_dim=(2, 3), context=(4, 8), bias=True, scale=60.0, probes=("f64",)),
])

mha_dropout = mha_check("mha_dropout", cases=[
    Attention("train-mode dropout on the attention weights", d_in=(4, 7), heads=(2, 3),
              head_dim=(2, 3), context=(5, 8), batch=2, tokens="context", dropout=(0.2, 0.7),
              probes=("out", "train")),
])

mha_errors = mha_check("mha_errors", blame=False, cases=[
    # fewer tokens than context_length: the shapes also show an unsliced mask, for every seed
    Attention("d_out % num_heads != 0 raises ValueError", tokens="short",
              probes=("indivisible", "shape")),
    Attention("num_tokens > context_length raises ValueError", tokens="short",
              probes=("shape", "long")),
])
