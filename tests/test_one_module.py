"""One attention module across the book (fast).

Chapter 05's solution of ``MultiHeadAttention``, as the learner sees it (the solution cell
with its ``### BEGIN/END SOLUTION`` marker lines removed), is the text of chapter 06's
provided module (source and released notebook), of the catalog's base that the wrong cases
are edits of, and of the reference class the benchmark times.
"""

import inspect

import torch

from autograder import course
from autograder.reference import multi_head_attention as mha_reference
from testkit.catalog import multi_head_attention as mha_catalog

CH05 = "05-multi-head-attention"
CH06 = "06-rope"


def _normalized(text: str) -> str:
    """Trailing spaces and surrounding blank lines removed; nothing else."""
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _chapter05_solution() -> str:
    cell = course.solution_cells(course.read(course.notebook_path(CH05)))["MultiHeadAttention"]
    return _normalized(course.strip_markers(cell.source))


def _chapter06_setup(released: bool) -> str:
    nb = course.read(course.notebook_path(CH06, released=released))
    cells = [c for c in nb.cells if course.nbgrader_meta(c).get("grade_id") == "setup_mha"]
    assert len(cells) == 1, "chapter 06 should have exactly one setup cell with grade_id setup_mha"
    return _normalized(cells[0].source)


def test_chapter05_solution_is_the_nanogpt_style_module():
    solution = _chapter05_solution()
    assert solution.startswith("class MultiHeadAttention(nn.Module):")
    for name in ("self.W_query", "self.W_key", "self.W_value", "self.out_proj",
                 'self.register_buffer(\n            "mask"', "# (b, num_heads, num_tokens, head_dim)"):
        assert name in solution, f"chapter 05's MultiHeadAttention should contain {name!r}"


def test_chapter06_setup_is_chapter05_solution():
    solution = _chapter05_solution()
    for released in (False, True):
        where = "chapters" if released else "solutions"
        assert _chapter06_setup(released) == solution, (
            f"{where}/{CH06}: the setup_mha cell differs from chapter 05's MultiHeadAttention "
            "solution (markers removed): copy it character for character")


def test_catalog_base_is_chapter05_solution():
    assert _normalized(mha_catalog.BASE) == _chapter05_solution(), \
        "testkit/catalog/multi_head_attention.py: BASE differs from chapter 05's solution cell"
    for case in mha_catalog.CASES:
        if case.cell == "MultiHeadAttention":
            assert _normalized(case.source) != _chapter05_solution(), \
                f"catalog case {case.name} is the solution itself"


def test_reference_class_is_chapter05_solution():
    source = _normalized(inspect.getsource(mha_reference.MultiHeadAttention))
    assert source == _chapter05_solution(), \
        "autograder/reference/multi_head_attention.py: MultiHeadAttention differs from chapter 05's solution"


def test_reference_class_behaves_as_chapter05_solution():
    namespace = {"torch": torch, "nn": torch.nn}
    exec(_chapter05_solution(), namespace)  # noqa: S102 - the course's own solution cell
    torch.manual_seed(0)
    ours = namespace["MultiHeadAttention"](6, 8, 5, 0.0, 2, qkv_bias=True).eval()
    reference = mha_reference.MultiHeadAttention(6, 8, 5, 0.0, 2, qkv_bias=True).eval()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(3, 4, 6)
    with torch.no_grad():
        expected = mha_reference.mha_forward(x, {k: v for k, v in ours.state_dict().items()
                                                 if k != "mask"}, num_heads=2)
        assert torch.allclose(ours(x), reference(x))
        assert torch.allclose(ours(x), expected, atol=1e-6)


# --- chapter 08 runs on chapter 06's RoPE -----------------------------------------------------

CH08 = "08-kv-cache"


def test_chapter08_setup_is_chapter06_rope_solution():
    solutions = course.solution_cells(course.read(course.notebook_path(CH06)))
    expected = "\n\n\n".join(_normalized(course.strip_markers(solutions[name].source))
                             for name in ("precompute_rope_params", "compute_rope"))
    for released in (False, True):
        nb = course.read(course.notebook_path(CH08, released=released))
        cells = [c for c in nb.cells if course.nbgrader_meta(c).get("grade_id") == "setup_rope"]
        assert len(cells) == 1, "chapter 08 should have exactly one setup cell with grade_id setup_rope"
        assert _normalized(cells[0].source) == expected, (
            f"{'chapters' if released else 'solutions'}/{CH08}: the setup_rope cell differs from "
            "chapter 06's precompute_rope_params and compute_rope solutions (markers removed)")
