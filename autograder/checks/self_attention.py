"""Hidden checks for 02-self-attention (PyTorch)."""

from __future__ import annotations

import numpy as np
import torch

from autograder import data
from autograder.checks import Check, Student, Verdict

ASSIGNMENT = "02-self-attention"

SDPA = "scaled_dot_product_attention"


def _randn(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def _qkv(seed: int, q_shape, k_shape, v_shape, scale: float = 1.0):
    return (_randn(seed, q_shape, scale), _randn(seed + 1, k_shape, scale),
            _randn(seed + 2, v_shape))


def _mask(kind: str, seed: int, shape: tuple[int, ...]) -> torch.Tensor | None:
    """A bool mask (True = hidden) in which every query keeps at least one visible key."""
    if kind == "none":
        return None
    n_q, n_k = shape[-2], shape[-1]
    if kind == "causal":
        return torch.triu(torch.ones(n_q, n_k, dtype=torch.bool), diagonal=1).expand(shape)
    hidden = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.5
    hidden[..., 0] = False  # the first key stays visible to every query
    return hidden


def _attention_pair(student: Student, args) -> dict:
    """Call the student's attention; record context and weights separately."""
    try:
        result = student.get(SDPA)(*args)
    except Exception as exc:  # student code may raise anything
        return {"context": data.error(exc), "weights": data.error(exc)}
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        problem = TypeError(f"returned {type(result).__name__}; expected a pair "
                            "(context, weights)")
        return {"context": data.error(problem), "weights": data.error(problem)}
    return {"context": data.encode(result[0]), "weights": data.encode(result[1])}


def _judge_pair(verdict: Verdict, seen: dict, args, what: str) -> None:
    from autograder.reference.self_attention import attention_bugs, reference_attention

    context, weights = reference_attention(*args)
    bugs = attention_bugs(*args)
    for part, expected, index in (("context", context, 0), ("weights", weights, 1)):
        verdict.array(seen[part], expected, f"the {part} of {what}", atol=2e-5, rtol=1e-4,
                      dtype="float32", library="torch",
                      variants={label: pair[index] for label, pair in bugs.items()},
                      hint="context is weights @ values with weights = softmax(queries @ "
                           "keys^T / sqrt(d_k)) over the last dim" if part == "context"
                      else "weights = softmax(queries @ keys^T / sqrt(d_k), dim=-1)")
    found = verdict.value(seen["weights"], what)
    if isinstance(found, data.Array) and found.values is not None \
            and found.shape == weights.shape:
        sums = found.values.sum(axis=-1)
        if not (abs(sums - 1) < 1e-4).all():
            verdict.fail(f"the rows of the weights of {what} should sum to 1 (a softmax over the "
                         f"keys, dim=-1); found row sums from {sums.min():.4g} to "
                         f"{sums.max():.4g}")


# --- scaled_dot_product_attention ---------------------------------------------------------

sdpa_basics = Check("sdpa_basics", exercise=SDPA)

BASIC = (7, (2, 3, 4), (2, 3, 4), (2, 3, 4))


def _basic_masked():
    """The visible test's masked call: key 1 hidden from query 0 (True means hidden)."""
    return (torch.ones(1, 2, 3), torch.ones(1, 2, 3), torch.ones(1, 2, 1),
            torch.tensor([[False, True], [False, False]]))


@sdpa_basics.observe
def _(student: Student) -> dict:
    return {"plain": _attention_pair(student, _qkv(*BASIC)),
            "masked": _attention_pair(student, _basic_masked())}


@sdpa_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    _judge_pair(verdict, seen["plain"], _qkv(*BASIC), "scaled_dot_product_attention(q, k, v) "
                "with q, k, v of shape (2, 3, 4)")
    verdict.array(seen["masked"]["weights"], [[[1.0, 0.0], [0.5, 0.5]]],
                  "the weights of attention with the mask [[F, T], [F, F]] on equal scores",
                  atol=1e-5, dtype="float32", library="torch",
                  hint="True in the mask means hidden: a hidden key gets weight 0")


SDPA_CASES = [  # (name, seed, q shape, k shape, v shape, scale of q and k)
    ("a batch of 2, 5 tokens, d_k = 8", 11, (2, 5, 8), (2, 5, 8), (2, 5, 8), 1.0),
    ("n_q = 4 queries, n_k = 7 keys, d_k = 6, d_v = 3", 12, (3, 4, 6), (3, 7, 6), (3, 7, 3), 1.0),
    ("extra leading dims (2, 3), d_v = 5 > d_k = 4", 13, (2, 3, 4, 4), (2, 3, 6, 4),
     (2, 3, 6, 5), 1.0),
    ("no batch dim: (5, 16) queries and keys", 14, (5, 16), (5, 16), (5, 16), 1.0),
    ("one token, batch of one", 15, (1, 1, 4), (1, 1, 4), (1, 1, 4), 1.0),
    ("large scores: d_k = 64, inputs scaled by 2", 16, (1, 6, 64), (1, 6, 64), (1, 6, 2), 2.0),
    ("odd sizes: d_k = 1, 3 queries, 2 keys", 17, (1, 3, 1), (1, 2, 1), (1, 2, 7), 1.0),
]

sdpa_values = Check("sdpa_values", exercise=SDPA)


@sdpa_values.observe
def _(student: Student) -> dict:
    return {name: _attention_pair(student, _qkv(seed, qs, ks, vs, scale))
            for name, seed, qs, ks, vs, scale in SDPA_CASES}


@sdpa_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    for name, seed, qs, ks, vs, scale in SDPA_CASES:
        _judge_pair(verdict, seen[name], _qkv(seed, qs, ks, vs, scale),
                    f"scaled_dot_product_attention for {name}")


MASK_CASES = [  # (name, seed, q shape, k shape, v shape, mask kind, mask shape)
    ("a causal (4, 4) mask on a batch of 2", 21, (2, 4, 8), (2, 4, 8), (2, 4, 8),
     "causal", (4, 4)),
    ("a random (3, 5, 6) mask, n_q = 5, n_k = 6, d_v = 2", 22, (3, 5, 4), (3, 6, 4), (3, 6, 2),
     "random", (3, 5, 6)),
    ("a padding mask of shape (1, 6) broadcast over the queries", 23, (2, 3, 4), (2, 6, 4),
     (2, 6, 4), "random", (1, 6)),
    ("a (2, 1, 4, 4) mask on (2, 3, 4, d) inputs", 24, (2, 3, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8),
     "random", (2, 1, 4, 4)),
    ("a causal (1, 1) mask on one token", 25, (1, 1, 3), (1, 1, 3), (1, 1, 3), "causal", (1, 1)),
]


def _mask_args(seed, qs, ks, vs, kind, shape):
    return (*_qkv(seed, qs, ks, vs), _mask(kind, seed + 3, shape))


sdpa_mask = Check("sdpa_mask", exercise=SDPA)


@sdpa_mask.observe
def _(student: Student) -> dict:
    return {name: _attention_pair(student, _mask_args(*rest)) for name, *rest in MASK_CASES}


@sdpa_mask.judge
def _(seen: dict, verdict: Verdict) -> None:
    for name, *rest in MASK_CASES:
        args = _mask_args(*rest)
        _judge_pair(verdict, seen[name], args, f"scaled_dot_product_attention with {name}")
        found = data.decode(seen[name]["weights"])
        if isinstance(found, data.Array) and found.values is not None:
            try:
                hidden = np.broadcast_to(args[3].numpy(), found.shape)
            except ValueError:
                continue
            leaked = float(np.abs(found.values[hidden]).max()) if hidden.any() else 0.0
            if leaked > 1e-6:
                verdict.fail(f"with {name}, hidden keys (mask True) get weight up to "
                             f"{leaked:.3g}; expected exactly 0: fill the hidden scores with "
                             "-inf before the softmax (True means hidden)")


# --- SelfAttention --------------------------------------------------------------------------

SA_CASES = [  # (name, seed, d_in, d_out, qkv_bias, input shapes)
    ("SelfAttention(3, 2)", 31, 3, 2, False, [(2, 6, 3), (1, 1, 3)]),
    ("SelfAttention(6, 4, qkv_bias=True)", 32, 6, 4, True, [(2, 5, 6), (1, 3, 6)]),
    ("SelfAttention(5, 8)", 33, 5, 8, False, [(3, 4, 5)]),
    ("SelfAttention(4, 4, qkv_bias=True)", 34, 4, 4, True, [(1, 7, 4)]),
]


def _observe_module(student: Student, seed: int, d_in: int, d_out: int, qkv_bias: bool,
                    shapes) -> dict:
    """Build the student's module under a fixed seed; record its weights and outputs."""
    try:
        torch.manual_seed(seed)
        module = student.get("SelfAttention")(d_in, d_out, qkv_bias=qkv_bias)
        seen = {"state": {k: data.encode(v) for k, v in module.state_dict().items()},
                "types": {name: type(getattr(module, name, None)).__name__
                          for name in ("W_query", "W_key", "W_value")}}
    except Exception as exc:  # student code may raise anything
        return {"error": data.error(exc)}
    seen["outputs"] = {}
    with torch.no_grad():
        for i, shape in enumerate(shapes):
            x = _randn(seed + 100 + i, shape)
            seen["outputs"][str(shape)] = Student.attempt(lambda x=x: module(x))
    return seen


def _observe_self_attention(student: Student, cases) -> dict:
    return {name: _observe_module(student, seed, d_in, d_out, qkv_bias, shapes)
            for name, seed, d_in, d_out, qkv_bias, shapes in cases}


def _judge_self_attention(verdict: Verdict, seen: dict, cases) -> None:
    from autograder.reference.self_attention import reference_self_attention, self_attention_bugs

    for name, seed, d_in, d_out, qkv_bias, shapes in cases:
        record = seen[name]
        if "error" in record:
            verdict.value(record["error"], f"{name} (building the module)")
            continue
        types = record["types"]
        if any(t != "Linear" for t in types.values()):
            verdict.fail(f"{name}: W_query, W_key and W_value should be nn.Linear(d_in, d_out, "
                         f"bias=qkv_bias) modules; found {types}")
            continue
        decoded = {k: data.decode(v) for k, v in record["state"].items()}
        state = {k: v.values for k, v in decoded.items() if isinstance(v, data.Array)}
        before = len(verdict.failures)
        for proj in ("W_query", "W_key", "W_value"):
            shape = decoded[f"{proj}.weight"].shape
            if shape != (d_out, d_in):
                verdict.fail(f"{name}: {proj}.weight has shape {shape}; expected "
                             f"({d_out}, {d_in}) = (d_out, d_in)")
            if (f"{proj}.bias" in state) != qkv_bias:
                verdict.fail(f"{name}: {proj} {'has no' if qkv_bias else 'has a'} bias; "
                             f"expected bias={qkv_bias}: pass bias=qkv_bias to nn.Linear")
        if len(verdict.failures) > before:
            continue
        for i, shape in enumerate(shapes):
            x = _randn(seed + 100 + i, shape)
            verdict.array(record["outputs"][str(shape)], reference_self_attention(x, state, d_out),
                          f"{name} on x of shape {shape}", atol=2e-5, rtol=1e-4,
                          dtype="float32", library="torch",
                          variants=self_attention_bugs(x, state, d_in),
                          hint="queries, keys and values come from W_query, W_key and W_value; "
                               "weights = softmax(q @ k^T / sqrt(d_out), dim=-1); "
                               "output = weights @ values")


self_attention_basics = Check("self_attention_basics", exercise="SelfAttention")


@self_attention_basics.observe
def _(student: Student) -> dict:
    return _observe_self_attention(student, SA_CASES[:1])


@self_attention_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    _judge_self_attention(verdict, seen, SA_CASES[:1])


self_attention_values = Check("self_attention_values", exercise="SelfAttention")


@self_attention_values.observe
def _(student: Student) -> dict:
    return _observe_self_attention(student, SA_CASES[1:])


@self_attention_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    _judge_self_attention(verdict, seen, SA_CASES[1:])
