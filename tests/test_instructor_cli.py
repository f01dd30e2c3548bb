"""The instructor's command line fails loudly (fast: no student code runs).

Exit status: 0 every submission graded; 1 the grader failed; 2 refused (bad command line,
a path that does not exist, results that cannot be merged or imported: one ``error:`` line,
nothing written); 3 some submissions could not be graded (named). What is under
``submitted/`` and not graded is named; shards share one secret (``--seed-file``) and
``merge`` refuses results of different secrets or records that do not belong where they
are; ``totals.csv``; feedback that says a thing once.
"""

import csv
import dataclasses
import io
import json
import multiprocessing
import os
import subprocess
import sys

import pytest

from autograder import course, formats, scoring, submissions
from autograder.errors import UsageError
from autograder.records import CellResult, Record
from autograder.rubric import load_assignments
from testkit import tamper

A = tamper.ASSIGNMENT
NOTEBOOK = course.notebook_path(A).name
NIE = "f(3) raised NotImplementedError:  (the exercise is not completed yet)"


@pytest.fixture(scope="module")
def assignments():
    return load_assignments()


def cli(*args, cwd=course.ROOT):
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def refused(result, *words):
    """Exit status 2, a first line ``error: ...`` naming ``words``, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def record(student="ada", assignment=A, seed="aaaa", assignments=None):
    """A valid record of chapter 01 with the course's grade cells and points."""
    cells = [CellResult(c.grade_id, "f", 0.0, float(c.points), True, ["wrong"])
             for c in (assignments or load_assignments())[A].cells]
    cells[0].score = cells[0].max_score
    return Record(student, assignment, NOTEBOOK, "graded", "", [], [], cells[0].score,
                  sum(c.max_score for c in cells), cells, sandbox={"landlock": 7}, seed=seed,
                  fingerprint="x")


# --- what is under submitted/ ------------------------------------------------------------------

def test_everything_not_graded_is_named(tmp_path, assignments):
    root = tmp_path / "submitted"
    (root / "ada" / A).mkdir(parents=True)
    (root / "ada" / A / NOTEBOOK).write_text("{}")
    (root / "ada" / A / "timestamp.txt").write_text("2026-12-01")   # nbgrader's own: not named
    (root / "ada" / A / "scratch.ipynb").write_text("{}")
    (root / "ada" / A / "data").mkdir()
    (root / "ada" / "positional-encoding").mkdir()                   # not an assignment id
    (root / "ada" / "positional-encoding" / NOTEBOOK).write_text("{}")
    (root / "bob").mkdir()
    (root / "bob" / NOTEBOOK).write_text("{}")                      # one level too high
    (root / "grades.xlsx").write_text("")                           # at the top
    pairs, notes = submissions.discover(root, assignments)
    assert [(p.student_id, p.assignment_id, p.notebook) for p in pairs] == [("ada", A, "")]
    text = "\n".join(notes)
    for named in (f"ada/{A}/scratch.ipynb", f"ada/{A}/data", "ada/positional-encoding/",
                  f"bob/{NOTEBOOK}", "grades.xlsx"):
        assert named in text, (named, text)
    assert "timestamp.txt" not in text
    assert f"move it to bob/{A}/" in text and "must be named 01-positional-encoding" in text
    assert len(notes) == 5, notes


@pytest.mark.parametrize("name", ["positional_encoding (2).ipynb", "positional_encoding(1).ipynb"])
def test_a_lone_browser_renamed_notebook_is_graded_with_a_note(tmp_path, assignments, name):
    root = tmp_path / "submitted"
    (root / "ada" / A).mkdir(parents=True)
    (root / "ada" / A / name).write_bytes(tamper.notebook())
    (pair,), notes = submissions.discover(root, assignments)
    assert pair.notebook == name and any(f"{name}: graded as {NOTEBOOK}" in n for n in notes)
    submission = submissions.read(pair, assignments[A])
    assert submission.notebook is not None and not submission.reason
    assert f"graded {name} as {NOTEBOOK}" in submission.notes[0]


def test_two_renamed_copies_are_named_and_not_guessed(tmp_path, assignments):
    root = tmp_path / "submitted"
    (root / "ada" / A).mkdir(parents=True)
    for name in ("positional_encoding (1).ipynb", "positional_encoding (2).ipynb"):
        (root / "ada" / A / name).write_bytes(tamper.notebook())
    (pair,), notes = submissions.discover(root, assignments)
    assert pair.notebook == ""
    assert any("2 renamed copies" in n and "none graded" in n for n in notes), notes
    submission = submissions.read(pair, assignments[A])
    assert submission.notebook is None and "missing notebook" in submission.reason
    assert "positional_encoding (2).ipynb" in submission.reason


def test_the_expected_name_wins_over_a_renamed_copy(tmp_path, assignments):
    root = tmp_path / "submitted"
    (root / "ada" / A).mkdir(parents=True)
    (root / "ada" / A / NOTEBOOK).write_bytes(tamper.notebook())
    (root / "ada" / A / "positional_encoding (1).ipynb").write_bytes(b"{}")
    (pair,), notes = submissions.discover(root, assignments)
    assert pair.notebook == "" and any("(1).ipynb: a notebook beside" in n for n in notes)


# --- paths that do not exist: exit 2, one line, for every command --------------------------------

@pytest.mark.parametrize("command", ["grade", "grade seed-file", "merge", "merge second",
                                     "import-grades", "import-grades db", "release", "gradescope"])
def test_every_command_refuses_what_does_not_exist(tmp_path, command):
    missing = tmp_path / "nowhere"
    good = tmp_path / "results"
    formats.write_record(good, record())
    submitted = tmp_path / "submitted"
    (submitted / "ada" / A).mkdir(parents=True)
    args = {"grade": ["grade", missing, "--out", tmp_path / "out"],
            "grade seed-file": ["grade", submitted, "--out", tmp_path / "out",
                                "--seed-file", missing / "secret"],
            "merge": ["merge", missing, "--out", tmp_path / "out"],
            "merge second": ["merge", good, missing, "--out", tmp_path / "out"],
            "import-grades": ["import-grades", missing, "--db", f"sqlite:///{tmp_path / 'g.db'}"],
            "import-grades db": ["import-grades", good, "--db", f"sqlite:///{missing / 'g.db'}"],
            "release": ["release", "09-not-a-chapter"],
            "gradescope": ["gradescope", "09-not-a-chapter", "--out", tmp_path / "zip"]}[command]
    before = sorted(tmp_path.rglob("*"))
    result = cli(*args)
    refused(result, "nowhere" if "release" not in command and "gradescope" not in command
            else "09-not-a-chapter")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(tmp_path.rglob("*")) == before, "nothing is written"


def test_merge_refuses_an_empty_folder(tmp_path):
    (tmp_path / "shard0").mkdir()
    formats.write_record(tmp_path / "shard1", record())
    refused(cli("merge", tmp_path / "shard0", tmp_path / "shard1", "--out", tmp_path / "all"),
            "shard0: holds no results")
    assert not (tmp_path / "all").exists()


# --- one secret per class ----------------------------------------------------------------------

def _secret_of(path, barrier, queue):
    barrier.wait()
    queue.put(scoring.shared_secret(path))


def test_shards_starting_together_share_one_secret(tmp_path):
    path = tmp_path / "grading-secret"
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(8), context.Queue()
    processes = [context.Process(target=_secret_of, args=(path, barrier, queue)) for _ in range(8)]
    for p in processes:
        p.start()
    secrets = [queue.get(timeout=60) for _ in processes]
    for p in processes:
        p.join()
    assert len(set(secrets)) == 1 and len(secrets[0]) == 32, secrets
    assert path.read_text() == secrets[0] + "\n" and (path.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grading-secret"], "no temporary left"
    path.write_text("the-instructors-own\n")
    assert scoring.shared_secret(path) == "the-instructors-own"
    path.write_text("")
    os.utime(path, (0, 0))
    with pytest.raises(UsageError, match="is empty"):
        scoring.shared_secret(path)


def test_merge_refuses_results_of_different_secrets(tmp_path, assignments):
    for k, seed in enumerate(["aaaa", "aaaa", "bbbb"]):
        formats.write_record(tmp_path / f"shard{k}", record(f"s{k}", seed=seed))
    merged = formats.merge([tmp_path / "shard0", tmp_path / "shard1"], tmp_path / "ok", assignments)
    assert [r.student_id for r in merged] == ["s0", "s1"]
    result = cli("merge", tmp_path / "shard0", tmp_path / "shard1", tmp_path / "shard2",
                 "--out", tmp_path / "all")
    refused(result, "different secrets", "secret aaaa", "secret bbbb", "shard2", "--seed-file")
    assert not (tmp_path / "all").exists()
    with pytest.raises(UsageError, match="secret bbbb in .*shard2; secret aaaa in .*ok"):
        formats.merge([tmp_path / "shard2"], tmp_path / "ok", assignments)   # nor into old results


# --- records that are not what their folder says, hostile JSON ---------------------------------

def _crafted(tmp_path, kind):
    folder = tmp_path / "results"
    formats.write_record(folder, record("bob"))
    path = formats.record_path(folder, "ada", A)
    if kind == "another student":
        formats.write_atomic(path, json.dumps(formats.results_json(record("mallory"))))
    elif kind == "another assignment":
        formats.write_atomic(path, json.dumps(formats.results_json(record("ada", "02-self-attention"))))
    elif kind == "forged total":
        results = formats.results_json(record("ada"))
        results["score"] = results["extra_data"]["score"] = 10.0
        formats.write_atomic(path, json.dumps(results))
    elif kind == "other points":
        forged = record("ada")
        forged.cells[0].max_score = forged.cells[0].score = 100.0
        forged.score, forged.max_score = 100.0, forged.max_score + 99
        formats.write_atomic(path, json.dumps(formats.results_json(forged)))
    elif kind == "deep JSON":
        formats.write_atomic(path, "[" * 100_000 + "]" * 100_000)
    elif kind == "deep extra_data":
        formats.write_atomic(path, '{"extra_data": {"cells": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    elif kind == "huge":
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as stream:
            stream.write('{"extra_data": {"notes": ["')
            stream.write("x" * (formats.RECORD_LIMIT + 1))
            stream.write('"]}}')
    return folder


CRAFTED = {"another student": "for student 'mallory', not 'ada'",
           "another assignment": "for assignment '02-self-attention'",
           "forged total": "does not add up", "other points": "other grade cells or points",
           "deep JSON": "nested too deeply", "deep extra_data": "nested too deeply",
           "huge": "larger than 16 MiB"}


@pytest.mark.parametrize("kind", CRAFTED)
def test_merge_and_import_refuse_crafted_records(tmp_path, assignments, kind):
    folder = _crafted(tmp_path, kind)
    where = str(formats.record_path(folder, "ada", A))
    with pytest.raises(UsageError) as merged:
        formats.merge([folder], tmp_path / "merged", assignments)
    with pytest.raises(UsageError) as imported:   # what import-grades reads, before the gradebook
        formats.load_records(folder, assignments, strict=True)
    for error in (merged, imported):
        assert CRAFTED[kind] in str(error.value) and where in str(error.value), str(error.value)
    assert not (tmp_path / "merged").exists()


@pytest.mark.parametrize("kind", ["another student", "deep JSON"])
def test_the_commands_refuse_crafted_records_with_status_2(tmp_path, kind):
    folder = _crafted(tmp_path, kind)
    where = str(formats.record_path(folder, "ada", A))
    refused(cli("merge", folder, "--out", tmp_path / "merged"), CRAFTED[kind], where)
    assert not (tmp_path / "merged").exists()
    db = tmp_path / "gradebook.db"
    refused(cli("import-grades", folder, "--db", f"sqlite:///{db}"), CRAFTED[kind], where)
    assert not db.exists()


def test_a_rerun_regrades_a_crafted_record_instead_of_trusting_it(tmp_path):
    folder = _crafted(tmp_path, "another student")
    assert formats.load_record(folder, "ada", A) is None
    assert formats.load_record(folder, "bob", A) is not None


# --- totals.csv and feedback -------------------------------------------------------------------

def test_totals_have_one_row_per_student(tmp_path, assignments):
    ada, bob = record("ada"), record("bob")
    other = dataclasses.replace(record("ada"), assignment_id="02-self-attention", score=3.0,
                                max_score=5.0, cells=[CellResult("x", "f", 3.0, 5.0, True)])
    failed = dataclasses.replace(record("cyd"), status="error", reason="timed out", score=0.0)
    for cell in failed.cells:
        cell.score = 0.0
    records = [ada, other, bob, failed]
    formats.write_outputs(tmp_path, records)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "totals.csv").read_text())))
    first, best = ada.score, ada.max_score
    assert list(rows[0]) == ["student_id", A, f"{A}_max", "02-self-attention",
                             "02-self-attention_max", "total", "total_max", "problems"]
    assert [r["student_id"] for r in rows] == ["ada", "bob", "cyd"]
    assert rows[0] == {"student_id": "ada", A: f"{first:g}", f"{A}_max": f"{best:g}",
                       "02-self-attention": "3", "02-self-attention_max": "5",
                       "total": f"{first + 3:g}", "total_max": f"{best + 5:g}", "problems": ""}
    assert rows[1]["02-self-attention"] == "" and rows[1]["total"] == f"{first:g}"
    assert rows[1]["problems"] == "02-self-attention: no result"
    assert rows[2][A] == "0" and rows[2]["problems"].startswith(f"{A}: not graded")
    grades = list(csv.DictReader(io.StringIO((tmp_path / "grades.csv").read_text())))
    assert len(grades) == sum(len(r.cells) for r in records), "grades.csv keeps its rows"


def test_feedback_says_not_attempted_once_and_counts_repeats():
    cells = [CellResult("f_basics", "f", 0.0, 1.0, False, [NIE, NIE.replace("3", "4")]),
             CellResult("f_values", "f", 0.0, 2.0, True, [NIE] * 5),
             CellResult("g_basics", "g", 0.0, 1.0, False,
                        ["g(2) has wrong values"] + ["g modified its input x in place"] * 5),
             CellResult("h_basics", "h", 1.0, 1.0, False, [])]
    text = formats.feedback([Record("ada", A, NOTEBOOK, "graded", "", [], [], 1.0, 5.0, cells)])
    assert text.count("NotImplementedError") == 1, text
    assert "**f**: not attempted yet (it still raises NotImplementedError): 0 / 3 " \
        "(f_basics, f_values)" in text
    assert text.count("g modified its input x in place") == 1
    assert "g modified its input x in place (x5)" in text
    assert "**h_basics** (h): 1 / 1, passed" in text
    output = formats.results_json(Record("ada", A, NOTEBOOK, "graded", "", [], [], 1.0, 5.0,
                                         cells))["tests"][2]["output"]
    assert output == "- g(2) has wrong values\n- g modified its input x in place (x5)"


# --- the Kubernetes example (tests/test_slurm.py runs the Slurm recipe on a real Slurm) ---------

def test_the_kubernetes_shards_share_one_secret():
    import re

    import yaml

    folder = course.ROOT / "examples" / "kubernetes"
    [grade] = yaml.safe_load_all((folder / "grade-job.yaml").read_text())
    [merge] = yaml.safe_load_all((folder / "merge-job.yaml").read_text())
    spec, pod = grade["spec"], grade["spec"]["template"]["spec"]
    script = pod["containers"][0]["args"][0]
    shards = re.search(r'--shard "\$JOB_COMPLETION_INDEX/(\d+)"', script)
    assert spec["completionMode"] == "Indexed" and shards and int(shards[1]) == spec["completions"]
    secret = re.search(r"--seed-file (\S+)", script)[1]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert any(secret.startswith(mounts[name] + "/") and "secret" in volumes[name]
               for name in mounts), "every pod reads the secret from one Kubernetes Secret"
    assert '--out "/data/results/shard-$JOB_COMPLETION_INDEX"' in script
    assert '[ "$status" -eq 3 ]' in script
    assert "merge /data/results/shard-* --out /data/results/all" in \
        merge["spec"]["template"]["spec"]["containers"][0]["args"][0]
