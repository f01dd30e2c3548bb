"""Hidden checks for 05-multi-head-attention (split_heads, merge_heads, MultiHeadAttention).

Every input, size and weight is a pure function of (case, seed). ``MultiHeadAttention`` is
built with the grader's weights, loaded by the contract's attribute paths (``W_query.weight``,
``W_key.bias``, ``out_proj.bias``, ...); the judge rebuilds the same weights and computes the
expected outputs with ``F.scaled_dot_product_attention(is_causal=True)`` in float64
(cross-checked with ``nn.MultiheadAttention`` holding the same weights). Nothing the student
process reports about its weights or state_dict is used.

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
from typing import Any, Union

import numpy as np
import torch

from autograder import data
from autograder.checks import Check, Student, Verdict
from autograder.checks._common import (
    MASK_FOLLOWS_HINT,
    forward,
    future_changed,
    integer,
    judge_causal,
    linear,
    mask_window,
    meta_forward,
    randn,
    rate,
    size,
    swapped_mask_forward,
    tokens,
    window_hidden,
)

ASSIGNMENT = "05-multi-head-attention"
MHA = "MultiHeadAttention"
SPLIT = "split_heads"
MERGE = "merge_heads"
GPT2_PARAMETERS = 2_360_064
PROJECTIONS = ("W_query", "W_key", "W_value", "out_proj")

Size = Union[int, tuple]  # a fixed size, or (low, high) drawn from the seed


def _expect(verdict: Verdict, field: str, expected: np.ndarray, what: str, *, raised: str = "",
            nonfinite: str = "", shape: str = "", **compare: Any) -> bool:
    """``verdict.array`` with a likely cause when the call raised, gave another shape
    (``shape``) or gave NaN/inf."""
    found = verdict.raw(field, what)
    if raised and type(found) is data.Raised and found.type != "NotImplementedError":
        verdict.fail(f"{what} raised {found.type}: {found.message}. Likely cause: {raised}")
        return False
    if shape and isinstance(found, data.Array) and found.shape != expected.shape:
        verdict.fail(f"{what} has shape {found.shape}; expected {expected.shape}: {shape}")
        return False
    if nonfinite and isinstance(found, data.Array) and found.values is not None and \
            found.shape == expected.shape and found.values.dtype.kind == "f" and \
            not np.isfinite(found.values).all():
        verdict.fail(f"{what} contains NaN or inf: {nonfinite}")
        return False
    return verdict.array(field, expected, what, **compare)


# --- split_heads and merge_heads -----------------------------------------------------------

@dataclass(frozen=True)
class Heads:
    """``split_heads``/``merge_heads`` on a (b, n, num_heads * head_dim) tensor. ``toy``: the
    visible cell's tensor (token t, feature f -> 10t + f). ``error``: a last dim that
    ``num_heads`` does not divide (a valid call is made in the same case)."""

    label: str
    batch: Size = (1, 3)
    tokens: Size = (1, 6)
    heads: Size = (1, 5)
    head_dim: Size = (1, 5)
    toy: bool = False
    error: bool = False
    roundtrip: bool = False


def _heads_sizes(case: Heads, seed: int) -> tuple[int, int, int, int]:
    return (size(seed, case.batch, 1), size(seed, case.tokens, 2), size(seed, case.heads, 3),
            size(seed, case.head_dim, 4))


def _split_input(case: Heads, seed: int) -> tuple[torch.Tensor, int]:
    """(x of shape (b, n, h * hd), h)."""
    b, n, h, hd = _heads_sizes(case, seed)
    if case.toy:
        b, n, h, hd = 1, 3, 2, 2
        return (10 * torch.arange(n)[:, None] + torch.arange(h * hd))[None].float(), h
    return randn(seed, (b, n, h * hd), stream=1), h


def _bad_split(seed: int) -> tuple[torch.Tensor, int]:
    """An input whose last dim ``h`` does not divide."""
    h = integer(seed, 2, 5, 10)
    d = h * integer(seed, 1, 3, 11) + integer(seed, 1, h - 1, 12)
    return randn(seed, (integer(seed, 1, 2, 13), integer(seed, 1, 4, 14), d), stream=2), h


SPLIT_HINT = ("view as (b, n, num_heads, head_dim), then transpose(1, 2): viewing straight as "
              "(b, num_heads, n, head_dim) mixes tokens and features")


def _observe_split(student: Student, case: Heads, seed: int) -> dict:
    x, h = _split_input(case, seed)
    found = {"out": student.call(SPLIT, x, h)}
    if case.error:
        bad, h = _bad_split(seed)
        found["error"] = student.call(SPLIT, bad, h)
    return found


def _judge_split(verdict: Verdict, case: Heads, seed: int) -> None:
    from autograder.reference.multi_head_attention import split_heads

    x, h = _split_input(case, seed)
    b, n, d = x.shape
    verdict.array("out", split_heads(x, h).numpy(), f"{SPLIT}(x, {h}) for x of shape "
                  f"{tuple(x.shape)}", atol=0, rtol=0, dtype="float32", library="torch",
                  variants={"x.view(b, num_heads, n, head_dim) (no transpose)":
                            x.reshape(b, h, n, d // h).numpy(),
                            "x.view(b, n, num_heads, head_dim) (the transpose is missing)":
                            x.reshape(b, n, h, d // h).numpy()}, hint=SPLIT_HINT)
    if case.error:
        bad, h = _bad_split(seed)
        verdict.raises("error", f"{SPLIT}(x, {h}) for x of shape {tuple(bad.shape)} "
                       f"({bad.shape[-1]} % {h} != 0)", "ValueError")


def _split_check(grade_id: str, cases: list[Heads]) -> Check:
    check = Check(grade_id, exercise=SPLIT, cases=cases, label=lambda case: case.label)
    check.observe(_observe_split)
    check.judge(_judge_split)
    return check


split_basics = _split_check("split_basics", [
    Heads("the visible cell's toy tensor (1, 3, 4), 2 heads", toy=True),
    Heads("seeded sizes"),
])

split_contract = _split_check("split_contract", [
    Heads("seeded sizes", batch=(2, 3), tokens=(2, 7), heads=(2, 4), head_dim=(2, 4)),
    Heads("one token", tokens=1, heads=(2, 4)),
    Heads("one head", heads=1, tokens=(2, 6)),
    Heads("head_dim 1", heads=(2, 8), head_dim=1, tokens=(2, 6)),
    Heads("odd sizes", batch=(1, 3), tokens=(3, 7), heads=(3, 5), head_dim=(3, 5)),
    Heads("d % num_heads != 0 raises ValueError", error=True),
    Heads("d % num_heads != 0 raises ValueError (one token)", tokens=1, error=True),
])


MERGE_HINT = ("transpose back to (b, n, num_heads, head_dim) before reshaping to "
              "(b, n, num_heads * head_dim)")


def _merge_input(case: Heads, seed: int) -> torch.Tensor:
    """(b, h, n, hd); for a round trip, split_heads(x) by the formula (a non-contiguous view)."""
    if case.toy:
        return torch.tensor([[[[0.0, 1.0], [10.0, 11.0]], [[2.0, 3.0], [12.0, 13.0]]]])
    b, n, h, hd = _heads_sizes(case, seed)
    if case.roundtrip:
        return randn(seed, (b, n, h * hd), stream=3).view(b, n, h, hd).transpose(1, 2)
    return randn(seed, (b, h, n, hd), stream=3)


def _observe_merge(student: Student, case: Heads, seed: int) -> dict:
    return {"out": student.call(MERGE, _merge_input(case, seed))}


def _judge_merge(verdict: Verdict, case: Heads, seed: int) -> None:
    from autograder.reference.multi_head_attention import merge_heads

    x = _merge_input(case, seed)
    b, h, n, hd = x.shape
    if case.roundtrip:
        original = randn(seed, (b, n, h * hd), stream=3)
        verdict.array("out", original.numpy(), f"{MERGE}(split_heads(x, {h})) for x of shape "
                      f"{tuple(original.shape)}", atol=0, rtol=0, dtype="float32",
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


def _merge_check(grade_id: str, cases: list[Heads]) -> Check:
    check = Check(grade_id, exercise=MERGE, cases=cases, label=lambda case: case.label)
    check.observe(_observe_merge)
    check.judge(_judge_merge)
    return check


merge_basics = _merge_check("merge_basics", [
    Heads("the visible cell's (1, 2, 2, 2) heads", toy=True),
    Heads("seeded sizes", heads=(2, 4)),
])

merge_contract = _merge_check("merge_contract", [
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
class Case:
    """One MultiHeadAttention built and probed. ``bias`` ``None``: qkv_bias omitted (its
    default is exercised); a ``(low, high)`` dropout is drawn from the seed; ``tokens``:
    "any" (1..context_length), "context" (== context_length), or a size (clipped)."""

    label: str
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
    args: tuple
    kwargs: dict
    d_in: int
    d_out: int
    heads: int
    context: int
    dropout: float
    bias: bool
    x_shape: tuple
    t: int | None             # the causality probe keeps positions 0..t
    bad: tuple                # sizes that num_heads does not divide

    @property
    def call(self) -> str:
        shown = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{MHA}({', '.join(shown)})"

    @property
    def out_shape(self) -> tuple:
        return (*self.x_shape[:2], self.d_out)


def _resolve(case: Case, seed: int) -> Built:
    context = size(seed, case.context, 1)
    d_in = size(seed, case.d_in, 2)
    heads = size(seed, case.heads, 3)
    d_out = case.d_out if case.d_out is not None else heads * size(seed, case.head_dim, 4)
    batch = size(seed, case.batch, 5)
    num_tokens = tokens(seed, case.tokens, context)
    dropout = rate(seed, case.dropout)
    kwargs = {} if case.bias is None else {"qkv_bias": case.bias}
    t = integer(seed, 0, num_tokens - 2, 8) if num_tokens >= 2 else None
    bad_heads = integer(seed, 2, 5, 9)
    bad_d_out = bad_heads * integer(seed, 1, 3, 10) + integer(seed, 1, bad_heads - 1, 11)
    bad = (integer(seed, 2, 8, 12), bad_d_out, integer(seed, 3, 9, 13), 0.0, bad_heads)
    return Built((d_in, d_out, context, dropout, heads), kwargs, d_in, d_out, heads, context,
                 dropout, bool(case.bias), (batch, num_tokens, d_in), t, bad)


def _weights(built: Built, seed: int) -> dict:
    """The grader's weights by attribute path; out_proj always has a bias."""
    weights: dict = {}
    for stream, name in enumerate(PROJECTIONS):
        d_in = built.d_out if name == "out_proj" else built.d_in
        weights.update(linear(seed, name, d_in, built.d_out,
                              built.bias or name == "out_proj", stream=stream))
    return weights


def _input(built: Built, case: Case, seed: int) -> torch.Tensor:
    return randn(seed, built.x_shape, stream=1, scale=case.scale)





def _observe_mha(student: Student, case: Case, seed: int) -> dict:
    built = _resolve(case, seed)
    probes, found = case.probes, {}
    if "indivisible" in probes:  # before the valid build: an exception there ends the case
        found["indivisible"] = Student.attempt(lambda: student.get(MHA)(*built.bad))
    module = student.build(MHA, built.args, built.kwargs, weights=_weights(built, seed),
                           seed=seed)
    x = _input(built, case, seed)
    if "out" in probes or "shape" in probes:
        found["out"] = Student.attempt(lambda: forward(module, x))
    if "meta" in probes:  # the mask through behaviour: before .to() moves the module
        found["swapped"] = Student.attempt(lambda: swapped_mask_forward(
            module, x, mask_window(seed, built.x_shape[1])))
    if "future" in probes and built.t is not None:
        found["future"] = Student.attempt(lambda: forward(module, future_changed(x, built.t, seed)))
    if "train" in probes:
        found["train"] = Student.attempt(lambda: forward(module, x, train_seed=seed))
    if "long" in probes:
        long = randn(seed, (1, built.context + 1, built.d_in), stream=9)
        found["long"] = Student.attempt(lambda: forward(module, long))
    for name in ("d_out", "num_heads", "head_dim"):
        if name in probes:
            found[name] = Student.attempt(lambda name=name: getattr(module, name))
    if "params" in probes:
        found["params"] = Student.attempt(lambda: sum(
                p.numel() for p in torch.nn.Module.parameters(module)))
    if "f64" in probes:  # these two move the module: last
        found["f64"] = Student.attempt(lambda: forward(module.to(torch.float64), x.double()))
    if "meta" in probes:
        found["meta"] = Student.attempt(lambda: meta_forward(module, built.x_shape))
    return found


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


def _judge_mha(verdict: Verdict, case: Case, seed: int) -> None:
    from autograder.reference.multi_head_attention import mha_bugs, mha_forward, mha_torch

    built = _resolve(case, seed)
    probes, what = case.probes, built.call
    if "indivisible" in probes:
        bad = built.bad
        verdict.raises("indivisible", f"{MHA}{bad} ({bad[1]} % {bad[4]} != 0)", "ValueError")
    weights = _weights(built, seed)
    double = {k: v.double() for k, v in weights.items()}
    x = _input(built, case, seed)
    if "out" in probes:
        expected = mha_forward(x.double(), double, built.heads)
        if built.d_in == built.d_out and case.scale == 1.0:  # two references must agree
            independent = mha_torch(x, weights, built.heads).double()
            assert torch.allclose(expected, independent, atol=1e-4), "references disagree"
        variants = lambda x=x, double=double: {  # noqa: E731  (computed on failure only)
            k: v.numpy() for k, v in mha_bugs(x.double(), double, built.heads).items()}
        _expect(verdict, "out", expected.numpy(), f"{what}(x) for x of shape "
                     f"{built.x_shape}", atol=1e-5, rtol=1e-4, dtype="float32", library="torch",
                     variants=variants, hint=VALUE_HINT, shape=SHAPE_HINT, nonfinite=NAN_HINT)
        if "future" in probes and built.t is not None:
            changed = future_changed(x, built.t, seed)
            judge_causal(verdict, "out", "future",
                         mha_forward(changed.double(), double, built.heads).numpy(), built.t,
                         what, atol=1e-5, rtol=1e-4, dtype="float32", library="torch")
    if "shape" in probes:  # beside a required error: only that the module works at all
        verdict.array_of("out", built.out_shape, f"{what}(x) for x of shape {built.x_shape}",
                         hint=SHAPE_HINT)
        verdict.ok("out")
    if "train" in probes:
        expected = mha_forward(x, weights, built.heads, built.dropout, seed=seed)
        _expect(verdict, "train", expected.numpy(), f"{what} in train mode under "
                f"torch.manual_seed(seed) for x of shape {built.x_shape}", atol=1e-5,
                rtol=1e-4, dtype="float32", library="torch",
                hint="apply self.dropout once, to the attention weights of shape (b, "
                "num_heads, n, n) right after the softmax; nothing else draws random numbers")
    if "long" in probes:
        verdict.raises("long", f"{what} on {built.context + 1} tokens (context_length="
                       f"{built.context})", "ValueError")
    # claims: judged only beside the behaviour of the same case
    expected_attributes = {"d_out": built.d_out, "num_heads": built.heads,
                           "head_dim": built.d_out // built.heads}
    for name, value in expected_attributes.items():
        if name in probes:
            verdict.equal(name, value, f"{what}.{name}",
                          hint="head_dim = d_out // num_heads" if name == "head_dim" else "")
    if "params" in probes:
        bias = 3 * built.d_out if built.bias else 0
        count = 3 * built.d_in * built.d_out + bias + built.d_out * built.d_out + built.d_out
        found = verdict.value("params", f"the number of parameters of {what}", int)
        if found == count:
            verdict.ok("params")
        else:
            cause = GPT2_CAUSES.get(found, "") if count == GPT2_PARAMETERS else ""
            verdict.fail(f"{what} has {found:,} parameters; expected {count:,} (3 x {built.d_in}"
                         f" x {built.d_out} for W_query, W_key, W_value"
                         + (f" + 3 x {built.d_out} biases" if built.bias else "")
                         + f" + {built.d_out} x {built.d_out} + {built.d_out} for out_proj)"
                         + (f". Likely cause: {cause}" if cause else ""))
    if "f64" in probes:
        expected = mha_forward(x.double(), double, built.heads).numpy()
        scale = max(1.0, float(np.max(np.abs(expected))))
        extreme = f", inputs scaled by {case.scale:g}" if case.scale != 1.0 else ""
        _expect(verdict, "f64", expected, f"{what}.to(torch.float64)(x) for float64 x of shape "
                f"{built.x_shape}{extreme}", atol=1e-10 * scale, rtol=1e-9, dtype="float64",
                library="torch", hint=VALUE_HINT, shape=SHAPE_HINT, raised=REGISTERED_HINT,
                nonfinite="with scores around +-1e4 a softmax must subtract the row maximum "
                "before exp (torch.softmax does), and " + NAN_HINT)
    if "meta" in probes:
        n = built.x_shape[1]
        window = mask_window(seed, n)
        expected = mha_forward(x.double(), double, built.heads, hidden=window_hidden(n, window))
        _expect(verdict, "swapped", expected.numpy(), f"{what}(x) for x of shape "
                f"{built.x_shape} with the grader's mask (each query sees itself and the "
                f"{window} keys before it) swapped into its registered 'mask' buffer",
                atol=1e-5, rtol=1e-4, dtype="float32", library="torch", hint=MASK_FOLLOWS_HINT)
        found = verdict.raw("meta", what)
        meta_what = f"{what}.to('meta') then a forward on a meta tensor"
        if type(found) is data.Raised and found.type != "NotImplementedError":
            verdict.fail(f"{meta_what} raised {found.type}: {found.message}. Likely cause: "
                         f"{MASK_HINT}")
        else:
            verdict.equal("meta", ["meta", *built.out_shape], f"{meta_what}: [device, *shape]",
                          hint=MASK_HINT)


def _mha_check(grade_id: str, cases: list[Case]) -> Check:
    check = Check(grade_id, exercise=MHA, cases=cases, label=lambda case: case.label)
    check.observe(_observe_mha)
    check.judge(_judge_mha)
    return check


GPT2 = Case("GPT-2 small: MultiHeadAttention(768, 768, 1024, 0.0, 12)", d_in=768, heads=12,
            d_out=768, context=1024, batch=1, tokens=(2, 6), bias=False,
            probes=("out", "head_dim", "params"))

mha_basics = _mha_check("mha_basics", [
    Case("the visible cell's MultiHeadAttention(6, 4, 8, 0.0, 2) on (2, 5, 6)", d_in=6, heads=2,
         d_out=4, context=8, batch=2, tokens=5, probes=("out", "future", "head_dim")),
    Case("seeded sizes", tokens=(2, 10)),
    # what the visible cell also asserts: qkv_bias both ways, out_proj's bias, the mask
    # buffer, and large scores
    Case("registered weights and mask, qkv_bias=False", d_in=(3, 8), heads=(2, 3),
         head_dim=(2, 3), context=(4, 9), tokens=(2, 9), dropout=(0.05, 0.3), bias=False,
         probes=("out", "f64", "meta")),
    Case("registered weights and mask, qkv_bias=True", d_in=(2, 7), heads=(1, 3),
         head_dim=(1, 3), bias=True, probes=("out", "f64", "meta")),
    Case("scores around +-1e4 (inputs scaled by 60, float64)", d_in=(3, 6), heads=(2, 3),
         head_dim=(2, 3), context=(4, 8), bias=True, scale=60.0, probes=("f64",)),
])

mha_attributes = _mha_check("mha_attributes", [
    Case("registered weights and mask, qkv_bias=False", d_in=(3, 8), heads=(2, 3),
         head_dim=(2, 3), context=(4, 9), tokens="context", dropout=(0.05, 0.3), bias=False,
         probes=("out", "d_out", "num_heads", "head_dim", "params", "f64", "meta")),
    Case("registered weights and mask, qkv_bias=True", d_in=(2, 7), heads=(1, 3),
         head_dim=(1, 3), bias=True,
         probes=("out", "d_out", "num_heads", "head_dim", "params", "f64", "meta")),
    GPT2,
])

mha_values = _mha_check("mha_values", [
    Case("d_in == d_out, num_tokens == context_length", d_in=8, heads=2, d_out=8,
         context=(5, 9), batch=(2, 3), tokens="context"),
    Case("qkv_bias=True, num_tokens < context_length", d_in=8, heads=4, d_out=8,
         context=(7, 10), batch=3, tokens=(2, 6), bias=True),
    Case("d_in != d_out, batch of one", d_in=(3, 6), heads=3, head_dim=(2, 3), batch=1,
         tokens=(2, 10)),
    Case("one head, qkv_bias=True, odd sizes", d_in=(5, 9), heads=1, head_dim=(3, 9),
         tokens=(2, 10), bias=True),
    Case("one token, head_dim 1", d_in=(3, 6), heads=(4, 6), head_dim=1, tokens=1,
         probes=("out",)),
    Case("many heads of width 1 and 2", d_in=(4, 8), heads=(4, 6), head_dim=(1, 2),
         tokens=(2, 10)),
    Case("scores around +-1e4 (inputs scaled by 60, float64)", d_in=(3, 6), heads=(2, 3),
         head_dim=(2, 3), context=(4, 8), bias=True, scale=60.0, probes=("f64",)),
])

mha_dropout = _mha_check("mha_dropout", [
    Case("train-mode dropout on the attention weights", d_in=(4, 7), heads=(2, 3),
         head_dim=(2, 3), context=(5, 8), batch=2, tokens="context", dropout=(0.2, 0.7),
         probes=("out", "train")),
])

mha_errors = _mha_check("mha_errors", [
    Case("d_out % num_heads != 0 raises ValueError", probes=("indivisible", "shape")),
    Case("num_tokens > context_length raises ValueError", probes=("shape", "long")),
])
