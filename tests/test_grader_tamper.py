"""Attacks on the grading machinery earn nothing from the project's grader (chapter 01).

Every attack is the honest wrong solution plus an attack (``testkit.tamper.ATTACKS``);
none may score more than the honest wrong solution alone. A probe submission reports
what the sandboxed student process can reach. ``benchmarks/tamper_table.py`` runs the
same attacks through stock nbgrader for comparison.
"""

import json
import os
import textwrap

import pytest

from autograder import course, engine, formats
from testkit import program, tamper

pytestmark = pytest.mark.sandbox

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
    leaked = [m for m in sys.modules if m.startswith(("autograder.reference", "testkit"))]
    if not leaked:
        raise LookupError("none")

def _connect():
    with socket.create_connection(("127.0.0.1", 22), timeout=1):
        return "connected"

def _signal_parent():
    if os.getppid() == 0:  # kill(0) would signal its own process group
        raise ProcessLookupError("the parent is outside this PID namespace")
    os.kill(os.getppid(), 0)

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

import ctypes as _ct, fcntl as _fcntl, struct as _struct
_libc = _ct.CDLL(None, use_errno=True)

def _call(name, *args):
    if getattr(_libc, name)(*args) < 0:
        raise OSError(_ct.get_errno(), name)

def _lock(command):
    with open(_fcntl.__file__ if hasattr(_fcntl, "__file__") else os.__file__, "rb") as f:
        _fcntl.fcntl(f, command, _struct.pack("hhqqi4x", _fcntl.F_RDLCK, 0, 0, 1, 0))

def _flock():
    with open(os.__file__, "rb") as f:
        _fcntl.flock(f, _fcntl.LOCK_SH)

def _inotify():
    fd = _libc.inotify_init1(0)
    if fd < 0:
        raise OSError(_ct.get_errno(), "inotify_init1")
    os.close(fd)

def _mincore():
    with open(os.__file__, "rb") as f:
        _libc.mincore.argtypes = [_ct.c_void_p, _ct.c_size_t, _ct.c_char_p]
        _call("mincore", _ct.c_void_p(_mapped(f.fileno())), 4096, _ct.create_string_buffer(1))

def _mapped(fd):
    _libc.mmap.restype = _ct.c_void_p
    _libc.mmap.argtypes = [_ct.c_void_p, _ct.c_size_t, _ct.c_int, _ct.c_int, _ct.c_int, _ct.c_long]
    return _libc.mmap(None, 4096, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED

def _shm_file():
    with open("/dev/shm/autograder-probe", "w") as f:
        f.write("x")
{stack}
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
    "signal grader": _signal_parent,
    "tcp": _connect,
    "200 procs": _fork_many,
    "8 GiB": lambda: len(bytearray(8 * 1024 ** 3)),
    "grader env": lambda: os.environ["AUTOGRADER_TEST_SECRET"],
}}
KERNEL = {{
    "shmget": lambda: _call("shmget", 0, 4096, 0o1600),
    "msgget": lambda: _call("msgget", 0, 0o1600),
    "semget": lambda: _call("semget", 0, 1, 0o1600),
    "mq_open": lambda: _call("mq_open", b"/autograder-probe", os.O_CREAT | os.O_RDWR, 0o600, None),
    "fcntl lock": lambda: _lock(_fcntl.F_SETLK),
    "fcntl getlk": lambda: _lock(_fcntl.F_GETLK),
    "ofd lock": lambda: _lock(37),  # F_OFD_SETLK
    "flock": _flock,
    "inotify": _inotify,
    "add_key": lambda: _call("syscall", {{"x86_64": 248, "aarch64": 217}}[os.uname().machine],
                             b"user", b"autograder-probe", b"x", 1, -4),  # the user keyring
    "/dev/shm": _shm_file,
    "mincore": _mincore,
}}
REPORT = {{name: _try(action) for name, action in PROBES.items()}}
KERNEL_REPORT = {{name: _try(action) for name, action in KERNEL.items()}}
_STACK = _stack()
STACK = {{"read": "OMP_NUM_THREADS=1" in _STACK, "grader env": "AUTOGRADER_TEST" in _STACK,
          "results": RESULTS in _STACK, "submitted": SUBMITTED in _STACK}}

def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    raise RuntimeError("PROBE" + json.dumps(REPORT))

def add_positional_encoding(x, base=10000.0):
    raise RuntimeError("PROBE" + json.dumps(KERNEL_REPORT))

def relative_position_matrix(offset, d_model, base=10000.0):
    raise RuntimeError("PROBE" + json.dumps(STACK))
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("tamper")
    submitted, results = root / "submitted", root / "results"
    tamper.write(submitted, "honest_wrong", tamper.Submission("honest_wrong", "", tamper.honest_wrong))
    tamper.write(submitted, "solution", tamper.Submission("solution", "", tamper.notebook))
    for attack in tamper.ATTACKS + tamper.collusion_pair() + [tamper.json_bomb()]:
        tamper.write(submitted, attack.name, attack)
    probe = PROBE.format(repo=str(course.ROOT), results=str(results), submitted=str(submitted),
                         nb=f"{tamper.ASSIGNMENT}/{course.notebook_path(tamper.ASSIGNMENT).name}",
                         stack=tamper.STACK_ENVIRONMENT)
    tamper.write(submitted, "probe", tamper.Submission(
        "probe", "", lambda: tamper.notebook({tamper.PE: textwrap.dedent(probe), tamper.ADD: "pass",
                                              tamper.REL: "pass"})))
    instructor = course.notebook_path(tamper.ASSIGNMENT)
    tamper.write(submitted, "symlinked_notebook", tamper.symlinked_notebook())
    (submitted / "symlinked_folder").mkdir()
    (submitted / "symlinked_folder" / tamper.ASSIGNMENT).symlink_to(instructor.parent)
    os.environ["AUTOGRADER_TEST_SECRET"] = "the grader's environment"
    try:
        records = engine.grade(submitted, results, jobs=2, timeout=30, progress=False)
    finally:
        del os.environ["AUTOGRADER_TEST_SECRET"]
    return {r.student_id: r for r in records}, results


@pytest.mark.parametrize("attack", tamper.ATTACKS, ids=[a.name for a in tamper.ATTACKS])
def test_attack_earns_nothing(graded, attack):
    records, _ = graded
    honest = records["honest_wrong"]
    record = records[attack.name]
    assert record.score <= honest.score, \
        f"{attack.name} ({attack.description}) scored {record.score} > {honest.score}"
    for mine, base in zip(record.cells, honest.cells, strict=True):
        assert mine.score <= base.score, f"{attack.name} gained on {mine.grade_id}"


def test_baselines(graded):
    records, _ = graded
    assert records["solution"].score == records["solution"].max_score
    assert 0 < records["honest_wrong"].score < records["honest_wrong"].max_score


def test_results_folder_is_untouched_by_students(graded):
    records, results = graded
    assert not (results / "forged.json").exists()
    assert "forged" not in (results / "grades.csv").read_text()
    for record in formats.load_records(results):
        assert record == records[record.student_id]


def probe_report(record, grade_id: str) -> dict:
    """What the probe raised in the check of ``grade_id``."""
    cell = next(c for c in record.cells if c.grade_id == grade_id)
    return json.loads(next(f for f in cell.failures if "PROBE" in f).split("PROBE", 1)[1])


def test_sandbox_probe(graded):
    records, _ = graded
    report = probe_report(records["probe"], "sinusoidal_basics")
    assert len(report) == 14, report
    kernel = probe_report(records["probe"], "add_basics")
    assert len(kernel) == 12, kernel
    sandbox = records["probe"].sandbox
    shared = [name for name, result in kernel.items() if result == "allowed"]
    assert set(shared) <= ({"/dev/shm"} if sandbox.get("landlock", 0) < 1 else set()), \
        f"kernel objects a student could share with another: {kernel}"
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


def test_the_grader_environment_is_not_on_the_stack(graded):
    """The student process reads its first environment and argv from the stack (what
    ``os.environ.clear()`` cannot erase): the grader's variables and the paths of the
    submissions and the results are not there."""
    records, results = graded
    stack = probe_report(records["probe"], "relative_basics")
    assert stack == {"read": True, "grader env": False, "results": False, "submitted": False}


@pytest.mark.parametrize("student", ["symlinked_notebook", "symlinked_folder"])
def test_a_symlink_is_not_graded(graded, student):
    """A submission that links to the instructor's notebook (or folder) is refused with a
    reason, not graded (the link would have earned full marks)."""
    records, _ = graded
    record = records[student]
    assert record.score == 0 and record.status == "error", record
    assert "symbolic link" in record.reason, record.reason


def test_students_graded_at_the_same_time_cannot_talk(graded):
    """The client has no implementation and asks the server (graded beside it, --jobs 2) over
    UDP and an abstract unix socket: it gets nothing, the server keeps its own marks."""
    records, _ = graded
    client, server = records["collusion_client"], records["collusion_server"]
    assert client.score == 0, client.cells
    assert server.score == server.max_score, server.cells
    assert "namespace" in server.sandbox["network"] or "seccomp" in server.sandbox["network"]



def unsandboxed_program(item: tamper.Submission) -> str:
    """What grading would run of a tamper submission, as one script for a plain Python
    process (the proofs that an attack works where nothing confines it)."""
    import nbformat

    nb = nbformat.reads(item.build().decode(), as_version=4)
    source = course.read(course.notebook_path(tamper.ASSIGNMENT))
    return "\n".join(course.exercise_program(source, nb).code)


def gets_the_answers_beside(first: tamper.Submission, second: tamper.Submission, wait: float) -> None:
    """Outside any sandbox: ``second``'s program, run while ``first``'s runs (started ``wait``
    seconds before), computes the reference's encoding with the stub it submitted."""
    import subprocess
    import sys
    import time

    import numpy as np

    from autograder.reference.positional_encoding import reference_encoding

    running = subprocess.Popen([sys.executable, "-c", unsandboxed_program(first)])
    try:
        time.sleep(wait)
        asked = unsandboxed_program(second) + "\nprint(sinusoidal_positional_encoding(3, 4).tolist())"
        out = subprocess.run([sys.executable, "-c", asked], capture_output=True, text=True,
                             timeout=60)
    finally:
        running.kill()
        running.wait()
    assert out.returncode == 0, out.stderr[-2000:]
    assert np.allclose(json.loads(out.stdout.strip().splitlines()[-1]),
                       reference_encoding(np.arange(3), 4))


def test_the_collusion_pair_works_without_a_sandbox():
    """Proof that the previous test can fail: outside the sandbox the client gets the answers."""
    gets_the_answers_beside(*tamper.collusion_pair(), wait=3)


def test_json_bomb_is_bounded(graded):
    records, _ = graded
    bomb = records["json_bomb"]
    assert bomb.score <= records["honest_wrong"].score
    assert any("not read" in note for note in bomb.notes), bomb.notes
    assert bomb.status == "graded" or bomb.reason.startswith("sent more than"), bomb.reason


CHAPTER_ATTACKS = [(a, attack, baseline) for a in course.assignment_ids()
                   for attack, baseline in tamper.chapter_attacks(a)]


@pytest.fixture(scope="module")
def chapters_graded(tmp_path_factory):
    """Every chapter's attacks on the observation boundary, with both baselines, graded by
    the project's grader (secret seeds)."""
    import nbformat

    submitted = tmp_path_factory.mktemp("chapters") / "submitted"
    results = submitted.parent / "results"
    for assignment_id in course.assignment_ids():
        name = course.notebook_path(assignment_id).name
        baselines = {"untouched": course.notebook_path(assignment_id, released=True).read_bytes()}
        baselines.update({name: nbformat.writes(program.submission(assignment_id, answers)).encode()
                          for name, answers in tamper.chapter_baselines(assignment_id).items()})
        items = list(baselines.items()) + [(attack.name, attack.build())
                                           for attack, _ in tamper.chapter_attacks(assignment_id)]
        for student, content in items:
            folder = submitted / student / assignment_id
            folder.mkdir(parents=True)
            (folder / name).write_bytes(content)
    records = engine.grade(submitted, results, jobs=2, timeout=60, progress=False)
    return {(r.student_id, r.assignment_id): r for r in records}


@pytest.mark.parametrize("assignment_id, attack, baseline", CHAPTER_ATTACKS,
                         ids=[f"{a}:{attack.name}" for a, attack, _ in CHAPTER_ATTACKS])
def test_chapter_attack_earns_nothing(chapters_graded, assignment_id, attack, baseline):
    base = chapters_graded[(baseline, assignment_id)]
    record = chapters_graded[(attack.name, assignment_id)]
    assert record.status == "graded", record.reason
    for mine, theirs in zip(record.cells, base.cells, strict=True):
        assert mine.score <= theirs.score, \
            f"{attack.name} gained on {mine.grade_id} over {baseline}: {mine.failures}"
    if baseline == "honest_wrong":
        assert 0 < base.score < base.max_score, "the honest wrong baseline must be partial"


@pytest.mark.parametrize("assignment_id", course.assignment_ids())
def test_the_lookup_table_knows_every_fixed_seed_answer(assignment_id):
    """Proof that the lookup-table attack can fail a grader: with the fixed seeds of the
    nbgrader path it passes every check of the chapter on top of the honest wrong solution."""
    import nbformat

    from autograder import checks

    item = next(a for a, _ in tamper.chapter_attacks(assignment_id) if a.name == "lookup_table")
    submitted = nbformat.reads(item.build().decode(), as_version=4)
    registered = checks.checks_for(assignment_id)
    honest_observe_in = checks.Check.observe_in
    try:
        namespace = program.run(assignment_id, submitted=submitted)
        fixed = {g: c.judge_seen(c.observe_in(namespace)) for g, c in registered.items()}
        secret = {g: c.judge_seen(c.observe_in(namespace, c.seeds("s")), c.seeds("s"))
                  for g, c in registered.items()}
    finally:
        checks.Check.observe_in = honest_observe_in  # the attack patched it in this process
    assert not any(fixed.values()), fixed
    assert any(secret.values())


# --- kernel objects shared between students (issue 18) ----------------------------------------

def _channel_class(root, items, jobs):
    submitted, results = root / "submitted", root / "results"
    for item in items:
        tamper.write(submitted, item.name, item)
    tamper.remove_shm([tamper.SHM_KEY] + tamper.SHM_HOG_KEYS)  # what an unconfined run left
    records = engine.grade(submitted, results, jobs=jobs, timeout=30, progress=False)
    return {r.student_id: r for r in records}


@pytest.fixture(scope="module")
def channels(tmp_path_factory):
    """--jobs 2, one class per pair, so that each sender is graded at the same time as its
    receiver; the SysV class also holds a student who leaves SysV memory behind."""
    records = {}
    for items in (tamper.lock_pair(), tamper.priority_pair(),
                  tamper.shm_pair() + [tamper.shm_hog()]):
        root = tmp_path_factory.mktemp("channels")
        records.update(_channel_class(root, items, jobs=2))
    return records, tamper.host_shm_keys()


@pytest.fixture(scope="module")
def channels_one_by_one(tmp_path_factory):
    """--jobs 1: the SysV sender is graded, then its receiver."""
    return _channel_class(tmp_path_factory.mktemp("channels-1"), tamper.shm_pair(hold=0), jobs=1)


@pytest.mark.parametrize("kind", ["locks", "shm"])
def test_no_channel_between_students_graded_together(channels, kind):
    records, _ = channels
    sender, receiver = records[f"{kind}_a_sender"], records[f"{kind}_b_receiver"]
    assert sender.score == sender.max_score, sender.cells
    assert receiver.score == 0, f"{kind}: the receiver got the sender's answers: {receiver.cells}"
    assert "namespace" in sender.sandbox["ipc"] or "seccomp" in sender.sandbox["ipc"]


def test_no_process_of_another_student_is_seen(channels):
    """The receiver looks for the sender's marker nice value by pid (getpriority needs no
    permission): it must not see another student's processes at all."""
    records, _ = channels
    assert records["prio_a_sender"].score == records["prio_a_sender"].max_score
    seen = probe_report(records["prio_b_receiver"], "sinusoidal_basics")
    assert seen == {"nice 17 seen at": []}, seen
    if os.geteuid() == 0:
        assert records["prio_b_receiver"].sandbox["pid"] == "namespace"


def test_no_channel_to_students_graded_later(channels_one_by_one):
    records = channels_one_by_one
    assert records["shm_a_sender"].score == records["shm_a_sender"].max_score
    receiver = records["shm_b_receiver"]
    assert receiver.score == 0, f"the SysV segment outlived its sender: {receiver.cells}"


def test_no_ipc_memory_outlives_grading(channels):
    """SysV segments made by students (the hog's sixteen 32 MiB ones, the sender's) are not
    in the host's IPC namespace once grading is over."""
    records, keys = channels
    assert records["shm_hog"].status == "graded"
    left = keys & set(tamper.SHM_HOG_KEYS + [tamper.SHM_KEY])
    assert not left, f"segments left on the host: {sorted(map(hex, left))}"


@pytest.mark.parametrize("pair", [tamper.shm_pair, tamper.lock_pair])
def test_the_channel_pairs_work_without_a_sandbox(pair):
    """Proof that the tests above can fail: outside the sandbox each receiver runs the
    sender's solutions."""
    tamper.remove_shm([tamper.SHM_KEY])
    try:
        gets_the_answers_beside(*pair(hold=4), wait=2)
    finally:
        tamper.remove_shm([tamper.SHM_KEY])


# --- the degraded mode: no Landlock -----------------------------------------------------------

DEGRADED_PROBE = '''
import json, os
REPO, RESULTS = {repo!r}, {results!r}

def _try(action):
    try:
        action()
        return "allowed"
    except BaseException as exc:
        return type(exc).__name__[:12]

def _leave():
    with open("/tmp/autograder-degraded-probe-{tag}", "w") as f:
        f.write("for the next student")

PROBES = {{
    "read secret": lambda: open(os.path.join(RESULTS, "grading-secret")).read(),
    "write results": lambda: open(os.path.join(RESULTS, "forged.json"), "w").write("{{}}"),
    "plant reference": lambda: open(os.path.join(REPO, "autograder", "reference",
                                                 "zz_planted.py"), "w").write("x = 1"),
    "edit reference": lambda: open(os.path.join(REPO, "autograder", "reference",
                                                "positional_encoding.py"), "a").write("#"),
    "write repo": lambda: open(os.path.join(REPO, "planted.txt"), "w").write("x"),
    "leave a file": _leave,
}}
REPORT = {{name: _try(action) for name, action in PROBES.items()}}

def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    raise RuntimeError("PROBE" + json.dumps(REPORT))
'''


@pytest.fixture(scope="module")
def degraded(tmp_path_factory):
    """Landlock made unavailable (``AUTOGRADER_NO_LANDLOCK``): grading is refused unless
    told, then each student process has its own uid and no file privilege beyond it."""
    from autograder.errors import GraderError

    root = tmp_path_factory.mktemp("degraded")
    submitted, results = root / "submitted", root / "results"
    tag = root.name
    probe = DEGRADED_PROBE.format(repo=str(course.ROOT), results=str(results), tag=tag)
    tamper.write(submitted, "probe", tamper.Submission(
        "probe", "", lambda: tamper.notebook({tamper.PE: textwrap.dedent(probe)})))
    tamper.write(submitted, "solution", tamper.Submission("solution", "", tamper.notebook))
    os.environ["AUTOGRADER_NO_LANDLOCK"] = "1"
    try:
        with pytest.raises(GraderError) as refused:
            engine.grade(submitted, results, jobs=1, timeout=30, progress=False)
        records = engine.grade(submitted, results, jobs=1, timeout=30, progress=False,
                               without_landlock=True)
    finally:
        del os.environ["AUTOGRADER_NO_LANDLOCK"]
    return {r.student_id: r for r in records}, str(refused.value), tag


def test_degraded_mode_is_refused_unless_told(degraded):
    _, refused, _ = degraded
    assert "Landlock is unavailable" in refused and "--without-landlock" in refused
    assert "solutions/" in refused and "other students' submissions" in refused


def test_degraded_mode_gives_no_file_privilege(degraded):
    records, _, tag = degraded
    assert records["solution"].score == records["solution"].max_score, records["solution"].cells
    sandbox = records["probe"].sandbox
    assert sandbox["landlock"] == 0, sandbox
    if os.geteuid() != 0:
        pytest.skip("an unprivileged grader cannot give student processes a uid of their own")
    report = json.loads(records["probe"].cells[0].failures[0].split("PROBE", 1)[1])
    allowed = sorted(name for name, result in report.items() if result == "allowed")
    assert allowed == ["leave a file"], report  # /tmp is world-writable: what is left is removed
    assert not os.path.exists(f"/tmp/autograder-degraded-probe-{tag}"), "a file outlived its student"
    assert not (course.ROOT / "autograder" / "reference" / "zz_planted.py").exists()
