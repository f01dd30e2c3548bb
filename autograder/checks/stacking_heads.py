"""Hidden checks for 04-stacking-heads (MultiHeadAttentionWrapper, StackedCausalAttention).

Observe builds the student's module under ``torch.manual_seed``, records each head's (or
layer's) weights, structure facts and outputs on inputs from a fixed ``torch.Generator``.
Judge rebuilds the expected outputs from the recorded weights with an independent
functional reference (``F.scaled_dot_product_attention`` with ``is_causal=True``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from autograder import data
from autograder.checks import Check, Student, Verdict

ASSIGNMENT = "04-stacking-heads"
WRAP = "MultiHeadAttentionWrapper"
STACK = "StackedCausalAttention"


def _x(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _weights(module) -> dict:
    return {k: v for k, v in module.state_dict().items() if k.rsplit(".", 1)[-1] in
            ("weight", "bias")}


def _forward(module, x: torch.Tensor, train: bool = False, seed: int = 0) -> torch.Tensor:
    module.train(train)
    torch.manual_seed(seed)
    with torch.no_grad():
        return module(x)


def _tensors(found) -> list[dict]:
    return [{k: torch.from_numpy(a.values).float() for k, a in d.items()} for d in found]


def _call(name: str, args: tuple) -> str:
    return f"{name}{args}"


# --- MultiHeadAttentionWrapper -------------------------------------------------------------

def _wrapper_probes(x: torch.Tensor, *, train_seed: int | None = None,
                    future: torch.Tensor | None = None) -> dict:
    probes = {"heads": lambda m: [_weights(h) for h in m.heads],
              "out": lambda m: _forward(m, x)}
    if train_seed is not None:
        probes["train"] = lambda m: _forward(m, x, train=True, seed=train_seed)
    if future is not None:
        probes["future"] = lambda m: _forward(m, future)
    return probes


def _judge_wrapper_out(verdict: Verdict, seen: dict, args: tuple, x: torch.Tensor,
                       what: str) -> list[dict] | None:
    from autograder.reference.stacking_heads import wrapper, wrapper_bugs

    d_out, num_heads = args[1], args[4]
    out = verdict.value(seen["out"], f"{what}(x)")
    shape = (x.shape[0], x.shape[1], num_heads * d_out)
    if isinstance(out, data.Array) and out.shape != shape:
        verdict.fail(f"{what}(x) for x of shape {tuple(x.shape)} has shape {out.shape}; expected "
                     f"{shape} = (batch, num_tokens, num_heads * d_out): each head has d_out "
                     "features, and the heads are concatenated on the last dim")
        return None
    heads = verdict.value(seen["heads"], f"the weights of {what}.heads")
    if heads is None:
        return None
    heads = _tensors(heads)
    expected = wrapper(x, heads).numpy()
    verdict.array(seen["out"], expected, f"{what}(x) for x of shape {tuple(x.shape)}",
                  atol=1e-5, rtol=1e-4, dtype="float32", library="torch",
                  variants={k: v.numpy() for k, v in wrapper_bugs(x, heads).items()},
                  hint=f"concatenate the {num_heads} heads on the last dim (torch.cat(..., "
                  f"dim=-1)): head i fills features [i*{d_out}:(i+1)*{d_out}]")
    return heads


WRAP_BASIC = (4, 3, 6, 0.0, 2)

wrapper_basics = Check("wrapper_basics", exercise=WRAP)


def _container_facts(attribute: str) -> Callable[[Any], dict]:
    """What the visible tests assert about ``m.heads`` / ``m.layers``."""
    def facts(m) -> dict:
        items = getattr(m, attribute)
        return {"module_list": isinstance(items, torch.nn.ModuleList),
                "type": type(items).__name__, "len": len(items),
                "distinct": len({id(item) for item in items})}
    return facts


def _judge_container(verdict: Verdict, seen, attribute: str, count: int, what: str) -> None:
    facts = verdict.value(seen, f"{what}.{attribute}")
    if facts is None:
        return
    if not facts["module_list"]:
        verdict.fail(f"{what}: self.{attribute} is a {facts['type']}; expected an nn.ModuleList "
                     "(a Python list hides the parameters from the module)")
    if facts["len"] != count:
        verdict.fail(f"{what}: expected {count} entries in self.{attribute}, found {facts['len']}")
    elif facts["distinct"] != count:
        verdict.fail(f"{what}: the entries of self.{attribute} are one shared module: create a "
                     "new CausalAttention for each")


@wrapper_basics.observe
def _(student: Student) -> dict:
    probes = _wrapper_probes(_x(1, (2, 5, 4)))
    probes["container"] = _container_facts("heads")
    return student.build(WRAP, WRAP_BASIC, 0, probes)


@wrapper_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    what = _call(WRAP, WRAP_BASIC)
    if verdict.built(seen, what):
        _judge_container(verdict, seen["container"], "heads", WRAP_BASIC[4], what)
        _judge_wrapper_out(verdict, seen, WRAP_BASIC, _x(1, (2, 5, 4)), what)


# (d_in, d_out, context_length, dropout, num_heads, qkv_bias)
STRUCTURE_CASES = [(4, 3, 6, 0.1, 2, False), (5, 2, 4, 0.0, 3, True), (8, 8, 16, 0.25, 1, False)]


def _structure_facts(m, attribute: str = "heads") -> dict:
    heads = getattr(m, attribute)
    return {
        "heads_type": type(heads).__name__,
        "is_module_list": isinstance(heads, torch.nn.ModuleList),
        "len": len(heads),
        "head_types": [type(h).__name__ for h in heads],
        "distinct": len({id(h) for h in heads}),
        "distinct_weights": len({id(h.W_query.weight) for h in heads}),
        "registered": sum(p.numel() for p in m.parameters()),
        "bias": [h.W_query.bias is not None for h in heads],
        "features": [[h.W_query.in_features, h.W_query.out_features] for h in heads],
        "dropout": [float(h.dropout.p) for h in heads],
        "mask": [list(h.mask.shape) for h in heads],
    }


def _judge_structure(verdict: Verdict, seen: dict, attribute: str, count: int, d_in: int,
                     d_out: int, context_length: int, dropout: float, bias: bool,
                     what: str) -> None:
    facts = verdict.value(seen, f"the {attribute} of {what}")
    if facts is None:
        return
    if not facts["is_module_list"]:
        verdict.fail(f"{what}.{attribute} is a {facts['heads_type']}; expected an nn.ModuleList:"
                     " modules kept in a plain list are not registered, so their weights are "
                     "not parameters of the model (not trained, not moved by .to())")
    if facts["len"] != count:
        verdict.fail(f"{what}.{attribute} holds {facts['len']} modules; expected {count}")
        return
    if any(t != "CausalAttention" for t in facts["head_types"]):
        verdict.fail(f"{what}.{attribute} holds {facts['head_types']}; expected CausalAttention "
                     "modules")
    if facts["distinct"] < count or facts["distinct_weights"] < count:
        verdict.fail(f"{what}.{attribute} holds {facts['distinct']} distinct module(s) for "
                     f"{count} entries: the same CausalAttention instance is repeated "
                     "([head] * n shares its weights); create a new module for each entry")
    per_module = 3 * d_in * d_out + (3 * d_out if bias else 0)
    if facts["is_module_list"] and facts["registered"] != count * per_module:
        verdict.fail(f"{what} has {facts['registered']} registered parameters; expected "
                     f"{count} x {per_module} = {count * per_module}")
    if any(b != bias for b in facts["bias"]):
        verdict.fail(f"{what}: W_query has bias={facts['bias']}; expected {bias}: pass qkv_bias "
                     "on to CausalAttention")
    if any(f != [d_in, d_out] for f in facts["features"]):
        verdict.fail(f"{what}: W_query maps {facts['features']}; expected [{d_in}, {d_out}] for "
                     "every entry")
    if any(abs(p - dropout) > 1e-12 for p in facts["dropout"]):
        verdict.fail(f"{what}: dropout probabilities {facts['dropout']}; expected {dropout}: pass "
                     "dropout on to CausalAttention")
    if any(s != [context_length, context_length] for s in facts["mask"]):
        verdict.fail(f"{what}: masks of shape {facts['mask']}; expected ({context_length}, "
                     f"{context_length}): pass context_length on to CausalAttention")


wrapper_structure = Check("wrapper_structure", exercise=WRAP)


@wrapper_structure.observe
def _(student: Student) -> dict:
    return {str(a): student.build(WRAP, a, 3, {"facts": _structure_facts})
            for a in STRUCTURE_CASES}


@wrapper_structure.judge
def _(seen: dict, verdict: Verdict) -> None:
    for a in STRUCTURE_CASES:
        what = _call(WRAP, a)
        if verdict.built(seen[str(a)], what):
            _judge_structure(verdict, seen[str(a)]["facts"], "heads", a[4], a[0], a[1], a[2],
                             a[3], a[5], what)


# (args, batch, num_tokens, seed)
WRAP_VALUE_CASES = [
    ((6, 4, 8, 0.0, 3, False), 2, 8, 10),   # num_tokens == context_length
    ((6, 4, 8, 0.0, 3, True), 3, 5, 11),    # qkv_bias, num_tokens < context_length
    ((5, 3, 7, 0.0, 1, False), 1, 7, 12),   # one head, batch of one, odd sizes
    ((3, 5, 9, 0.0, 4, False), 2, 1, 13),   # one token
    ((7, 2, 6, 0.0, 5, True), 1, 3, 14),    # odd sizes, many heads
]


def _future(x: torch.Tensor, keep: int) -> torch.Tensor:
    changed = x.clone()
    changed[:, keep:] = _x(99, tuple(changed[:, keep:].shape)) * 3
    return changed


wrapper_values = Check("wrapper_values", exercise=WRAP)


@wrapper_values.observe
def _(student: Student) -> dict:
    seen = {}
    for args, b, n, seed in WRAP_VALUE_CASES:
        x = _x(seed, (b, n, args[0]))
        seen[str(args)] = student.build(WRAP, args, seed,
                                          _wrapper_probes(x, future=_future(x, n // 2)))
    return seen


@wrapper_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    for args, b, n, seed in WRAP_VALUE_CASES:
        what, case = _call(WRAP, args), seen[str(args)]
        if not verdict.built(case, what):
            continue
        x = _x(seed, (b, n, args[0]))
        if _judge_wrapper_out(verdict, case, args, x, what) is None:
            continue
        out, future = verdict.value(case["out"], what), verdict.value(case["future"], what)
        if isinstance(out, data.Array) and isinstance(future, data.Array) and \
                out.shape == future.shape and out.values is not None and \
                not np.allclose(out.values[:, : n // 2], future.values[:, : n // 2], atol=1e-5):
            verdict.fail(f"{what}: changing tokens {n // 2}.. changed the outputs at earlier "
                         "positions: a token must not see the future (is the causal mask used?)")


wrapper_dropout = Check("wrapper_dropout", exercise=WRAP)
DROP_ARGS, DROP_SEED = (4, 3, 6, 0.5, 2, False), 21
ERROR_ARGS = (4, 3, 5, 0.0, 2, False)


@wrapper_dropout.observe
def _(student: Student) -> dict:
    x = _x(DROP_SEED, (2, 6, 4))
    seen = {"drop": student.build(WRAP, DROP_ARGS, DROP_SEED,
                                    _wrapper_probes(x, train_seed=DROP_SEED))}
    seen["error"] = student.build(WRAP, ERROR_ARGS, 0,
                                    {"long": lambda m: _forward(m, _x(22, (1, 6, 4)))})
    return seen


@wrapper_dropout.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference.stacking_heads import wrapper

    what = _call(WRAP, DROP_ARGS)
    case = seen["drop"]
    if verdict.built(case, what):
        x = _x(DROP_SEED, (2, 6, 4))
        heads = _judge_wrapper_out(verdict, case, DROP_ARGS, x, what)
        if heads is not None:
            expected = wrapper(x, heads, DROP_ARGS[3], seed=DROP_SEED).numpy()
            verdict.array(case["train"], expected, f"{what} in train mode under "
                          f"torch.manual_seed({DROP_SEED})", atol=1e-5, rtol=1e-4,
                          hint="each head applies its own nn.Dropout to its attention weights, "
                          "heads called in order 0, 1, ...; nothing else draws random numbers")
    what = _call(WRAP, ERROR_ARGS)
    if verdict.built(seen["error"], what):
        verdict.raises(seen["error"]["long"], f"{what} on 6 tokens (context_length=5)",
                       "ValueError", mentions="context_length")


# --- StackedCausalAttention ----------------------------------------------------------------

def _stacked_probes(x: torch.Tensor, *, train_seed: int | None = None) -> dict:
    probes = {"layers": lambda m: [_weights(layer) for layer in m.layers],
              "out": lambda m: _forward(m, x)}
    if train_seed is not None:
        probes["train"] = lambda m: _forward(m, x, train=True, seed=train_seed)
    return probes


def _judge_stacked(verdict: Verdict, case: dict, args: tuple, x: torch.Tensor,
                   what: str, dropout_seed: int | None = None) -> None:
    from autograder.reference.stacking_heads import stacked, stacked_bugs

    if not verdict.built(case, what):
        return
    out = verdict.value(case["out"], f"{what}(x)")
    if isinstance(out, data.Array) and out.shape != tuple(x.shape):
        verdict.fail(f"{what}(x) for x of shape {tuple(x.shape)} has shape {out.shape}; expected "
                     f"{tuple(x.shape)}: every layer maps d_model to d_model")
        return
    layers = verdict.value(case["layers"], f"the weights of {what}.layers")
    if layers is None:
        return
    layers = _tensors(layers)
    hint = "each layer adds its output to the running x: x = x + layer(x), in order"
    verdict.array(case["out"], stacked(x, layers).numpy(), f"{what}(x) for x of shape "
                  f"{tuple(x.shape)}", atol=1e-5, rtol=1e-4, dtype="float32", library="torch",
                  variants={k: v.numpy() for k, v in stacked_bugs(x, layers).items()}, hint=hint)
    if dropout_seed is not None:
        expected = stacked(x, layers, args[3], seed=dropout_seed).numpy()
        verdict.array(case["train"], expected, f"{what} in train mode under torch.manual_seed("
                      f"{dropout_seed})", atol=1e-5, rtol=1e-4,
                      hint="each layer applies its own dropout to its attention weights, layers "
                      "called in order")


STACK_BASIC = (4, 6, 2)

stacked_basics = Check("stacked_basics", exercise=STACK)


@stacked_basics.observe
def _(student: Student) -> dict:
    probes = _stacked_probes(_x(2, (2, 5, 4)))
    probes["container"] = _container_facts("layers")
    return student.build(STACK, STACK_BASIC, 0, probes)


@stacked_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    what = _call(STACK, STACK_BASIC)
    if verdict.built(seen, what):
        _judge_container(verdict, seen["container"], "layers", STACK_BASIC[2], what)
    _judge_stacked(verdict, seen, STACK_BASIC, _x(2, (2, 5, 4)), what)


# (d_model, context_length, num_layers, dropout, qkv_bias)
STACK_STRUCTURE = [(4, 6, 3, 0.1, False), (5, 4, 2, 0.0, True), (3, 5, 1, 0.0, False)]

stacked_structure = Check("stacked_structure", exercise=STACK)


def _layer_facts(m) -> dict:
    return _structure_facts(m, "layers")


@stacked_structure.observe
def _(student: Student) -> dict:
    return {str(a): student.build(STACK, a, 4, {"facts": _layer_facts})
            for a in STACK_STRUCTURE}


@stacked_structure.judge
def _(seen: dict, verdict: Verdict) -> None:
    for a in STACK_STRUCTURE:
        what = _call(STACK, a)
        if verdict.built(seen[str(a)], what):
            _judge_structure(verdict, seen[str(a)]["facts"], "layers", a[2], a[0], a[0], a[1],
                             a[3], a[4], what)


# (args, batch, num_tokens, seed, train)
STACK_VALUE_CASES = [
    ((6, 8, 3, 0.0, False), 2, 8, 30, False),
    ((5, 7, 2, 0.0, True), 1, 4, 31, False),
    ((4, 5, 4, 0.0, False), 3, 1, 32, False),
    ((3, 6, 1, 0.0, False), 1, 6, 33, False),
    ((4, 6, 2, 0.5, False), 2, 6, 34, True),
]

stacked_values = Check("stacked_values", exercise=STACK)


@stacked_values.observe
def _(student: Student) -> dict:
    seen = {}
    for args, b, n, seed, train in STACK_VALUE_CASES:
        x = _x(seed, (b, n, args[0]))
        seen[str(args)] = student.build(STACK, args, seed,
                                          _stacked_probes(x, train_seed=seed if train else None))
    seen["error"] = student.build(STACK, (4, 5, 2), 0,
                                    {"long": lambda m: _forward(m, _x(35, (1, 6, 4)))})
    return seen


@stacked_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    for args, b, n, seed, train in STACK_VALUE_CASES:
        _judge_stacked(verdict, seen[str(args)], args, _x(seed, (b, n, args[0])),
                       _call(STACK, args), seed if train else None)
    what = _call(STACK, (4, 5, 2))
    if verdict.built(seen["error"], what):
        verdict.raises(seen["error"]["long"], f"{what} on 6 tokens (context_length=5)",
                       "ValueError", mentions="context_length")
