"""Attacks on the grading machinery earn nothing from the project's grader (chapter 01).

Every attack is the honest wrong solution plus an attack (``autograder.tamper.ATTACKS``);
none may score more than the honest wrong solution alone. A probe submission reports
what the sandboxed student process can reach. ``benchmarks/tamper_table.py`` runs the
same attacks through stock nbgrader for comparison.
"""

import json
import os
import textwrap

import pytest

from autograder import course, engine, formats, tamper

pytestmark = pytest.mark.slow

PROBE = '''
import json, os, socket, sys
REPO, RESULTS, SUBMITTED = {repo!r}, {results!r}, {submitted!r}

def _try(action):
    try:
        action()
        return "allowed"
    except BaseException as exc:
        return type(exc).__name__[:12]

def _loaded():
    leaked = [m for m in sys.modules if m.startswith(("autograder.reference", "autograder.catalog"))]
    if not leaked:
        raise LookupError("none")

def _connect():
    with socket.create_connection(("127.0.0.1", 22), timeout=1):
        return "connected"

def _fork_many():
    pids = []
    try:
        for _ in range(200):
            pid = os.fork()
            if pid == 0:
                import time
                time.sleep(5)
                os._exit(0)
            pids.append(pid)
    finally:
        import signal
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    return len(pids)

PROBES = {{
    "solutions": lambda: open(os.path.join(REPO, "solutions", {nb!r})).read(100),
    "repo": lambda: os.listdir(REPO),
    "reference file": lambda: open(os.path.join(REPO, "autograder", "reference",
                                                       "positional_encoding.py")).read(100),
    "import ref": lambda: __import__("autograder.reference.positional_encoding"),
    "ref loaded": _loaded,
    "list results": lambda: os.listdir(RESULTS),
    "write results": lambda: open(os.path.join(RESULTS, "forged.json"), "w").write("{{}}"),
    "submissions": lambda: os.listdir(SUBMITTED),
    "etc passwd": lambda: open("/etc/passwd").read(10),
    "signal grader": lambda: os.kill(os.getppid(), 0),
    "tcp": _connect,
    "200 procs": _fork_many,
    "8 GiB": lambda: len(bytearray(8 * 1024 ** 3)),
    "grader env": lambda: os.environ["AUTOGRADER_TEST_SECRET"],
}}
REPORT = {{name: _try(action) for name, action in PROBES.items()}}

def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    raise RuntimeError("PROBE" + json.dumps(REPORT))
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("tamper")
    submitted, results = root / "submitted", root / "results"
    tamper.write(submitted, "honest_wrong", tamper.Submission("honest_wrong", "", tamper.honest_wrong))
    tamper.write(submitted, "solution", tamper.Submission("solution", "", tamper.notebook))
    for attack in tamper.ATTACKS:
        tamper.write(submitted, attack.name, attack)
    probe = PROBE.format(repo=str(course.ROOT), results=str(results), submitted=str(submitted),
                         nb=f"{tamper.ASSIGNMENT}/{course.notebook_path(tamper.ASSIGNMENT).name}")
    tamper.write(submitted, "probe", tamper.Submission(
        "probe", "", lambda: tamper.notebook({tamper.PE: textwrap.dedent(probe)})))
    os.environ["AUTOGRADER_TEST_SECRET"] = "the grader's environment"
    try:
        records = engine.grade(submitted, results, jobs=2, timeout=30, progress=False)
    finally:
        del os.environ["AUTOGRADER_TEST_SECRET"]
    return {r["student_id"]: r for r in records}, results


@pytest.mark.parametrize("attack", tamper.ATTACKS, ids=[a.name for a in tamper.ATTACKS])
def test_attack_earns_nothing(graded, attack):
    records, _ = graded
    honest = records["honest_wrong"]
    record = records[attack.name]
    assert record["score"] <= honest["score"], \
        f"{attack.name} ({attack.description}) scored {record['score']} > {honest['score']}"
    for mine, base in zip(record["cells"], honest["cells"], strict=True):
        assert mine["score"] <= base["score"], f"{attack.name} gained on {mine['grade_id']}"


def test_baselines(graded):
    records, _ = graded
    assert records["solution"]["score"] == records["solution"]["max_score"]
    assert 0 < records["honest_wrong"]["score"] < records["honest_wrong"]["max_score"]


def test_results_folder_is_untouched_by_students(graded):
    records, results = graded
    assert not (results / "forged.json").exists()
    assert "forged" not in (results / "grades.csv").read_text()
    for record in formats.load_records(results):
        assert record == records[record["student_id"]]


def test_sandbox_probe(graded):
    records, _ = graded
    failure = records["probe"]["cells"][0]["failures"][0]
    report = json.loads(failure.split("PROBE", 1)[1])
    sandbox = records["probe"]["sandbox"]
    assert len(report) == 14, report
    if sandbox.get("landlock", 0) < 1:
        pytest.skip(f"Landlock is unavailable here: {sandbox}")
    abi = sandbox["landlock"]
    may = set()  # what older kernels or an unprivileged grader cannot prevent
    if abi < 4:
        may.add("tcp")
    if abi < 6 and "user" not in sandbox:  # same uid as the grader and no signal scoping
        may.add("signal grader")
    allowed = sorted(name for name, result in report.items() if result == "allowed")
    assert set(allowed) <= may, f"the sandbox let the student: {allowed} ({report})"
