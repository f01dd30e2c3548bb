"""Reference for 01-positional-encoding: the encoding, its shift matrix, and known bugs."""

from __future__ import annotations

import numpy as np


def reference_encoding(positions, d_model: int, base: float = 10000.0) -> np.ndarray:
    """pe[p, 2i] = sin(p / base**(2i/d)), pe[p, 2i+1] = cos(same), for any positions."""
    positions = np.asarray(positions, dtype=np.float64)[:, None]
    angles = positions / base ** (np.arange(0, d_model, 2) / d_model)
    pe = np.empty((len(positions), d_model))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles)
    return pe


def reference_rotation(offset: int, d_model: int, base: float = 10000.0) -> np.ndarray:
    """Block-diagonal M with pe[p + offset] = M @ pe[p]."""
    M = np.zeros((d_model, d_model))
    for i, omega in enumerate(base ** (-np.arange(0, d_model, 2) / d_model)):
        c, s = np.cos(offset * omega), np.sin(offset * omega)
        M[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, s], [-s, c]]
    return M


def encoding_bugs(seq_len: int, d_model: int, base: float = 10000.0) -> dict[str, np.ndarray]:
    """Encodings produced by known bugs, so a failure can name its likely cause."""
    p = np.arange(seq_len, dtype=np.float64)[:, None]
    i2 = np.arange(0, d_model, 2)
    good = reference_encoding(np.arange(seq_len), d_model, base)
    cos_shifted = good.copy()
    cos_shifted[:, 1::2] = np.cos((p - 1) / base ** (i2 / d_model))
    swapped = good.copy()
    swapped[:, 0::2], swapped[:, 1::2] = good[:, 1::2], good[:, 0::2]
    no_two = good.copy()
    no_two[:, 0::2] = np.sin(p / base ** (np.arange(d_model // 2) / d_model))
    no_two[:, 1::2] = np.cos(p / base ** (np.arange(d_model // 2) / d_model))
    halves = np.concatenate([good[:, 0::2], good[:, 1::2]], axis=1)
    return {
        "the encoding whose cosine uses pos - 1 (a published bug)": cos_shifted,
        "sin and cos swapped (sin belongs on even dimensions 2i)": swapped,
        "frequencies base**(i/d_model) (the exponent needs 2i/d_model)": no_two,
        "all sines then all cosines (they must interleave: 2i, 2i+1)": halves,
        "positions starting at 1 (p runs from 0)":
            reference_encoding(np.arange(1, seq_len + 1), d_model, base),
    }
