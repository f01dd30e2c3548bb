"""Hidden checks for 04-stacking-heads (MultiHeadAttentionWrapper, StackedCausalAttention).

Every case builds the student's module with the grader's weights, loaded by the contract's
attribute paths (``heads.1.W_key.weight``, ``layers.0.W_value.bias``), and asks for answers
only: outputs on inputs drawn from the case's seed. The judge rebuilds the same weights and
inputs from (case, seed) and computes the expected outputs with an independent functional
reference (``F.scaled_dot_product_attention(is_causal=True)``, in float64).

Structure is judged through behaviour: after ``.to(torch.float64)`` the output must match
the float64 reference (every head or layer registered), after ``.to("meta")`` a forward must
stay on the meta device (masks registered as buffers), train-mode dropout must match one
``nn.Dropout`` per head or layer under the same ``torch.manual_seed``, ``context_length``
must reach every head (a forward on one token too many raises). The parameter count is a
claim of the student process; it is only judged in a case whose behaviour is judged too.

Points and claims (spec section 6): every point rests on answers compared with the reference
(the answer on the changed future too: causality only names the bug). The masks are judged
by behaviour: with the grader's windowed mask swapped into every registered ``*.mask``
buffer (found with the unbound ``nn.Module.named_buffers``) the output must be the
reference's under that mask. Claims, judged only beside passing outputs of the same case and
forgeable by code that recognises the probe: the parameter count (read with the unbound
``nn.Module.parameters``) and the meta-device forward (``wrapper_structure``,
``stacked_structure``).
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

ASSIGNMENT = "04-stacking-heads"
WRAP = "MultiHeadAttentionWrapper"
STACK = "StackedCausalAttention"
PROJECTIONS = ("W_query", "W_key", "W_value")

Size = Union[int, tuple]  # a fixed size, or (low, high) drawn from the seed


@dataclass(frozen=True)
class Case:
    """One module built and probed. ``dropout``/``bias`` ``None``: the argument is omitted
    (its default is exercised); a ``(low, high)`` dropout is drawn from the seed. ``tokens``:
    "any" (1..context_length), "context" (== context_length), or a size (clipped)."""

    label: str
    d_in: Size = (2, 8)       # d_model for the stack
    d_out: Size = (1, 6)      # the wrapper only
    context: Size = (3, 10)
    count: Size = (1, 4)      # num_heads / num_layers
    batch: Size = (1, 3)
    tokens: Any = "any"
    dropout: Any = 0.0
    bias: bool | None = None
    scale: float = 1.0        # of the inputs: 60 makes the scores reach about +-1e4
    probes: tuple = ("out", "future")


@dataclass(frozen=True)
class Built:
    """A case resolved for one seed."""

    name: str
    args: tuple
    kwargs: dict
    prefix: str               # "heads" or "layers"
    d_in: int
    d_out: int
    context: int
    count: int
    dropout: float
    bias: bool
    x_shape: tuple
    t: int | None             # the causality probe keeps positions 0..t

    @property
    def call(self) -> str:
        shown = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(shown)})"

    @property
    def out_shape(self) -> tuple:
        width = self.count * self.d_out if self.prefix == "heads" else self.d_out
        return (*self.x_shape[:2], width)


def _resolve(name: str, case: Case, seed: int) -> Built:
    context = size(seed, case.context, 1)
    d_in = size(seed, case.d_in, 2)
    d_out = size(seed, case.d_out, 3) if name == WRAP else d_in
    count = size(seed, case.count, 4)
    batch = size(seed, case.batch, 5)
    num_tokens = tokens(seed, case.tokens, context)
    dropout = rate(seed, case.dropout)
    kwargs: dict = {}
    if name == WRAP:
        args, prefix = (d_in, d_out, context, dropout, count), "heads"
    else:
        args, prefix = (d_in, context, count), "layers"
        if dropout is not None:
            kwargs["dropout"] = dropout
    if case.bias is not None:
        kwargs["qkv_bias"] = case.bias
    t = integer(seed, 0, num_tokens - 2, 8) if num_tokens >= 2 else None
    return Built(name, args, kwargs, prefix, d_in, d_out, context, count,
                 0.0 if dropout is None else dropout, bool(case.bias), (batch, num_tokens, d_in), t)


def _weights(built: Built, seed: int) -> dict:
    """The grader's weights, by attribute path: one nn.Linear per projection and head."""
    weights: dict = {}
    for i in range(built.count):
        for j, projection in enumerate(PROJECTIONS):
            weights.update(linear(seed, f"{built.prefix}.{i}.{projection}", built.d_in,
                                  built.d_out, built.bias, stream=3 * i + j))
    return weights


def _input(built: Built, case: Case, seed: int) -> torch.Tensor:
    return randn(seed, built.x_shape, stream=1, scale=case.scale)





def _observe(name: str):
    def observe(student: Student, case: Case, seed: int) -> dict:
        built = _resolve(name, case, seed)
        module = student.build(name, built.args, built.kwargs, weights=_weights(built, seed),
                               seed=seed)
        x = _input(built, case, seed)
        probes, found = case.probes, {}
        if "out" in probes:
            found["out"] = Student.attempt(lambda: forward(module, x))
        if "meta" in probes:  # the mask through behaviour: before .to() moves the module
            found["swapped"] = Student.attempt(lambda: swapped_mask_forward(
                module, x, mask_window(seed, built.x_shape[1])))
        if "future" in probes and built.t is not None:
            found["future"] = Student.attempt(lambda: forward(module,
                                                               future_changed(x, built.t, seed)))
        if "train" in probes:
            found["train"] = Student.attempt(lambda: forward(module, x, train_seed=seed))
        if "long" in probes:
            long = randn(seed, (1, built.context + 1, built.d_in), stream=9)
            found["long"] = Student.attempt(lambda: forward(module, long))
        if "params" in probes:
            found["params"] = Student.attempt(lambda: sum(
                p.numel() for p in torch.nn.Module.parameters(module)))
        if "f64" in probes:  # these two move the module: last
            found["f64"] = Student.attempt(lambda: forward(module.to(torch.float64), x.double()))
        if "meta" in probes:
            found["meta"] = Student.attempt(lambda: meta_forward(module, built.x_shape))
        return found
    return observe


# --- judging -----------------------------------------------------------------------------------

def _expect(verdict: Verdict, field: str, expected: np.ndarray, what: str, *, raised: str = "",
            nonfinite: str = "", **compare: Any) -> bool:
    """``verdict.array`` with a likely cause when the call raised or gave NaN/inf."""
    found = verdict.raw(field, what)
    if raised and type(found) is data.Raised and found.type != "NotImplementedError":
        verdict.fail(f"{what} raised {found.type}: {found.message}. Likely cause: {raised}")
        return False
    if nonfinite and isinstance(found, data.Array) and found.values is not None and \
            found.shape == expected.shape and found.values.dtype.kind == "f" and \
            not np.isfinite(found.values).all():
        verdict.fail(f"{what} contains NaN or inf: {nonfinite}")
        return False
    return verdict.array(field, expected, what, **compare)


def _expected(built: Built, layers: list[dict], x: torch.Tensor, dropout: float = 0.0,
              seed: int | None = None) -> torch.Tensor:
    from autograder.reference.stacking_heads import stacked, wrapper

    run = wrapper if built.prefix == "heads" else stacked
    return run(x, layers, dropout, seed=seed)


def _layers(built: Built, weights: dict, dtype=torch.float32) -> list[dict]:
    from autograder.reference.stacking_heads import split_weights

    return split_weights({k: v.to(dtype) for k, v in weights.items()}, built.prefix,
                         built.count)


def _hints(built: Built) -> dict[str, str]:
    if built.prefix == "heads":
        d = built.d_out
        return {
            "out": f"concatenate the {built.count} heads on the last dim (torch.cat(..., dim=-1))"
                   f": head i fills features [i*{d}:(i+1)*{d}], each head has d_out features",
            "train": "each head applies its own nn.Dropout (dropout passed on to "
                     "CausalAttention) to its attention weights, heads called in order 0, 1, "
                     "...; nothing else draws random numbers",
            "registered": "every head must be registered (self.heads = nn.ModuleList(...), not "
                          "a Python list) so that .to() converts its weights and mask",
            "bias": "pass qkv_bias on to CausalAttention; its default is False",
        }
    return {
        "out": "each layer adds its output to the running x: x = x + layer(x), in order",
        "train": "each layer applies its own dropout (dropout passed on to CausalAttention, "
                 "default 0.0) to its attention weights, layers called in order",
        "registered": "every layer must be registered (self.layers = nn.ModuleList(...), not "
                      "a Python list) so that .to() converts its weights and mask",
        "bias": "pass qkv_bias on to CausalAttention; its default is False",
    }


def _judge(name: str):
    def judge(verdict: Verdict, case: Case, seed: int) -> None:
        from autograder.reference.stacking_heads import stacked, stacked_bugs, wrapper, wrapper_bugs

        built = _resolve(name, case, seed)
        weights = _weights(built, seed)
        x = _input(built, case, seed)
        what, probes, hints = built.call, case.probes, _hints(built)
        double = _layers(built, weights, torch.float64)
        if "out" in probes:
            bugs = wrapper_bugs if built.prefix == "heads" else stacked_bugs
            variants = lambda x=x, double=double: {  # noqa: E731  (computed on failure only)
                k: v.numpy() for k, v in bugs(x.double(), double).items()}
            out_what = f"{what}(x) for x of shape {built.x_shape}"
            _expect(verdict, "out", _expected(built, double, x.double()).numpy(), out_what,
                         atol=1e-5, rtol=1e-4, dtype="float32", library="torch",
                         variants=variants, hint=hints["out"])
            if "future" in probes and built.t is not None:
                changed = future_changed(x, built.t, seed).double()
                judge_causal(verdict, "out", "future",
                             _expected(built, double, changed).numpy(), built.t, what,
                             atol=1e-5, rtol=1e-4, dtype="float32", library="torch")
        if "train" in probes:
            expected = _expected(built, _layers(built, weights), x, built.dropout, seed=seed)
            _expect(verdict, "train", expected.numpy(), f"{what} in train mode under "
                    f"torch.manual_seed(seed) for x of shape {built.x_shape}", atol=1e-5,
                    rtol=1e-4, dtype="float32", library="torch", hint=hints["train"])
        if "long" in probes:
            verdict.raises("long", f"{what} on {built.context + 1} tokens (context_length="
                           f"{built.context})", "ValueError", mentions="context_length")
        if "params" in probes:  # a claim: judged only beside the behaviour of this case
            per = 3 * built.d_in * built.d_out + (3 * built.d_out if built.bias else 0)
            verdict.equal("params", built.count * per, f"the number of parameters of {what}",
                          hint=f"{built.count} independent CausalAttention modules of {per} "
                          f"parameters each, registered in an nn.ModuleList ({hints['bias']})")
        if "f64" in probes:
            expected = _expected(built, double, x.double()).numpy()
            scale = max(1.0, float(np.max(np.abs(expected))))
            extreme = f", inputs scaled by {case.scale:g}" if case.scale != 1.0 else ""
            _expect(verdict, "f64", expected, f"{what}.to(torch.float64)(x) for float64 x of "
                    f"shape {built.x_shape}{extreme}", atol=1e-10 * scale, rtol=1e-9,
                    dtype="float64", library="torch", hint=hints["out"],
                    raised=hints["registered"],
                    nonfinite="with scores around +-1e4 a softmax must subtract the row "
                    "maximum before exp (torch.softmax does)")
        if "meta" in probes:
            n = built.x_shape[1]
            window = mask_window(seed, n)
            run = wrapper if built.prefix == "heads" else stacked
            with torch.no_grad():
                swapped = run(x.double(), double, hidden=window_hidden(n, window)).numpy()
            _expect(verdict, "swapped", swapped, f"{what}(x) for x of shape {built.x_shape} with "
                    f"the grader's mask (each query sees itself and the {window} keys before "
                    "it) swapped into every registered 'mask' buffer", atol=1e-5, rtol=1e-4,
                    dtype="float32", library="torch", hint=MASK_FOLLOWS_HINT)
            found = verdict.raw("meta", what)
            if type(found) is data.Raised and found.type != "NotImplementedError":
                verdict.fail(f"{what}.to('meta') then a forward on a meta tensor raised "
                             f"{found.type}: {found.message}. Likely cause: {hints['registered']}")
            else:
                verdict.equal("meta", ["meta", *built.out_shape], f"{what}.to('meta') then a "
                              "forward on a meta tensor: [device, *shape]",
                              hint=hints["registered"])
    return judge


def _check(grade_id: str, name: str, cases: list[Case]) -> Check:
    check = Check(grade_id, exercise=name, cases=cases, label=lambda case: case.label)
    check.observe(_observe(name))
    check.judge(_judge(name))
    return check


# --- MultiHeadAttentionWrapper -------------------------------------------------------------

wrapper_basics = _check("wrapper_basics", WRAP, [  # the visible cell's sizes, then seeded ones
    Case("the visible cell's MultiHeadAttentionWrapper(4, 3, 6, 0.0, 2) on (2, 5, 4)", d_in=4,
         d_out=3, context=6, count=2, batch=2, tokens=5, probes=("out", "future", "f64")),
    Case("seeded sizes", probes=("out", "future")),
    # what the visible cell also asserts: dropout, context_length and qkv_bias passed on to
    # every head (both ways), scores around 1e4
    Case("train-mode dropout, qkv_bias=True, num_tokens > context_length", d_in=(3, 6),
         d_out=(2, 4), context=(4, 8), count=(2, 3), batch=2, tokens="context",
         dropout=(0.2, 0.7), bias=True, probes=("out", "train", "long")),
    Case("qkv_bias omitted", d_in=(3, 8), d_out=(2, 5), context=(4, 9), count=(2, 3),
         probes=("out", "f64")),
    Case("scores around +-1e4 (inputs scaled by 60, float64)", d_in=(3, 6), d_out=(2, 4),
         context=(4, 8), count=(2, 3), bias=True, scale=60.0, probes=("f64",)),
])

wrapper_structure = _check("wrapper_structure", WRAP, [
    Case("registered heads, qkv_bias omitted", d_in=(3, 8), d_out=(2, 5), context=(4, 9),
         count=(2, 4), dropout=(0.05, 0.3), tokens="context",
         probes=("out", "params", "f64", "meta")),
    Case("registered heads, qkv_bias=True", d_in=(2, 6), d_out=(1, 4), count=(2, 4),
         bias=True, probes=("out", "long", "params", "f64")),
    Case("one head, qkv_bias=False", d_in=(2, 6), d_out=(2, 6), count=1, bias=False,
         probes=("out", "params", "f64", "meta")),
])

wrapper_values = _check("wrapper_values", WRAP, [
    Case("num_tokens == context_length", d_in=(4, 8), d_out=(2, 5), context=(5, 9),
         count=(2, 4), batch=(2, 3), tokens="context"),
    Case("qkv_bias=True, num_tokens < context_length", d_in=(4, 8), d_out=(2, 5),
         context=(6, 10), count=(2, 4), tokens=(2, 5), bias=True),
    Case("one head, batch of one", count=1, batch=1, tokens=(2, 10)),
    Case("one token", d_out=(3, 6), count=(2, 5), tokens=1, probes=("out",)),
    Case("many heads, odd sizes, qkv_bias=True", d_in=(3, 7), d_out=(1, 3), count=(5, 7),
         tokens=(2, 10), bias=True),
    Case("scores around +-1e4 (inputs scaled by 60, float64)", d_in=(3, 6), d_out=(2, 4),
         context=(4, 8), count=(2, 3), bias=True, scale=60.0, probes=("f64",)),
])

wrapper_dropout = _check("wrapper_dropout", WRAP, [
    Case("train-mode dropout", d_in=(3, 6), d_out=(2, 4), context=(4, 8), count=(2, 3),
         batch=2, tokens="context", dropout=(0.2, 0.7), probes=("out", "train")),
    Case("num_tokens > context_length", count=(1, 3), probes=("out", "long")),
])


# --- StackedCausalAttention ----------------------------------------------------------------

stacked_basics = _check("stacked_basics", STACK, [
    Case("the visible cell's StackedCausalAttention(4, 6, 2) on (2, 5, 4)", d_in=4, context=6,
         count=2, batch=2, tokens=5, dropout=None, probes=("out", "future", "train", "f64")),
    Case("seeded sizes", dropout=None, probes=("out", "future")),
    # what the visible cell also asserts: dropout and qkv_bias passed on to every layer
    Case("train-mode dropout, qkv_bias=True", d_in=(3, 6), context=(4, 8), count=(2, 3),
         batch=2, tokens="context", dropout=(0.2, 0.6), bias=True,
         probes=("out", "train", "params")),
])

stacked_structure = _check("stacked_structure", STACK, [
    Case("registered layers, dropout and qkv_bias omitted", d_in=(3, 7), context=(4, 9),
         count=(2, 4), dropout=None, tokens="context", probes=("out", "params", "f64", "meta")),
    Case("registered layers, qkv_bias=True", d_in=(2, 6), count=(2, 3), dropout=(0.05, 0.3),
         bias=True, probes=("out", "params", "f64")),
    Case("one layer", d_in=(2, 6), count=1, bias=False, probes=("out", "params", "f64", "meta")),
])

stacked_values = _check("stacked_values", STACK, [
    Case("num_tokens == context_length", d_in=(4, 8), context=(5, 9), count=(2, 4),
         batch=(2, 3), tokens="context", dropout=None),
    Case("qkv_bias=True, num_tokens < context_length", d_in=(3, 7), context=(6, 10),
         count=(2, 3), tokens=(2, 5), bias=True),
    Case("one token, many layers", count=(3, 5), tokens=1, probes=("out",)),
    Case("one layer, batch of one", count=1, batch=1, tokens=(2, 10)),
    Case("dropout omitted: train mode drops nothing", count=(2, 3), dropout=None,
         probes=("out", "train")),
    Case("train-mode dropout", d_in=(3, 6), context=(4, 8), count=(2, 3), batch=2,
         tokens="context", dropout=(0.2, 0.6), probes=("out", "train")),
    Case("scores around +-1e4 (inputs scaled by 60, float64)", d_in=(3, 6), context=(4, 8),
         count=(2, 3), bias=True, scale=60.0, probes=("f64",)),
    Case("num_tokens > context_length", count=(1, 3), probes=("out", "long")),
])
