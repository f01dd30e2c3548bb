"""Hidden checks for 05-multi-head-attention (split_heads, merge_heads, MultiHeadAttention).

Observe builds the student's module under ``torch.manual_seed``, records its weights,
attribute facts and outputs on inputs from a fixed ``torch.Generator``. Judge rebuilds the
expected outputs from the recorded weights with PyTorch's ``F.scaled_dot_product_attention``
(``is_causal=True``), cross-checked with ``nn.MultiheadAttention`` holding the same weights.
"""

from __future__ import annotations

import numpy as np
import torch

from autograder import data
from autograder.checks import Check, Student, Verdict

ASSIGNMENT = "05-multi-head-attention"
MHA = "MultiHeadAttention"
GPT2 = (768, 768, 1024, 0.0, 12)
GPT2_PARAMETERS = 2_360_064


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


def _tensors(found: dict) -> dict:
    return {k: torch.from_numpy(a.values).float() for k, a in found.items()}


# --- split_heads and merge_heads -----------------------------------------------------------

SPLIT_CASES = [((2, 5, 12), 3, 40), ((1, 1, 6), 2, 41), ((3, 4, 5), 1, 42), ((2, 3, 15), 5, 43),
               ((1, 7, 8), 8, 44)]
SPLIT_ERRORS = [((2, 3, 10), 3), ((1, 4, 6), 4)]
SPLIT_HINT = ("view as (b, n, num_heads, head_dim), then transpose(1, 2): viewing straight as "
              "(b, num_heads, n, head_dim) mixes tokens and features")


def _judge_split(verdict: Verdict, seen, shape, h, seed) -> None:
    from autograder.reference.multi_head_attention import split_heads

    x = _x(seed, shape)
    b, n, d = shape
    verdict.array(seen, split_heads(x, h).numpy(), f"split_heads(x, {h}) for x of shape {shape}",
                  dtype="float32", library="torch",
                  variants={"x.view(b, num_heads, n, head_dim) (no transpose)":
                            x.reshape(b, h, n, d // h).numpy()}, hint=SPLIT_HINT)


split_basics = Check("split_basics", exercise="split_heads")


@split_basics.observe
def _(student: Student) -> dict:
    return {"out": student.call("split_heads", _x(45, (2, 3, 4)), 2)}


@split_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    _judge_split(verdict, seen["out"], (2, 3, 4), 2, 45)


split_contract = Check("split_contract", exercise="split_heads")


@split_contract.observe
def _(student: Student) -> dict:
    seen = {str(c): student.call("split_heads", _x(c[2], c[0]), c[1]) for c in SPLIT_CASES}
    seen.update({f"error {s} {h}": student.call("split_heads", _x(46, s), h)
                 for s, h in SPLIT_ERRORS})
    return seen


@split_contract.judge
def _(seen: dict, verdict: Verdict) -> None:
    for shape, h, seed in SPLIT_CASES:
        _judge_split(verdict, seen[str((shape, h, seed))], shape, h, seed)
    for s, h in SPLIT_ERRORS:
        verdict.raises(seen[f"error {s} {h}"], f"split_heads(x, {h}) for x of shape {s} "
                       f"({s[-1]} % {h} != 0)", "ValueError")


MERGE_CASES = [((2, 3, 5, 4), 50), ((1, 1, 1, 6), 51), ((3, 4, 2, 1), 52), ((1, 5, 3, 3), 53)]
MERGE_HINT = ("transpose back to (b, n, num_heads, head_dim) before reshaping to "
              "(b, n, num_heads * head_dim)")


def _judge_merge(verdict: Verdict, seen, shape, seed) -> None:
    from autograder.reference.multi_head_attention import merge_heads

    x = _x(seed, shape)
    b, h, n, hd = shape
    verdict.array(seen, merge_heads(x).numpy(), f"merge_heads(x) for x of shape {shape}",
                  dtype="float32", library="torch",
                  variants={"x.reshape(b, n, h * head_dim) without the transpose":
                            x.reshape(b, n, h * hd).numpy(),
                            "x.permute(0, 2, 3, 1) (head_dim before heads)":
                            x.permute(0, 2, 3, 1).reshape(b, n, h * hd).numpy()},
                  hint=MERGE_HINT)


merge_basics = Check("merge_basics", exercise="merge_heads")


@merge_basics.observe
def _(student: Student) -> dict:
    return {"out": student.call("merge_heads", _x(54, (2, 2, 3, 2)))}


@merge_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    _judge_merge(verdict, seen["out"], (2, 2, 3, 2), 54)


ROUNDTRIP = [((2, 5, 12), 3, 55), ((1, 3, 7), 7, 56), ((2, 1, 4), 1, 57)]


def _split_by_formula(x: torch.Tensor, h: int) -> torch.Tensor:
    b, n, d = x.shape
    return x.view(b, n, h, d // h).transpose(1, 2)


merge_contract = Check("merge_contract", exercise="merge_heads")


@merge_contract.observe
def _(student: Student) -> dict:
    seen = {str(c): student.call("merge_heads", _x(c[1], c[0])) for c in MERGE_CASES}
    for shape, h, seed in ROUNDTRIP:
        seen[f"roundtrip {shape} {h}"] = student.call("merge_heads",
                                                      _split_by_formula(_x(seed, shape), h))
    return seen


@merge_contract.judge
def _(seen: dict, verdict: Verdict) -> None:
    for shape, seed in MERGE_CASES:
        _judge_merge(verdict, seen[str((shape, seed))], shape, seed)
    for shape, h, seed in ROUNDTRIP:
        verdict.array(seen[f"roundtrip {shape} {h}"], _x(seed, shape).numpy(),
                      f"merge_heads(split_heads(x, {h})) for x of shape {shape}", atol=0,
                      rtol=0, hint="merge_heads must undo split_heads exactly")


# --- MultiHeadAttention ---------------------------------------------------------------------

SHAPE_HINT = ("is head_dim = d_out // num_heads? Each head must get d_out // num_heads "
              "features (with d_out features per head the output has num_heads * d_out, as in "
              "the published [8, 1024, 9216] bug), and out_proj maps d_out to d_out")

VALUE_HINT = ("check the scale 1 / sqrt(head_dim), the causal mask sliced to [:n, :n], the "
              "view (b, n, num_heads, head_dim) + transpose(1, 2) and back, and out_proj")


def _judge_output(verdict: Verdict, seen: dict, args: tuple, x: torch.Tensor,
                  what: str) -> dict | None:
    from autograder.reference.multi_head_attention import mha_bugs, mha_forward, mha_torch

    out = verdict.value(seen["out"], f"{what}(x)")
    if out is None:
        return None
    expected_shape = (x.shape[0], x.shape[1], args[1])
    if isinstance(out, data.Array) and out.shape != expected_shape:
        verdict.fail(f"{what}(x) for x of shape {tuple(x.shape)} has shape {out.shape}; "
                     f"expected {expected_shape}: {SHAPE_HINT}")
        return None
    weights = verdict.value(seen["weights"], f"the weights of {what}")
    if weights is None:
        return None
    weights = _tensors(weights)
    missing = [f"{n}.weight" for n in ("W_query", "W_key", "W_value", "out_proj")
               if f"{n}.weight" not in weights]
    if missing:
        verdict.fail(f"{what} has no {', '.join(missing)} in its state_dict: W_query, W_key, "
                     "W_value and out_proj must be nn.Linear attributes")
        return None
    num_heads = args[4]
    expected = mha_forward(x, weights, num_heads)
    if args[0] == args[1] and "out_proj.bias" in weights and \
            weights["W_query.weight"].shape == (args[1], args[0]):
        independent = mha_torch(x, weights, num_heads)  # two references must agree
        assert torch.allclose(expected, independent, atol=1e-5), "references disagree"
    if isinstance(out, data.Array) and out.values is not None and np.isnan(out.values).any():
        verdict.fail(f"{what}(x) for x of shape {tuple(x.shape)} contains NaN: a softmax row "
                     "where every key is hidden; the mask must hide only the future "
                     "(torch.triu(..., diagonal=1)), never a token's own position")
        return weights
    variants = {}
    if weights["W_query.weight"].shape[0] % num_heads == 0:
        variants = {k: v.detach().numpy() for k, v in mha_bugs(x, weights, num_heads).items()}
    verdict.array(seen["out"], expected.detach().numpy(), f"{what}(x) for x of shape "
                  f"{tuple(x.shape)}", atol=1e-5, rtol=1e-4, dtype="float32", library="torch",
                  variants=variants, hint=VALUE_HINT)
    return weights


def _value_probes(x: torch.Tensor, future: torch.Tensor | None = None) -> dict:
    probes = {"weights": _weights, "out": lambda m: _forward(m, x)}
    if future is not None:
        probes["future"] = lambda m: _forward(m, future)
    return probes


MHA_BASIC = (6, 4, 8, 0.0, 2)

mha_basics = Check("mha_basics", exercise=MHA)


@mha_basics.observe
def _(student: Student) -> dict:
    return student.build(MHA, MHA_BASIC, 0, _value_probes(_x(60, (2, 5, 6))))


@mha_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    what = f"{MHA}{MHA_BASIC}"
    if verdict.built(seen, what):
        _judge_output(verdict, seen, MHA_BASIC, _x(60, (2, 5, 6)), what)


ATTRIBUTE_CASES = [(6, 4, 8, 0.1, 2, False), (5, 6, 4, 0.0, 3, True), (4, 4, 3, 0.3, 1, False)]


def _facts(m) -> dict:
    def linear(name):
        layer = getattr(m, name, None)
        if not isinstance(layer, torch.nn.Linear):
            return type(layer).__name__
        return [layer.in_features, layer.out_features, layer.bias is not None]

    buffers, parameters = dict(m.named_buffers()), dict(m.named_parameters())
    dropout = getattr(m, "dropout", None)
    return {
        "d_out": getattr(m, "d_out", None), "num_heads": getattr(m, "num_heads", None),
        "head_dim": getattr(m, "head_dim", None),
        "linears": {n: linear(n) for n in ("W_query", "W_key", "W_value", "out_proj")},
        "dropout": float(dropout.p) if isinstance(dropout, torch.nn.Dropout) else
        type(dropout).__name__,
        "mask": list(buffers["mask"].shape) if "mask" in buffers else None,
        "mask_parameter": "mask" in parameters,
        "parameters": sum(p.numel() for p in m.parameters()),
    }


mha_attributes = Check("mha_attributes", exercise=MHA)


@mha_attributes.observe
def _(student: Student) -> dict:
    seen = {str(a): student.build(MHA, a, 1, {"facts": _facts}) for a in ATTRIBUTE_CASES}
    seen["gpt2"] = student.build(MHA, GPT2, 1, {
        "parameters": lambda m: sum(p.numel() for p in m.parameters()),
        "head_dim": lambda m: m.head_dim,
        "shape": lambda m: list(_forward(m, _x(61, (1, 4, 768))).shape)})
    return seen


def _judge_facts(verdict: Verdict, facts: dict, args: tuple, what: str) -> None:
    d_in, d_out, context_length, dropout, num_heads, bias = args
    head_dim = d_out // num_heads
    for name, expected in (("d_out", d_out), ("num_heads", num_heads), ("head_dim", head_dim)):
        if facts[name] != expected:
            verdict.fail(f"{what}.{name} is {facts[name]!r}; expected {expected}")
    wanted = {"W_query": [d_in, d_out, bias], "W_key": [d_in, d_out, bias],
              "W_value": [d_in, d_out, bias], "out_proj": [d_out, d_out, True]}
    for name, expected in wanted.items():
        found = facts["linears"][name]
        if found != expected:
            verdict.fail(f"{what}.{name} is {found if isinstance(found, str) else 'nn.Linear(%d, %d, bias=%s)' % tuple(found)}; "  # noqa: E501
                         f"expected nn.Linear({expected[0]}, {expected[1]}, bias={expected[2]})"
                         + (": one projection of width d_out shared by all heads, not "
                            "num_heads * d_out" if isinstance(found, list) and
                            found[1] == num_heads * d_out != d_out else ""))
    if facts["dropout"] != dropout:
        verdict.fail(f"{what}.dropout is {facts['dropout']!r}; expected nn.Dropout({dropout})")
    if facts["mask"] != [context_length, context_length] or facts["mask_parameter"]:
        verdict.fail(f"{what}: expected a ({context_length}, {context_length}) causal mask "
                     f"registered with register_buffer('mask', ...); found buffer shape "
                     f"{facts['mask']}" + (" and a parameter named mask" if
                                          facts["mask_parameter"] else ""))
    expected = 3 * d_in * d_out + (3 * d_out if bias else 0) + d_out * d_out + d_out
    if facts["parameters"] != expected:
        verdict.fail(f"{what} has {facts['parameters']} parameters; expected {expected}")


@mha_attributes.judge
def _(seen: dict, verdict: Verdict) -> None:
    for a in ATTRIBUTE_CASES:
        what = f"{MHA}{a}"
        if verdict.built(seen[str(a)], what):
            facts = verdict.value(seen[str(a)]["facts"], f"the attributes of {what}")
            if facts is not None:
                _judge_facts(verdict, facts, a, what)
    what = f"{MHA}{GPT2} (GPT-2 small)"
    if not verdict.built(seen["gpt2"], what):
        return
    count = verdict.value(seen["gpt2"]["parameters"], f"the parameter count of {what}")
    if count is not None and count != GPT2_PARAMETERS:
        cause = {21_233_664 + 590_592: "W_query/W_key/W_value have num_heads * d_out outputs "
                 "(d_out not divided by num_heads)",
                 2_359_296: "out_proj has no bias (it should be nn.Linear(d_out, d_out))",
                 1_769_472: "out_proj is missing"}.get(count, "")
        verdict.fail(f"{what} has {count:,} parameters; expected {GPT2_PARAMETERS:,} "
                     f"(3 x 768 x 768 for W_query, W_key, W_value + 768 x 768 + 768 for "
                     f"out_proj)" + (f". Likely cause: {cause}" if cause else ""))
    verdict.equal(seen["gpt2"]["head_dim"], 64, f"{what}.head_dim", hint="768 // 12 = 64")
    shape = verdict.value(seen["gpt2"]["shape"], f"{what} on x of shape (1, 4, 768)")
    if shape is not None and shape != [1, 4, 768]:
        verdict.fail(f"{what} output has shape {tuple(shape)}; expected (1, 4, 768): "
                     f"{SHAPE_HINT}")


# (args, batch, num_tokens, seed)
VALUE_CASES = [
    ((8, 8, 8, 0.0, 2, False), 2, 8, 70),    # num_tokens == context_length, nn.MHA cross-check
    ((8, 8, 10, 0.0, 4, True), 3, 6, 71),    # qkv_bias, num_tokens < context_length
    ((5, 6, 7, 0.0, 3, False), 1, 7, 72),    # d_in != d_out, batch of one
    ((7, 9, 9, 0.0, 1, True), 2, 5, 73),     # one head, odd sizes
    ((4, 6, 5, 0.0, 6, False), 2, 1, 74),    # one token, head_dim 1
    ((6, 12, 6, 0.0, 4, False), 1, 3, 75),
]


def _future(x: torch.Tensor, keep: int) -> torch.Tensor:
    changed = x.clone()
    changed[:, keep:] = _x(98, tuple(changed[:, keep:].shape)) * 3
    return changed


mha_values = Check("mha_values", exercise=MHA)


@mha_values.observe
def _(student: Student) -> dict:
    seen = {}
    for args, b, n, seed in VALUE_CASES:
        x = _x(seed, (b, n, args[0]))
        seen[str(args)] = student.build(MHA, args, seed, _value_probes(x, _future(x, n // 2)))
    return seen


@mha_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    for args, b, n, seed in VALUE_CASES:
        what, case = f"{MHA}{args}", seen[str(args)]
        if not verdict.built(case, what):
            continue
        if _judge_output(verdict, case, args, _x(seed, (b, n, args[0])), what) is None:
            continue
        out, future = verdict.value(case["out"], what), verdict.value(case["future"], what)
        if isinstance(out, data.Array) and isinstance(future, data.Array) and \
                out.shape == future.shape and out.values is not None and \
                not np.allclose(out.values[:, : n // 2], future.values[:, : n // 2], atol=1e-5):
            verdict.fail(f"{what}: changing tokens {n // 2}.. changed the outputs at earlier "
                         "positions: a token must not see the future (is the causal mask "
                         "applied to every head?)")


DROP_ARGS, DROP_SEED = (6, 6, 8, 0.5, 3, False), 80

mha_dropout = Check("mha_dropout", exercise=MHA)


@mha_dropout.observe
def _(student: Student) -> dict:
    x = _x(DROP_SEED, (2, 7, 6))
    return student.build(MHA, DROP_ARGS, DROP_SEED, {
        "weights": _weights, "out": lambda m: _forward(m, x),
        "train": lambda m: _forward(m, x, train=True, seed=DROP_SEED)})


@mha_dropout.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference.multi_head_attention import mha_forward

    what = f"{MHA}{DROP_ARGS}"
    if not verdict.built(seen, what):
        return
    x = _x(DROP_SEED, (2, 7, 6))
    weights = _judge_output(verdict, seen, DROP_ARGS, x, what)
    if weights is None:
        return
    expected = mha_forward(x, weights, DROP_ARGS[4], DROP_ARGS[3], seed=DROP_SEED)
    verdict.array(seen["train"], expected.numpy(), f"{what} in train mode under "
                  f"torch.manual_seed({DROP_SEED})", atol=1e-5, rtol=1e-4,
                  hint="apply self.dropout once, to the attention weights of shape (b, "
                  "num_heads, n, n) right after the softmax; nothing else draws random numbers")


mha_errors = Check("mha_errors", exercise=MHA)
INDIVISIBLE = [(6, 10, 8, 0.0, 3), (4, 6, 4, 0.0, 4)]
TOO_LONG = (4, 4, 5, 0.0, 2)


@mha_errors.observe
def _(student: Student) -> dict:
    seen = {str(a): Student.attempt(lambda a=a: student.get(MHA)(*a)) for a in INDIVISIBLE}
    seen["long"] = student.build(MHA, TOO_LONG, 0,
                                   {"out": lambda m: _forward(m, _x(81, (1, 6, 4)))})
    return seen


@mha_errors.judge
def _(seen: dict, verdict: Verdict) -> None:
    for a in INDIVISIBLE:
        found = data.decode(seen[str(a)])
        if not isinstance(found, data.Raised):
            verdict.fail(f"{MHA}{a} should raise ValueError ({a[1]} % {a[4]} != 0), but it "
                         "was created: check d_out % num_heads in __init__")
        else:
            verdict.raises(seen[str(a)], f"{MHA}{a} ({a[1]} % {a[4]} != 0)", "ValueError")
    what = f"{MHA}{TOO_LONG}"
    if verdict.built(seen["long"], what):
        verdict.raises(seen["long"]["out"], f"{what} on 6 tokens (context_length=5)",
                       "ValueError")
