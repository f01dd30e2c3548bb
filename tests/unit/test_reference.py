"""``reference``: what the judges compare with."""


def test_reference_dropout_is_pytorchs_and_leaves_the_global_generator_alone():
    """Judges run in parallel threads: a reference must draw dropout from its own generator
    (the global one is shared by every thread) and draw exactly what the student's
    nn.Dropout draws after torch.manual_seed(seed)."""
    import torch
    import torch.nn.functional as F

    from autograder.reference import dropout, generator
    from autograder.reference.stacking_heads import stacked

    for dtype in (torch.float32, torch.float64):
        for p in (0.0, 0.19, 0.5, 1.0):
            x = torch.randn(2, 3, 4, 4, dtype=dtype)
            torch.manual_seed(7)
            expected = [F.dropout(x, p, training=True), torch.nn.Dropout(p)(x)]
            g = generator(7)
            assert all(torch.equal(e, dropout(x, p, g)) for e in expected), (dtype, p)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    layer = {f"{n}.weight": torch.randn(4, 4) for n in ("W_query", "W_key", "W_value")}
    torch.set_rng_state(state)
    stacked(torch.randn(1, 3, 4, generator=torch.Generator().manual_seed(1)), [layer, layer],
            dropout=0.5, seed=3)
    assert torch.equal(torch.get_rng_state(), state), "a reference moved the global generator"
