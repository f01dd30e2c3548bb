"""The mutant sweep (``testkit.sweep``): every small wrong edit of every solution cell
fails a check of its exercise, except the edits listed here, each equivalent to the solution.

A new survivor is a gap in the hidden checks (or a new equivalent edit: then add it here with the
reason it cannot change any answer). A listed edit that is now caught means the list is stale.
"""

import pytest
from conftest import ASSIGNMENTS

from testkit.sweep import Survivor, sweep

pytestmark = pytest.mark.slow  # about 30 s of hidden checks in-process

EQUIVALENT = {
    "01-positional-encoding": {
        Survivor("sinusoidal_positional_encoding", "dropped_keyword", "line 6: dtype="):
            "np.arange(seq_len) is int64, and dividing it by a float power gives float64 anyway",
        Survivor("sinusoidal_positional_encoding", "changed_constant", "line 4: 0"):
            "d_model <= 1 instead of <= 0: d_model = 1 is odd and raises anyway",
    },
    "05-multi-head-attention": {
        Survivor("MultiHeadAttention", "changed_constant", "line 20: 0"):
            "self.mask.shape[1] instead of [0]: the mask is square",
        Survivor("MultiHeadAttention", "changed_constant", "line 21: 0"):
            "the same, inside the error message",
    },
    "06-rope": {
        Survivor("precompute_rope_params", "dropped_keyword", "line 5: dtype="):
            "an int64 arange divided by head_dim is float32 (true division)",
        Survivor("precompute_rope_params", "dropped_keyword", "line 6: dtype="):
            "positions times float32 inv_freq is float32 either way",
        Survivor("compute_rope", "changed_constant", "line 6: 0"):
            "a constant inside an error message",
        Survivor("compute_rope", "changed_constant", "line 8: 1"):
            "a constant inside an error message",
        Survivor("RoPEMultiHeadAttention", "dropped_keyword", "line 6: persistent="):
            "the contract asks only that cos is a buffer; persistence is not part of it",
        Survivor("RoPEMultiHeadAttention", "dropped_keyword", "line 7: persistent="):
            "the same for sin",
        Survivor("RoPEMultiHeadAttention", "changed_constant", "line 11: 0"):
            "self.mask.shape[1] instead of [0]: the mask is square",
        Survivor("RoPEMultiHeadAttention", "changed_constant", "line 12: 0"):
            "the same, inside the error message",
    },
    "08-kv-cache": {
        Survivor("GroupedQueryAttention", "dropped_keyword", "line 21: persistent="):
            "the contract asks only that cos is a buffer; persistence is not part of it",
        Survivor("GroupedQueryAttention", "dropped_keyword", "line 22: persistent="):
            "the same for sin",
        Survivor("GroupedQueryAttention", "plus_minus", "line 27: Add"):
            "past - num_new > context_length never raises, but the tables end at context_length: "
            "compute_rope then raises ValueError on the short slice, before the cache is touched",
    },
    "07-numpy-decoder": {
        Survivor("multi_head_causal_attention", "dropped_keyword", "line 9: dtype="):
            "np.triu of float ones is still truthy above the diagonal, as np.where reads it",
        Survivor("multi_head_causal_attention", "dropped_keyword", "line 10: axis="):
            "the course's softmax defaults to axis=-1",
    },
}


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_every_small_edit_is_caught_or_known_equivalent(assignment_id):
    results, survivors = sweep(assignment_id)
    assert results, "the sweep generated no mutant: is the solution there?"
    known = EQUIVALENT.get(assignment_id, {})
    gaps = [s for s in survivors if s not in known]
    assert not gaps, f"mutants that pass every check of their exercise: {gaps}"
    stale = [s for s in known if s not in survivors]
    assert not stale, f"listed as equivalent but now caught (remove them): {stale}"
