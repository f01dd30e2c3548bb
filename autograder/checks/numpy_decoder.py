"""Hidden checks for 07-numpy-decoder (NumPy only; the references use PyTorch)."""

from __future__ import annotations

import math

import numpy as np

from autograder import data
from autograder.checks import Check, Student, Verdict

ASSIGNMENT = "07-numpy-decoder"


def _normal(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal(shape)


def _weights(seed: int, d_model: int) -> tuple[np.ndarray, ...]:
    """W_q, W_k, W_v, W_o of shape (d_model, d_model), scaled like a trained layer."""
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((d_model, d_model)) / math.sqrt(d_model) for _ in range(4))


def _params(seed: int, vocab_size: int, d_model: int, d_ff: int) -> dict[str, np.ndarray]:
    """Decoder weights in which positions matter, so greedy decoding does not just repeat."""
    rng = np.random.default_rng(seed)

    def matrix(rows, cols):
        return 2.0 * rng.standard_normal((rows, cols)) / math.sqrt(rows)

    return {
        "W_emb": 0.5 * rng.standard_normal((vocab_size, d_model)),
        "ln1_gamma": 1 + 0.1 * rng.standard_normal(d_model),
        "ln1_beta": 0.1 * rng.standard_normal(d_model),
        "W_q": matrix(d_model, d_model), "W_k": matrix(d_model, d_model),
        "W_v": matrix(d_model, d_model), "W_o": matrix(d_model, d_model),
        "ln2_gamma": 1 + 0.1 * rng.standard_normal(d_model),
        "ln2_beta": 0.1 * rng.standard_normal(d_model),
        "W_1": matrix(d_model, d_ff), "b_1": 0.1 * rng.standard_normal(d_ff),
        "W_2": matrix(d_ff, d_model), "b_2": 0.1 * rng.standard_normal(d_model),
    }


def _ids(seed: int, vocab_size: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab_size, n)


# --- softmax ----------------------------------------------------------------------------------

softmax_basics = Check("softmax_basics", exercise="softmax")


@softmax_basics.observe
def _(student: Student) -> dict:
    return {"out": student.call("softmax", np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])),
            "axis0": student.call("softmax", np.array([[1.0], [3.0]]), axis=0)}


@softmax_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference import numpy_decoder as ref

    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    verdict.array(seen["out"], ref.softmax(x), "softmax([[1, 2, 3], [0, 0, 0]])",
                  library="numpy", variants=ref.softmax_bugs(x),
                  hint="exp(x - max) divided by its sum along the last axis")
    verdict.array(seen["axis0"], [[0.11920292202211755], [0.8807970779778823]],
                  "softmax([[1], [3]], axis=0)", library="numpy",
                  hint="softmax(x, axis=0) normalises down the columns: use the axis argument")


SOFTMAX_CASES = [  # (seed, shape, axis, scale)
    (1, (5,), -1, 1.0), (2, (4, 7), -1, 3.0), (3, (4, 7), 0, 1.0), (4, (2, 3, 5), 1, 2.0),
    (5, (2, 3, 5), -1, 1.0), (6, (3, 4, 2), 0, 1.0), (7, (1, 1), -1, 1.0), (8, (6, 1), -1, 5.0),
]

softmax_values = Check("softmax_values", exercise="softmax")


@softmax_values.observe
def _(student: Student) -> dict:
    return {str(i): student.call("softmax", _normal(seed, shape, scale), axis=axis)
            for i, (seed, shape, axis, scale) in enumerate(SOFTMAX_CASES)}


@softmax_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference import numpy_decoder as ref

    for i, (seed, shape, axis, scale) in enumerate(SOFTMAX_CASES):
        x = _normal(seed, shape, scale)
        verdict.array(seen[str(i)], ref.softmax(x, axis), f"softmax(x, axis={axis}) for x of "
                      f"shape {shape}", library="numpy", variants=ref.softmax_bugs(x, axis),
                      hint="normalise along the given axis (keepdims=True keeps it broadcastable)")


STABILITY_CASES = [  # (name, x, axis)
    ("large scores", np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1003.0]]), -1),
    ("very large scores", np.array([[3e4, 0.0, -3e4, 2.99e4]]), -1),
    ("scores of order 1000, axis 0", _normal(11, (5, 3), 1000.0), 0),
    ("-inf entries", np.array([[0.0, -np.inf, 1.0, -np.inf], [-np.inf, 2.0, 2.0, 0.5]]), -1),
    ("-inf entries among large scores", np.array([[800.0, -np.inf, 805.0, 790.0]]), -1),
]

softmax_stability = Check("softmax_stability", exercise="softmax")


@softmax_stability.observe
def _(student: Student) -> dict:
    with np.errstate(all="ignore"):
        return {name: student.call("softmax", x, axis=axis) for name, x, axis in STABILITY_CASES}


@softmax_stability.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference import numpy_decoder as ref

    for name, x, axis in STABILITY_CASES:
        what = f"softmax of {name} {x.tolist() if x.size <= 8 else 'of shape ' + str(x.shape)}"
        found = verdict.value(seen[name], what)
        if found is None:
            continue
        if not isinstance(found, data.Array) or found.values is None or found.shape != x.shape:
            verdict.fail(f"{what} returned {found!r}; expected an array of shape {x.shape}")
            continue
        if not np.all(np.isfinite(found.values)):
            verdict.fail(f"{what} contains nan or inf ({found.values.tolist()}): exp overflows "
                         "for large scores; subtract the maximum before exponentiating")
            continue
        expected = ref.softmax(x, axis)
        if not verdict.array(seen[name], expected, what, library="numpy"):
            continue
        if np.any(found.values[np.isneginf(x)] != 0):
            verdict.fail(f"{what}: entries that are -inf must get weight exactly 0")


# --- layer_norm -------------------------------------------------------------------------------

layer_norm_basics = Check("layer_norm_basics", exercise="layer_norm")


@layer_norm_basics.observe
def _(student: Student) -> dict:
    x = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.5, -0.5, 2.0]])
    return {"out": student.call("layer_norm", x, np.ones(4), np.zeros(4))}


@layer_norm_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference import numpy_decoder as ref

    x = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.5, -0.5, 2.0]])
    verdict.array(seen["out"], ref.layer_norm(x, np.ones(4), np.zeros(4)),
                  "layer_norm(x, ones(4), zeros(4)) for x = [[1, 2, 3, 4], [0, 0.5, -0.5, 2]]",
                  library="numpy", variants=ref.layer_norm_bugs(x, np.ones(4), np.zeros(4)),
                  hint="(x - mean) / sqrt(var + eps) over the last axis")


LAYER_NORM_CASES = [  # (name, seed, shape, scale, eps)
    ("2-D", 21, (5, 8), 1.0, 1e-5),
    ("2-D with a small spread (std about 0.01)", 22, (4, 16), 0.01, 1e-5),
    ("2-D, eps=0.1", 23, (3, 6), 1.0, 0.1),
    ("1-D", 24, (6,), 2.0, 1e-5),
    ("3-D", 25, (2, 3, 10), 1.0, 1e-5),
    ("one token, 64 features", 26, (1, 64), 0.3, 1e-5),
    ("3-D, large offset", 27, (2, 2, 5), 1.0, 1e-5),
]

layer_norm_values = Check("layer_norm_values", exercise="layer_norm")


def _layer_norm_inputs(seed, shape, scale):
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal(shape) + (100.0 if seed == 27 else 0.5)
    gamma = 1 + 0.5 * rng.standard_normal(shape[-1])
    beta = 0.5 * rng.standard_normal(shape[-1])
    return x, gamma, beta


@layer_norm_values.observe
def _(student: Student) -> dict:
    seen = {}
    for name, seed, shape, scale, eps in LAYER_NORM_CASES:
        x, gamma, beta = _layer_norm_inputs(seed, shape, scale)
        seen[name] = student.call("layer_norm", x, gamma, beta, eps=eps)
    return seen


@layer_norm_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference import numpy_decoder as ref

    for name, seed, shape, scale, eps in LAYER_NORM_CASES:
        x, gamma, beta = _layer_norm_inputs(seed, shape, scale)
        verdict.array(seen[name], ref.layer_norm(x, gamma, beta, eps),
                      f"layer_norm(x, gamma, beta, eps={eps}) for x {name} of shape {shape}",
                      library="numpy", variants=ref.layer_norm_bugs(x, gamma, beta, eps),
                      hint="normalise each row over the last axis, then scale by gamma and "
                      "shift by beta")


# --- gelu -------------------------------------------------------------------------------------

gelu_basics = Check("gelu_basics", exercise="gelu")


@gelu_basics.observe
def _(student: Student) -> dict:
    return {"out": student.call("gelu", np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.7]))}


@gelu_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference import numpy_decoder as ref

    x = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.7])
    verdict.array(seen["out"], ref.gelu(x), "gelu([-3, -1, 0, 0.5, 1, 2.7])", atol=1e-6,
                  rtol=1e-6, library="numpy", variants=ref.gelu_bugs(x),
                  hint="0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))")


GELU_CASES = [  # (name, x)
    ("x = linspace(-6, 6, 241)", np.linspace(-6.0, 6.0, 241)),
    ("2-D x", _normal(31, (4, 9), 2.0)),
    ("3-D x", _normal(32, (2, 3, 4), 1.5)),
    ("a single value", np.array([1.3])),
    ("large values", np.array([-1000.0, -50.0, 50.0, 1000.0, 1e4, -1e4])),
]

gelu_values = Check("gelu_values", exercise="gelu")


@gelu_values.observe
def _(student: Student) -> dict:
    with np.errstate(all="ignore"):
        return {name: student.call("gelu", x) for name, x in GELU_CASES}


@gelu_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference import numpy_decoder as ref

    for name, x in GELU_CASES:
        verdict.array(seen[name], ref.gelu(x), f"gelu(x) for {name}", atol=1e-6, rtol=1e-6,
                      library="numpy", variants=ref.gelu_bugs(x),
                      hint="elementwise tanh approximation, any shape; large inputs must stay "
                      "finite (gelu(x) = x for large x, 0 for large negative x)")


# --- multi_head_causal_attention -----------------------------------------------------------

ATTENTION = "multi_head_causal_attention"

attention_basics = Check("attention_basics", exercise=ATTENTION)


@attention_basics.observe
def _(student: Student) -> dict:
    return {"out": student.call(ATTENTION, _normal(40, (4, 6)), *_weights(41, 6), 2)}


@attention_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference import numpy_decoder as ref

    x, W = _normal(40, (4, 6)), _weights(41, 6)
    verdict.array(seen["out"], ref.attention(x, *W, 2), "multi_head_causal_attention(x, W_q, "
                  "W_k, W_v, W_o, num_heads=2) for x of shape (4, 6)", atol=1e-5, rtol=1e-4,
                  library="numpy", variants=ref.attention_bugs(x, *W, 2))


ATTENTION_CASES = [  # (seed, n, d_model, num_heads)
    (42, 5, 8, 2), (43, 7, 12, 3), (44, 6, 8, 1), (45, 1, 8, 4), (46, 9, 10, 5), (47, 16, 16, 4),
]

attention_values = Check("attention_values", exercise=ATTENTION)


@attention_values.observe
def _(student: Student) -> dict:
    return {str(seed): student.call(ATTENTION, _normal(seed, (n, d)), *_weights(seed + 100, d), h)
            for seed, n, d, h in ATTENTION_CASES}


@attention_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference import numpy_decoder as ref

    for seed, n, d, h in ATTENTION_CASES:
        x, W = _normal(seed, (n, d)), _weights(seed + 100, d)
        verdict.array(seen[str(seed)], ref.attention(x, *W, h),
                      f"multi_head_causal_attention for seq_len={n}, d_model={d}, num_heads={h}",
                      atol=1e-5, rtol=1e-4, library="numpy",
                      variants=ref.attention_bugs(x, *W, h),
                      hint="compare with F.scaled_dot_product_attention(is_causal=True) per head "
                      "(head i uses columns i*head_dim:(i+1)*head_dim), then heads merged @ W_o")


CAUSAL_CASES = [(50, 8, 8, 2, 3), (51, 6, 12, 3, 1), (52, 5, 6, 1, 4)]  # (seed, n, d, h, t)

attention_causal = Check("attention_causal", exercise=ATTENTION)


def _perturbed(seed: int, x: np.ndarray, t: int) -> np.ndarray:
    changed = x.copy()
    changed[t:] = _normal(seed + 7, changed[t:].shape, 3.0)
    return changed


@attention_causal.observe
def _(student: Student) -> dict:
    seen = {}
    for seed, n, d, h, t in CAUSAL_CASES:
        x, W = _normal(seed, (n, d)), _weights(seed + 100, d)
        seen[f"{seed}"] = student.call(ATTENTION, x, *W, h)
        seen[f"{seed} changed"] = student.call(ATTENTION, _perturbed(seed, x, t), *W, h)
    return seen


@attention_causal.judge
def _(seen: dict, verdict: Verdict) -> None:
    for seed, n, d, h, t in CAUSAL_CASES:
        what = f"multi_head_causal_attention (seq_len={n}, num_heads={h})"
        before = verdict.value(seen[f"{seed}"], what)
        after = verdict.value(seen[f"{seed} changed"], what)
        if before is None or after is None:
            continue
        if not all(isinstance(a, data.Array) and a.values is not None and a.shape == (n, d)
                   for a in (before, after)):
            verdict.fail(f"{what} returned {before!r}; expected an array of shape ({n}, {d})")
            continue
        change = float(np.max(np.abs(before.values[:t] - after.values[:t])))
        if change > 1e-8:
            verdict.fail(f"{what}: changing the tokens from position {t} on changed the outputs "
                         f"at positions 0..{t - 1} by up to {change:.3g}. A token must not see "
                         "later tokens: is the causal mask (True strictly above the diagonal) "
                         "applied to the scores before the softmax?")


# --- decoder_forward --------------------------------------------------------------------------

DECODER = "decoder_forward"

decoder_basics = Check("decoder_basics", exercise=DECODER)


@decoder_basics.observe
def _(student: Student) -> dict:
    return {"out": student.call(DECODER, _ids(60, 11, 6), _params(60, 11, 8, 32), 2)}


@decoder_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference import numpy_decoder as ref

    ids, params = _ids(60, 11, 6), _params(60, 11, 8, 32)
    verdict.array(seen["out"], ref.decoder(ids, params, 2), "decoder_forward(token_ids, params, "
                  "num_heads=2) for 6 tokens, vocab_size 11, d_model 8", atol=1e-4, rtol=1e-4,
                  library="numpy", variants=ref.decoder_bugs(ids, params, 2),
                  hint="check the wiring: pre-LN residual branches, the positional encoding, "
                  "logits = h @ W_emb.T")


DECODER_CASES = [  # (seed, vocab_size, d_model, d_ff, num_heads, n)
    (61, 11, 8, 32, 2, 6), (62, 7, 12, 20, 3, 9), (63, 5, 8, 16, 1, 1), (64, 13, 6, 24, 2, 12),
    (65, 20, 16, 64, 4, 10),
]

decoder_values = Check("decoder_values", exercise=DECODER)


@decoder_values.observe
def _(student: Student) -> dict:
    return {str(seed): student.call(DECODER, _ids(seed, V, n), _params(seed, V, d, f), h)
            for seed, V, d, f, h, n in DECODER_CASES}


@decoder_values.judge
def _(seen: dict, verdict: Verdict) -> None:
    from autograder.reference import numpy_decoder as ref

    for seed, V, d, f, h, n in DECODER_CASES:
        ids, params = _ids(seed, V, n), _params(seed, V, d, f)
        verdict.array(seen[str(seed)], ref.decoder(ids, params, h),
                      f"decoder_forward for {n} token(s), vocab_size={V}, d_model={d}, "
                      f"d_ff={f}, num_heads={h}", atol=1e-4, rtol=1e-4, library="numpy",
                      variants=ref.decoder_bugs(ids, params, h),
                      hint="compare step by step with a PyTorch decoder holding the same "
                      "weights; if the four functions above pass, look at the wiring: "
                      "residuals, pre-LN, positional encoding, logits = h @ W_emb.T")


DECODER_CAUSAL = [(66, 9, 8, 16, 2, 8, 3), (67, 6, 12, 24, 3, 5, 1)]  # (..., n, t)

decoder_causal = Check("decoder_causal", exercise=DECODER)


def _changed_ids(seed: int, V: int, ids: np.ndarray, t: int) -> np.ndarray:
    changed = ids.copy()
    changed[t:] = (ids[t:] + 1 + _ids(seed + 7, V - 1, len(ids) - t)) % V
    return changed


@decoder_causal.observe
def _(student: Student) -> dict:
    seen = {}
    for seed, V, d, f, h, n, t in DECODER_CAUSAL:
        ids, params = _ids(seed, V, n), _params(seed, V, d, f)
        seen[str(seed)] = student.call(DECODER, ids, params, h)
        seen[f"{seed} changed"] = student.call(DECODER, _changed_ids(seed, V, ids, t), params, h)
    return seen


@decoder_causal.judge
def _(seen: dict, verdict: Verdict) -> None:
    for seed, V, _, _, h, n, t in DECODER_CAUSAL:
        what = f"decoder_forward ({n} tokens, num_heads={h})"
        before = verdict.value(seen[str(seed)], what)
        after = verdict.value(seen[f"{seed} changed"], what)
        if before is None or after is None:
            continue
        if not all(isinstance(a, data.Array) and a.values is not None and a.shape == (n, V)
                   for a in (before, after)):
            verdict.fail(f"{what} returned {before!r}; expected logits of shape ({n}, {V})")
            continue
        change = float(np.max(np.abs(before.values[:t] - after.values[:t])))
        if change > 1e-7:
            verdict.fail(f"{what}: changing the tokens from position {t} on changed the logits "
                         f"at positions 0..{t - 1} by up to {change:.3g}: the logits for a "
                         "position must depend only on the tokens up to it (causal attention)")


# --- generate ---------------------------------------------------------------------------------

generate_basics = Check("generate_basics", exercise="generate")


def _visible_params() -> dict[str, np.ndarray]:
    """The weights of the visible generate test."""
    rng = np.random.default_rng(2)
    V, d, d_ff = 12, 8, 32
    return {"W_emb": rng.standard_normal((V, d)), "ln1_gamma": np.ones(d), "ln1_beta": np.zeros(d),
            "ln2_gamma": np.ones(d), "ln2_beta": np.zeros(d), "b_1": np.zeros(d_ff),
            "b_2": np.zeros(d),
            **{k: rng.standard_normal((d, d)) / 2 for k in ("W_q", "W_k", "W_v", "W_o")},
            "W_1": rng.standard_normal((d, d_ff)) / 2, "W_2": rng.standard_normal((d_ff, d)) / 4}


@generate_basics.observe
def _(student: Student) -> dict:
    return {"out": student.call("generate", [3, 1, 4], _params(70, 12, 8, 32), 2, 5),
            "visible": student.call("generate", [3, 1, 4], _visible_params(), 2, 5),
            "none": student.call("generate", [5], _visible_params(), 2, 0)}


def _judge_generate(verdict: Verdict, seen, prompt, params, h, k) -> None:
    from autograder.reference import numpy_decoder as ref

    what = f"generate({prompt}, params, num_heads={h}, max_new_tokens={k})"
    found = verdict.value(seen, what)
    if found is None:
        return
    if not isinstance(found, list):
        kind = found.type if isinstance(found, data.Opaque) else \
            ("a tuple" if isinstance(found, tuple) else
             f"a {found.library} array" if isinstance(found, data.Array) else type(found).__name__)
        verdict.fail(f"{what} returned {kind}; expected a list of token ids (list(...))")
        return
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in found):
        verdict.fail(f"{what} returned {found!r}; expected a list of integer token ids")
        return
    expected = ref.generate(prompt, params, h, k)
    if len(found) != len(expected):
        hint = ""
        if len(found) == k:
            hint = ": it returned only the new tokens; return the prompt followed by them"
        elif len(found) == len(prompt) + k - 1 or len(found) == len(prompt) + k + 1:
            hint = ": is the loop off by one?"
        verdict.fail(f"{what} returned {len(found)} ids {found}; expected {len(expected)} "
                     f"(the {len(prompt)} prompt ids followed by exactly {k} new ones){hint}")
        return
    if found[:len(prompt)] != list(prompt):
        verdict.fail(f"{what} returned {found}: it should start with the prompt {prompt}")
        return
    if found != expected:
        message = f"{what} returned {found}; expected {expected}"
        for label, variant in ref.generate_bugs(prompt, params, h, k).items():
            if found == variant:
                message += f". It matches {label}"
                break
        else:
            message += (". Each new id is the argmax of the last row of "
                        "decoder_forward(all ids so far); check decoder_forward first")
        verdict.fail(message)


@generate_basics.judge
def _(seen: dict, verdict: Verdict) -> None:
    _judge_generate(verdict, seen["out"], [3, 1, 4], _params(70, 12, 8, 32), 2, 5)
    _judge_generate(verdict, seen["visible"], [3, 1, 4], _visible_params(), 2, 5)
    _judge_generate(verdict, seen["none"], [5], _visible_params(), 2, 0)


GENERATE_CASES = [  # (seed, vocab_size, d_model, d_ff, num_heads, prompt, max_new_tokens)
    (71, 12, 8, 32, 2, [5, 0, 7, 2], 8),
    (72, 9, 12, 24, 3, [4], 6),
    (73, 15, 8, 16, 1, [1, 2, 3], 0),
    (74, 10, 6, 12, 2, [9, 8], 1),
    (75, 16, 16, 32, 4, [0, 1, 2, 3, 4, 5], 10),
]

generate_contract = Check("generate_contract", exercise="generate")


@generate_contract.observe
def _(student: Student) -> dict:
    return {str(seed): student.call("generate", list(prompt), _params(seed, V, d, f), h, k)
            for seed, V, d, f, h, prompt, k in GENERATE_CASES}


@generate_contract.judge
def _(seen: dict, verdict: Verdict) -> None:
    for seed, V, d, f, h, prompt, k in GENERATE_CASES:
        _judge_generate(verdict, seen[str(seed)], prompt, _params(seed, V, d, f), h, k)
