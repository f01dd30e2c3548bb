"""Hidden checks for 04-stacking-heads (MultiHeadAttentionWrapper, StackedCausalAttention).

Every case builds the student's module with the grader's weights, loaded by the contract's
attribute paths (``heads.1.W_key.weight``, ``layers.0.W_value.bias``), and asks for answers
only: outputs on inputs drawn from the case's seed. The check's ``inputs`` builds the weights
and inputs from (case, seed), once on each side; the judge computes the expected outputs with
an independent functional reference (``F.scaled_dot_product_attention(is_causal=True)``, in
float64).

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
from functools import partial
from typing import Any

import torch

from autograder.checks import Case, Check, Student, Verdict
from autograder.checks._common import (
    QKV,
    Size,
    call_text,
    expect,
    future_changed,
    integer,
    judge_causal,
    judge_float64,
    judge_mask_buffer,
    linear,
    mask_window,
    probe_module,
    randn,
    rate,
    size,
    tokens,
    window_hidden,
)

ASSIGNMENT = "04-stacking-heads"
WRAP = "MultiHeadAttentionWrapper"
STACK = "StackedCausalAttention"


@dataclass(frozen=True)
class Module(Case):
    """One module built and probed (``probes``: what ``_common.probe_module`` asks).
    ``dropout``/``bias`` ``None``: the argument is omitted (its default is exercised); a
    ``(low, high)`` dropout is drawn from the seed. ``tokens``: "any" (1..context_length),
    "context" (== context_length), or a size (clipped)."""

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
    """A case resolved for one seed: the module's arguments, the grader's weights (one
    nn.Linear per projection and head or layer, by attribute path), the inputs of every
    probe."""

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
    seed: int                 # torch.manual_seed of the build and of train mode
    weights: dict
    x: torch.Tensor
    t: int | None             # the causality probe keeps positions 0..t
    future: torch.Tensor | None  # x with the tokens after t changed
    long: torch.Tensor | None  # context_length + 1 tokens
    window: int               # of the grader's mask swapped into the buffers

    @property
    def call(self) -> str:
        return call_text(self.name, self.args, self.kwargs)

    @property
    def x_shape(self) -> tuple:
        return tuple(self.x.shape)

    @property
    def out_shape(self) -> tuple:
        width = self.count * self.d_out if self.prefix == "heads" else self.d_out
        return (*self.x_shape[:2], width)


def _module(name: str, case: Module, seed: int) -> Built:
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
    weights: dict = {}
    for i in range(count):
        for j, projection in enumerate(QKV):
            weights.update(linear(seed, f"{prefix}.{i}.{projection}", d_in, d_out,
                                  bool(case.bias), stream=3 * i + j))
    x = randn(seed, (batch, num_tokens, d_in), stream=1, scale=case.scale)
    t = integer(seed, 0, num_tokens - 2, 8) if num_tokens >= 2 else None
    return Built(name, args, kwargs, prefix, d_in, d_out, context, count,
                 0.0 if dropout is None else dropout, bool(case.bias), seed, weights, x, t,
                 future_changed(x, t, seed) if t is not None and "future" in case.probes else None,
                 randn(seed, (1, context + 1, d_in), stream=9) if "long" in case.probes else None,
                 mask_window(seed, num_tokens))


def _observe(student: Student, case: Module, built: Built) -> dict:
    module = student.build(built.name, built.args, built.kwargs, weights=built.weights,
                           seed=built.seed)
    return probe_module(module, built.x, case.probes, window=built.window, future=built.future,
                        train_seed=built.seed, long=built.long)


# --- judging -----------------------------------------------------------------------------------

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


def _judge(verdict: Verdict, case: Module, built: Built) -> None:
    from autograder.reference.stacking_heads import (
        split_weights,
        stacked,
        stacked_bugs,
        wrapper,
        wrapper_bugs,
    )

    def layers(dtype) -> list[dict]:
        return split_weights({k: v.to(dtype) for k, v in built.weights.items()}, built.prefix,
                             built.count)

    run, bugs = (wrapper, wrapper_bugs) if built.prefix == "heads" else (stacked, stacked_bugs)
    what, probes, hints, x = built.call, case.probes, _hints(built), built.x
    double = layers(torch.float64)

    def tolerance(inputs, expected, hidden=None) -> float:
        """The heads' outputs: 1e-5. A stack's: float32 rounding grows with each layer, as
        x grows and the scores with it (a difference of 3e-4 on values around 2.66 after two
        layers, 0.015 on values around 87 after four): the reference's own scale and its
        own float32 rounding on these inputs (the float32 reference against the float64
        one), times 10; never the student's numbers."""
        if built.prefix == "heads":
            return 1e-5
        rounding = run(inputs.float(), layers(torch.float32), hidden=hidden).double()
        rounding = (rounding - expected).abs().max()
        return 1e-5 * max(1.0, float(expected.abs().max())) + 10 * float(rounding)

    if "out" in probes:
        variants = lambda: {  # noqa: E731  (computed on failure only)
            k: v.numpy() for k, v in bugs(x.double(), double).items()}
        expected = run(x.double(), double)
        expect(verdict, "out", expected.numpy(), f"{what}(x) for x of shape {built.x_shape}",
               atol=tolerance(x, expected), rtol=1e-4, dtype="float32", library="torch",
               variants=variants, hint=hints["out"])
        if "future" in probes and built.future is not None:
            expected = run(built.future.double(), double)
            judge_causal(verdict, "out", "future", expected.numpy(), built.t, what,
                         atol=tolerance(built.future, expected), rtol=1e-4, dtype="float32",
                         library="torch")
    if "train" in probes:
        expected = run(x, layers(torch.float32), built.dropout, seed=built.seed)
        expect(verdict, "train", expected.numpy(), f"{what} in train mode under "
               f"torch.manual_seed(seed) for x of shape {built.x_shape}", atol=1e-5, rtol=1e-4,
               dtype="float32", library="torch", hint=hints["train"])
    if "long" in probes:
        verdict.raises("long", f"{what} on {built.context + 1} tokens (context_length="
                       f"{built.context})", "ValueError", mentions="context_length")
    if "params" in probes:  # a claim: judged only beside the behaviour of this case
        per = 3 * built.d_in * built.d_out + (3 * built.d_out if built.bias else 0)
        verdict.equal("params", built.count * per, f"the number of parameters of {what}",
                      hint=f"{built.count} independent CausalAttention modules of {per} "
                      f"parameters each, registered in an nn.ModuleList ({hints['bias']})")
    if "f64" in probes:
        judge_float64(verdict, run(x.double(), double).numpy(), what, built.x_shape, case.scale,
                      hint=hints["out"], raised=hints["registered"],
                      nonfinite="with scores around +-1e4 a softmax must subtract the row "
                      "maximum before exp (torch.softmax does)")
    if "meta" in probes:
        hidden = window_hidden(built.x_shape[1], built.window)
        with torch.no_grad():
            swapped = run(x.double(), double, hidden=hidden)
        judge_mask_buffer(verdict, swapped.numpy(), what, built.x_shape, built.out_shape,
                          built.window, hints["registered"], buffers="every registered 'mask' "
                          "buffer", atol=tolerance(x, swapped, hidden))


# blame: nothing in this chapter calls either module; the structure checks judge the
# contract (registered heads or layers, masks as buffers), not values
wrapper_check = partial(Check, exercise=WRAP, inputs=partial(_module, WRAP), observe=_observe,
                        judge=_judge)
stacked_check = partial(Check, exercise=STACK, inputs=partial(_module, STACK), observe=_observe,
                        judge=_judge)


# --- MultiHeadAttentionWrapper -------------------------------------------------------------

wrapper_basics = wrapper_check("wrapper_basics", cases=[  # the visible cell's sizes, then seeded
    Module("the visible cell's MultiHeadAttentionWrapper(4, 3, 6, 0.0, 2) on (2, 5, 4)", d_in=4,
           d_out=3, context=6, count=2, batch=2, tokens=5, probes=("out", "future", "f64")),
    Module("seeded sizes", probes=("out", "future")),
    # what the visible cell also asserts: dropout, context_length and qkv_bias passed on to
    # every head (both ways), scores around 1e4
    Module("train-mode dropout, qkv_bias=True, num_tokens > context_length", d_in=(3, 6),
           d_out=(2, 4), context=(4, 8), count=(2, 3), batch=2, tokens="context",
           dropout=(0.2, 0.7), bias=True, probes=("out", "train", "long")),
    Module("qkv_bias omitted", d_in=(3, 8), d_out=(2, 5), context=(4, 9), count=(2, 3),
           probes=("out", "f64")),
    Module("scores around +-1e4 (inputs scaled by 60, float64)", d_in=(3, 6), d_out=(2, 4),
           context=(4, 8), count=(2, 3), bias=True, scale=60.0, probes=("f64",)),
])

wrapper_structure = wrapper_check("wrapper_structure", blame=False, cases=[
    Module("registered heads, qkv_bias omitted", d_in=(3, 8), d_out=(2, 5), context=(4, 9),
           count=(2, 4), dropout=(0.05, 0.3), tokens="context",
           probes=("out", "params", "f64", "meta")),
    Module("registered heads, qkv_bias=True", d_in=(2, 6), d_out=(1, 4), count=(2, 4),
           bias=True, probes=("out", "long", "params", "f64")),
    Module("one head, qkv_bias=False", d_in=(2, 6), d_out=(2, 6), count=1, bias=False,
           probes=("out", "params", "f64", "meta")),
])

wrapper_values = wrapper_check("wrapper_values", cases=[
    Module("num_tokens == context_length", d_in=(4, 8), d_out=(2, 5), context=(5, 9),
           count=(2, 4), batch=(2, 3), tokens="context"),
    Module("qkv_bias=True, num_tokens < context_length", d_in=(4, 8), d_out=(2, 5),
           context=(6, 10), count=(2, 4), tokens=(2, 5), bias=True),
    Module("one head, batch of one", count=1, batch=1, tokens=(2, 10)),
    Module("one token", d_out=(3, 6), count=(2, 5), tokens=1, probes=("out",)),
    Module("many heads, odd sizes, qkv_bias=True", d_in=(3, 7), d_out=(1, 3), count=(5, 7),
           tokens=(2, 10), bias=True),
    Module("scores around +-1e4 (inputs scaled by 60, float64)", d_in=(3, 6), d_out=(2, 4),
           context=(4, 8), count=(2, 3), bias=True, scale=60.0, probes=("f64",)),
])

wrapper_dropout = wrapper_check("wrapper_dropout", cases=[
    Module("train-mode dropout", d_in=(3, 6), d_out=(2, 4), context=(4, 8), count=(2, 3),
           batch=2, tokens="context", dropout=(0.2, 0.7), probes=("out", "train")),
    Module("num_tokens > context_length", count=(1, 3), probes=("out", "long")),
])


# --- StackedCausalAttention ----------------------------------------------------------------

stacked_basics = stacked_check("stacked_basics", cases=[
    Module("the visible cell's StackedCausalAttention(4, 6, 2) on (2, 5, 4)", d_in=4, context=6,
           count=2, batch=2, tokens=5, dropout=None, probes=("out", "future", "train", "f64")),
    Module("seeded sizes", dropout=None, probes=("out", "future")),
    # what the visible cell also asserts: dropout and qkv_bias passed on to every layer
    Module("train-mode dropout, qkv_bias=True", d_in=(3, 6), context=(4, 8), count=(2, 3),
           batch=2, tokens="context", dropout=(0.2, 0.6), bias=True,
           probes=("out", "train", "params")),
])

stacked_structure = stacked_check("stacked_structure", blame=False, cases=[
    Module("registered layers, dropout and qkv_bias omitted", d_in=(3, 7), context=(4, 9),
           count=(2, 4), dropout=None, tokens="context", probes=("out", "params", "f64", "meta")),
    Module("registered layers, qkv_bias=True", d_in=(2, 6), count=(2, 3), dropout=(0.05, 0.3),
           bias=True, probes=("out", "params", "f64")),
    Module("one layer", d_in=(2, 6), count=1, bias=False, probes=("out", "params", "f64", "meta")),
])

stacked_values = stacked_check("stacked_values", cases=[
    Module("num_tokens == context_length", d_in=(4, 8), context=(5, 9), count=(2, 4),
           batch=(2, 3), tokens="context", dropout=None),
    Module("qkv_bias=True, num_tokens < context_length", d_in=(3, 7), context=(6, 10),
           count=(2, 3), tokens=(2, 5), bias=True),
    Module("one token, many layers", count=(3, 5), tokens=1, probes=("out",)),
    Module("one layer, batch of one", count=1, batch=1, tokens=(2, 10)),
    Module("dropout omitted: train mode drops nothing", count=(2, 3), dropout=None,
           probes=("out", "train")),
    Module("train-mode dropout", d_in=(3, 6), context=(4, 8), count=(2, 3), batch=2,
           tokens="context", dropout=(0.2, 0.6), probes=("out", "train")),
    Module("scores around +-1e4 (inputs scaled by 60, float64)", d_in=(3, 6), context=(4, 8),
           count=(2, 3), bias=True, scale=60.0, probes=("f64",)),
    Module("num_tokens > context_length", count=(1, 3), probes=("out", "long")),
])
