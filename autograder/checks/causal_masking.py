"""Hidden checks for 03-causal-masking (PyTorch)."""

from __future__ import annotations

import numpy as np
import torch

from autograder import data
from autograder.checks import Check, Student, Verdict

ASSIGNMENT = "03-causal-masking"

CA = "CausalAttention"


def _randn(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# --- causal_mask ----------------------------------------------------------------------------

causal_mask_basics = Check("causal_mask_basics", exercise="causal_mask")


@causal_mask_basics.observe
def _(student: Student) -> dict:
    return {"mask": student.call("causal_mask", 4)}


@causal_mask_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference.causal_masking import reference_mask

    verdict.array(seen["mask"], reference_mask(4), "causal_mask(4)", dtype="bool",
                  library="torch", variants={"torch.tril (True on and below the diagonal): True "
                                             "must mean hidden, the future": ~reference_mask(4)},
                  hint="True strictly above the diagonal (torch.triu(..., diagonal=1))")


MASK_SIZES = [1, 2, 5, 13]

causal_mask_sizes = Check("causal_mask_sizes", exercise="causal_mask")


@causal_mask_sizes.observe
def _(student: Student) -> dict:
    return {str(n): student.call("causal_mask", n) for n in MASK_SIZES}


@causal_mask_sizes.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference.causal_masking import reference_mask

    for n in MASK_SIZES:
        expected = reference_mask(n)
        verdict.array(seen[str(n)], expected, f"causal_mask({n})", dtype="bool", library="torch",
                      variants={"a mask that also hides the diagonal (diagonal=0): every token "
                                "must see itself": np.triu(np.ones((n, n), dtype=bool))},
                      hint="True strictly above the diagonal (torch.triu(..., diagonal=1))")


# --- CausalAttention ------------------------------------------------------------------------

CASES = {  # name: (seed, d_in, d_out, context_length, dropout, qkv_bias, input shapes)
    "CausalAttention(3, 2, context_length=6, dropout=0.0)":
        (41, 3, 2, 6, 0.0, False, [(2, 6, 3), (1, 4, 3), (2, 1, 3)]),
    "CausalAttention(5, 4, context_length=8, dropout=0.3, qkv_bias=True) in eval mode":
        (42, 5, 4, 8, 0.3, True, [(2, 8, 5), (3, 5, 5)]),
    "CausalAttention(4, 7, context_length=5, dropout=0.5) in eval mode":
        (43, 4, 7, 5, 0.5, False, [(1, 5, 4), (1, 2, 4)]),
}


def _build(student: Student, seed: int, d_in, d_out, context_length, dropout, qkv_bias):
    torch.manual_seed(seed)
    return student.get(CA)(d_in, d_out, context_length, dropout, qkv_bias=qkv_bias)


def _state(module) -> dict:
    return {k: data.encode(v) for k, v in module.state_dict().items()
            if k.startswith(("W_query.", "W_key.", "W_value."))}


def _observe_outputs(student: Student, cases: dict) -> dict:
    seen = {}
    for name, (seed, d_in, d_out, ctx, p, bias, shapes) in cases.items():
        try:
            module = _build(student, seed, d_in, d_out, ctx, p, bias)
            module.eval()
            record = {"state": _state(module), "outputs": {}}
        except Exception as exc:  # student code may raise anything
            seen[name] = {"error": data.error(exc)}
            continue
        with torch.no_grad():
            for i, shape in enumerate(shapes):
                x = _randn(seed + 100 + i, shape)
                record["outputs"][str(shape)] = Student.attempt(lambda x=x, m=module: m(x))
        seen[name] = record
    return seen


def _weights(verdict: Verdict, record: dict, name: str) -> dict | None:
    if "error" in record:
        verdict.value(record["error"], f"{name} (building the module)")
        return None
    decoded = {k: data.decode(v) for k, v in record["state"].items()}
    missing = [f"{p}.weight" for p in ("W_query", "W_key", "W_value")
               if f"{p}.weight" not in decoded]
    if missing:
        verdict.fail(f"{name}: no {', '.join(missing)} in the state_dict: W_query, W_key and "
                     "W_value should be nn.Linear(d_in, d_out, bias=qkv_bias)")
        return None
    return {k: v.values for k, v in decoded.items() if isinstance(v, data.Array)}


def _explain(verdict: Verdict, seen, what: str, num_tokens: int, context_length: int) -> bool:
    """Name the likely cause of a crash or of NaN outputs; True when the output was explained."""
    found = data.decode(seen)
    if isinstance(found, data.Raised) and found.type != "NotImplementedError" \
            and num_tokens < context_length:
        verdict.fail(f"{what} raised {found.type}: {found.message}. With num_tokens = "
                     f"{num_tokens} < context_length = {context_length}, is the mask sliced to "
                     "[:num_tokens, :num_tokens]?")
        return True
    if isinstance(found, data.Array) and found.values is not None \
            and np.isnan(found.values).any():
        verdict.fail(f"{what} contains NaN: a row of the weights had every score at -inf (does "
                     "the mask hide the diagonal or the past, i.e. is True meant as hidden?), or "
                     "dropout multiplied a -inf score by 0 (dropout belongs after the softmax)")
        return True
    return False


def _judge_outputs(verdict: Verdict, seen: dict, cases: dict) -> None:
    from autograder.reference.causal_masking import eval_bugs, reference_causal_attention

    for name, (seed, _, _, ctx, p, bias, shapes) in cases.items():
        state = _weights(verdict, seen[name], name)
        if state is None:
            continue
        if any((f"{proj}.bias" in state) != bias for proj in ("W_query", "W_key", "W_value")):
            verdict.fail(f"{name}: the projections should have bias={bias}: pass "
                         "bias=qkv_bias to nn.Linear")
            continue
        for i, shape in enumerate(shapes):
            x = _randn(seed + 100 + i, shape)
            hint = "weights = softmax(masked scores / sqrt(d_out)), hidden scores set to -inf"
            if shape[1] < ctx:
                hint += f"; with {shape[1]} < context_length = {ctx} tokens, slice the mask " \
                        "to [:num_tokens, :num_tokens]"
            if p > 0:
                hint += "; in eval mode self.dropout must do nothing (use nn.Dropout, " \
                        "not F.dropout with training=True)"
            what = f"{name} on x of shape {shape}"
            if _explain(verdict, seen[name]["outputs"][str(shape)], what, shape[1], ctx):
                continue
            verdict.array(seen[name]["outputs"][str(shape)], reference_causal_attention(x, state),
                          f"{name} on x of shape {shape}", atol=2e-5, rtol=1e-4,
                          dtype="float32", library="torch", variants=eval_bugs(x, state),
                          hint=hint)


causal_attention_basics = Check("causal_attention_basics", exercise=CA)
BASIC_CASES = dict(list(CASES.items())[:1])


@causal_attention_basics.observe
def _(student: Student) -> dict:  # what the visible tests assert, observed the hidden way
    return {"outputs": _observe_outputs(student, BASIC_CASES),
            "module": causal_attention_buffer._observe(student),
            "errors": causal_attention_errors._observe(student)}


@causal_attention_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    _judge_outputs(verdict, seen["outputs"], BASIC_CASES)
    module = seen["module"]
    what = "CausalAttention(4, 3, context_length=7, dropout=0.1)"
    if "error" in module:
        verdict.value(module["error"], f"{what} (building the module)")
    else:
        if "mask" not in module["buffers"]:
            verdict.fail(f"{what}: no buffer named 'mask': register it with "
                         "self.register_buffer('mask', ...)")
        if module["dropout"] != "Dropout":
            verdict.fail(f"{what}: self.dropout is a {module['dropout']}; expected nn.Dropout")
    causal_attention_errors._judge(seen["errors"], verdict)


causal_attention_values = Check("causal_attention_values", exercise=CA)
MORE_CASES = dict(list(CASES.items())[1:])


@causal_attention_values.observe
def _(student: Student) -> dict:
    seen = _observe_outputs(student, MORE_CASES)
    try:  # the whole module in float64: the mask must follow .to()
        module = _build(student, 44, 3, 5, 6, 0.0, False).to(torch.float64).eval()
        seen["float64"] = {"state": _state(module)}
        with torch.no_grad():
            x = _randn(144, (2, 6, 3)).to(torch.float64)
            seen["float64"]["output"] = Student.attempt(lambda: module(x))
    except Exception as exc:  # student code may raise anything
        seen["float64"] = {"error": data.error(exc)}
    return seen


@causal_attention_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference.causal_masking import reference_causal_attention

    _judge_outputs(verdict, seen, MORE_CASES)
    what = "CausalAttention(3, 5, 6, 0.0).to(torch.float64) on float64 input"
    state = _weights(verdict, seen["float64"], what)
    if state is not None:
        x = _randn(144, (2, 6, 3)).to(torch.float64)
        verdict.array(seen["float64"]["output"], reference_causal_attention(x, state), what,
                      atol=1e-9, rtol=1e-7, dtype="float64", library="torch",
                      hint="after module.to(torch.float64) every parameter and buffer is "
                           "float64; the forward pass must not hard-code float32")


causal_attention_buffer = Check("causal_attention_buffer", exercise=CA)


@causal_attention_buffer.observe
def _(student: Student) -> dict:
    try:
        module = _build(student, 51, 4, 3, 7, 0.1, False)
        seen = {"buffers": {k: data.encode(v) for k, v in module.named_buffers()},
                "parameters": [k for k, _ in module.named_parameters()],
                "attribute": type(getattr(module, "mask", None)).__name__,
                "dropout": type(getattr(module, "dropout", None)).__name__,
                "p": data.encode(getattr(getattr(module, "dropout", None), "p", None))}
        moved = module.to("meta")
        seen["moved"] = str(getattr(getattr(moved, "mask", None),
                                                            "device", None))
        return seen
    except Exception as exc:  # student code may raise anything
        return {"error": data.error(exc)}


@causal_attention_buffer.judge
def _(seen: dict, verdict: Verdict) -> None:
    what = "CausalAttention(4, 3, context_length=7, dropout=0.1)"
    if "error" in seen:
        verdict.value(seen["error"], f"{what} (building the module)")
        return
    if "mask" in seen["parameters"]:
        verdict.fail(f"{what}: mask is an nn.Parameter; it should be a buffer "
                     "(self.register_buffer('mask', ...)): the optimizer must never see it")
    buffers = {k: data.decode(v) for k, v in seen["buffers"].items()}
    if "mask" not in buffers:
        verdict.fail(f"{what}: no buffer named 'mask' (found buffers {sorted(buffers)}; "
                     f"self.mask is a {seen['attribute']}): register it with "
                     "self.register_buffer('mask', ...) so that it moves with .to()")
    else:
        mask = buffers["mask"]
        if not isinstance(mask, data.Array) or mask.shape != (7, 7):
            verdict.fail(f"{what}: the mask buffer should have shape (context_length, "
                         f"context_length) = (7, 7); found {mask!r}")
        elif mask.dtype != "bool" and not mask.dtype.startswith(("float", "bfloat")):
            verdict.fail(f"{what}: the mask buffer has dtype {mask.dtype}; expected bool "
                         "(or float 0/1)")
        device = seen["moved"]
        if device != "meta":
            verdict.fail(f"{what}: after module.to('meta') self.mask is on {device}; a "
                         "registered buffer moves with the module (a plain tensor attribute "
                         "stays behind)")
    if seen["dropout"] != "Dropout":
        verdict.fail(f"{what}: self.dropout is a {seen['dropout']}; expected "
                     "nn.Dropout(dropout)")
    else:
        verdict.equal(seen["p"], 0.1, f"{what}: self.dropout.p",
                      hint="self.dropout = nn.Dropout(dropout)")


causal_attention_errors = Check("causal_attention_errors", exercise=CA)


@causal_attention_errors.observe
def _(student: Student) -> dict:
    try:
        module = _build(student, 61, 3, 2, 4, 0.0, False)
    except Exception as exc:  # student code may raise anything
        return {"error": data.error(exc), "too long": data.error(exc)}
    seen = {"too long": Student.attempt(lambda: module(_randn(161, (2, 5, 3))))}
    seen["much too long"] = Student.attempt(lambda: module(_randn(162, (1, 9, 3))))
    return seen


@causal_attention_errors.judge
def _(seen: dict, verdict: Verdict) -> None:
    if "error" in seen:
        verdict.value(seen["error"], "CausalAttention(3, 2, context_length=4, dropout=0.0)")
        return
    for key, n in (("too long", 5), ("much too long", 9)):
        verdict.raises(seen[key], f"CausalAttention(3, 2, context_length=4, dropout=0.0) on "
                       f"{n} tokens", "ValueError", mentions="context_length")


causal_attention_future = Check("causal_attention_future", exercise=CA)
FUTURE = [(71, 2, 9, 4), (72, 1, 6, 0)]  # (seed, batch, num_tokens, t): change x after t


def _future_inputs(seed, batch, n, t):
    x = _randn(seed, (batch, n, 4))
    changed = x.clone()
    changed[:, t + 1:] = _randn(seed + 1, (batch, n - t - 1, 4)) * 3
    return x, changed


@causal_attention_future.observe
def _(student: Student) -> dict:
    seen = {}
    try:
        module = _build(student, 70, 4, 3, 10, 0.0, False).eval()
    except Exception as exc:  # student code may raise anything
        return {"error": data.error(exc)}
    with torch.no_grad():
        for seed, batch, n, t in FUTURE:
            x, changed = _future_inputs(seed, batch, n, t)
            seen[str(seed)] = [Student.attempt(lambda x=x: module(x)),
                               Student.attempt(lambda c=changed: module(c))]
    return seen


@causal_attention_future.judge
def _(seen: dict, verdict: Verdict) -> None:
    if "error" in seen:
        verdict.value(seen["error"], "CausalAttention(4, 3, context_length=10, dropout=0.0)")
        return
    for seed, batch, n, t in FUTURE:
        what = f"CausalAttention on {n} tokens"
        before = verdict.value(seen[str(seed)][0], what)
        after = verdict.value(seen[str(seed)][1], what)
        if not isinstance(before, data.Array) or not isinstance(after, data.Array) \
                or before.values is None or after.values is None \
                or before.shape != (batch, n, 3) or after.shape != (batch, n, 3):
            verdict.fail(f"{what}: expected outputs of shape ({batch}, {n}, 3), found "
                         f"{before!r} and {after!r}")
            continue
        change = np.abs(before.values[:, :t + 1] - after.values[:, :t + 1]).max()
        if change > 1e-6:
            verdict.fail(f"{what}: changing the tokens after position {t} changed the outputs "
                         f"at positions 0..{t} by up to {change:.3g}; expected no change. "
                         "The future is leaking: are the hidden scores set to -inf (not 0), "
                         "and does True in the mask mean hidden?")
        if np.abs(before.values[:, t + 1:] - after.values[:, t + 1:]).max() < 1e-6:
            verdict.fail(f"{what}: changing the tokens after position {t} did not change the "
                         "outputs there either: is the input used at all?")


causal_attention_dropout = Check("causal_attention_dropout", exercise=CA)
DROPOUT = [(81, 0.5, (2, 5, 3)), (82, 0.2, (1, 6, 3))]  # (seed, p, input shape)


@causal_attention_dropout.observe
def _(student: Student) -> dict:
    seen = {}
    for seed, p, shape in DROPOUT:
        try:
            module = _build(student, seed, 3, 4, 6, p, False)
            module.train()
            record = {"state": _state(module)}
            x = _randn(seed + 100, shape)
            torch.manual_seed(seed + 200)
            record["output"] = Student.attempt(lambda x=x, m=module: m(x))
        except Exception as exc:  # student code may raise anything
            record = {"error": data.error(exc)}
        seen[str(seed)] = record
    return seen


@causal_attention_dropout.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference.causal_masking import reference_train_output, train_bugs

    for seed, p, shape in DROPOUT:
        what = f"CausalAttention(3, 4, 6, dropout={p}) in train mode after " \
               f"torch.manual_seed({seed + 200})"
        state = _weights(verdict, seen[str(seed)], what)
        if state is None:
            continue
        x = _randn(seed + 100, shape)
        if _explain(verdict, seen[str(seed)]["output"], what, shape[1], 6):
            continue
        verdict.array(seen[str(seed)]["output"],
                      reference_train_output(x, state, p, seed + 200), what, atol=2e-5,
                      rtol=1e-4, dtype="float32", library="torch",
                      variants=train_bugs(x, state, p, seed + 200),
                      hint="apply self.dropout once, to the attention weights right after the "
                           "softmax, and to nothing else")
