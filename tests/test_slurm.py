"""The Slurm recipe users copy (``examples/slurm/``), run as written on a real single-node Slurm.

Debian's ``munged``, ``slurmctld`` and ``slurmd`` are started here without systemd, from a
minimal ``slurm.conf`` in a temporary folder (``SLURM_CONF``). A 12-submission class is graded
by ``grade.sbatch`` as a 3-task array, and ``merge.sbatch`` runs as its dependent job: the
merge equals one unsharded run graded with the same secret file. The recipe the README used
to give (a 3-task array, each shard drawing its own secret) is refused by ``merge``.
Skipped, with the reason, where Slurm cannot start (not root, daemons missing).
"""

import csv
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import course, formats, scoring
from testkit import catalog, tamper

pytestmark = [pytest.mark.slurm, pytest.mark.sandbox]

A = tamper.ASSIGNMENT
RECIPE = course.ROOT / "examples" / "slurm"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """munged, slurmctld and slurmd in the foreground, as our children, in ``folder``."""

    def __init__(self, folder: Path):
        self.dir = folder
        self.processes: list[subprocess.Popen] = []
        folder.mkdir(mode=0o700)
        self.node = socket.gethostname()
        for name in ("munge", "state", "spool", "log"):
            (folder / name).mkdir(mode=0o700)
        key = folder / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        memory = int(open("/proc/meminfo").read().split()[1]) // 1024
        cpus = len(os.sched_getaffinity(0))
        (folder / "plugstack.conf").write_text("")
        self.conf = folder / "slurm.conf"
        self.conf.write_text(f"""\
ClusterName=grading
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={folder}/munge/socket
CredType=cred/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
PlugStackConfig={folder}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=sched_interval=1,bf_interval=1
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=grading Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        self.env = dict(os.environ, SLURM_CONF=str(self.conf), PYTHONPATH=os.pathsep.join(
            filter(None, [str(course.ROOT), os.environ.get("PYTHONPATH")])),
            PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))

    def start(self) -> None:
        munge = self.dir / "munge"
        self._spawn(["munged", "--foreground", "--force", f"--key-file={munge}/munge.key",
                     f"--socket={munge}/socket", f"--pid-file={munge}/pid",
                     f"--log-file={self.dir}/log/munged.log", f"--seed-file={munge}/seed"])
        self._wait(lambda: (munge / "socket").exists(), "munged made no socket", "munged.log")
        self._spawn(["slurmctld", "-D", "-i"])
        self._spawn(["slurmd", "-D", "-N", self.node])
        self._wait(lambda: self.run("sinfo", "-h", "-o", "%t").stdout.strip() == "idle",
                   "the node never became idle", "slurmctld.log", "slurmd.log")

    def _spawn(self, command: list[str]) -> None:
        log = open(self.dir / "log" / f"{command[0]}.out", "w")
        self.processes.append(subprocess.Popen(command, env=self.env, stdout=log, stderr=log))

    def _wait(self, ready, problem: str, *logs: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [p.args[0] for p in self.processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                tails = " | ".join(self.tail(name) for name in logs + tuple(f"{d}.out" for d in dead))
                pytest.skip(f"Slurm could not start: {problem}"
                            f"{' (' + ', '.join(dead) + ' exited)' if dead else ''}: {tails}")
            time.sleep(0.2)

    def tail(self, name: str, lines: int = 5) -> str:
        path = self.dir / "log" / name
        return f"{name}: " + " / ".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    def run(self, *command, cwd=None) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=self.env, cwd=cwd, capture_output=True, text=True,
                              timeout=60)

    def sbatch(self, *args, cwd) -> str:
        result = self.run("sbatch", "--parsable", *map(str, args), cwd=cwd)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().split(";")[0]

    def wait(self, *jobs: str, timeout: float = 420) -> dict[str, str]:
        """Wait until ``jobs`` (and their array tasks) have left the queue; their end states."""
        deadline = time.monotonic() + timeout
        while queued := self.run("squeue", "-h", "-o", "%i %r", "-j", ",".join(jobs)).stdout.split("\n"):
            if not any(queued):
                break
            stuck = [line.split()[0] for line in queued if line.endswith("DependencyNeverSatisfied")]
            if stuck:  # a job it depends on failed: it would wait for ever
                self.run("scancel", *stuck)
            assert time.monotonic() < deadline, self.run("squeue").stdout + self.tail("slurmctld.log")
            time.sleep(1)
        states = {}
        for job in jobs:
            shown = self.run("scontrol", "-o", "show", "job", job).stdout
            for line in shown.splitlines():
                fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
                task = fields.get("ArrayTaskId")
                states[f"{job}_{task}" if task else job] = f"{fields['JobState']} {fields['ExitCode']}"
        return states

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def cluster(tmp_path):
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing): apt-get install "
                    "slurmctld slurmd munge")
    if os.geteuid() != 0:
        pytest.skip("Slurm needs root here: slurmd starts the jobs, and munged and slurmctld run "
                    "as the one user of this minimal cluster")
    cluster = Cluster(tmp_path / "slurm")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def twelve_submissions(submitted: Path) -> None:
    """The solution, the untouched notebook, a damaged file and nine cases of the catalog."""
    tamper.write(submitted, "s00", tamper.Submission("solution", "", tamper.notebook))
    tamper.write(submitted, "s01", tamper.Submission(
        "untouched", "", lambda: course.notebook_path(A, released=True).read_bytes()))
    tamper.write(submitted, "s02", tamper.Submission("damaged", "", lambda: b'{"cells": ['))
    for i, case in enumerate(catalog.cases(A)[:9]):
        tamper.write(submitted, f"s{i + 3:02d}", tamper.Submission(
            case.name, "", lambda case=case: tamper.notebook({case.cell: case.source})))


def comparable(results: Path) -> dict:
    """What a run decided (not its timings, nor the uid each student process ran under)."""
    records = {}
    for record in formats.load_records(results):
        data = record.to_json()
        del data["wall"]
        data["sandbox"].pop("user", None)
        records[(record.student_id, record.assignment_id)] = data
    feedback = {p.parent.name: p.read_text() for p in results.glob("*/feedback.md")}
    return {"records": records, "feedback": feedback,
            "grades.csv": (results / "grades.csv").read_text(),
            "totals.csv": (results / "totals.csv").read_text()}


def test_the_slurm_recipe_grades_a_class_in_a_job_array(cluster, tmp_path):
    submitted, results = tmp_path / "submitted", tmp_path / "results"
    twelve_submissions(submitted)
    work = tmp_path / "work"  # where the jobs' logs go: the folder sbatch is run from
    work.mkdir()

    grading = cluster.sbatch(RECIPE / "grade.sbatch", submitted, results, cwd=work)
    merging = cluster.sbatch(f"--dependency=afterok:{grading}", RECIPE / "merge.sbatch", results,
                             cwd=work)
    # the README's recipe before --seed-file: each task of the array draws its own secret
    apart = tmp_path / "apart"
    unshared = cluster.sbatch(
        "--array=0-2", "--cpus-per-task=1", f"--output={work}/apart-%a.log", "--wrap",
        f"python -m autograder grade {submitted} --out {apart}/shard-$SLURM_ARRAY_TASK_ID "
        "--shard $SLURM_ARRAY_TASK_ID/3 --jobs 1", cwd=work)
    states = cluster.wait(grading, merging, unshared)
    logs = {p.name: p.read_text() for p in work.glob("*.log")}
    for job in [f"{grading}_{k}" for k in range(3)] + [merging]:
        assert states[job] == "COMPLETED 0:0", (job, states, logs)
    for k in range(3):
        log = logs[f"grade-{grading}_{k}.log"]
        assert len(list((results / f"shard-{k}").glob("*/*/results.json"))) == 4, log
    # shard 2 holds pairs 2, 5, 8, 11 of the sorted class: s02, the damaged file, is named
    assert "s02/01-positional-encoding: positional_encoding.ipynb is not valid JSON" in \
        logs[f"grade-{grading}_2.log"]

    assert "s02/01-positional-encoding: positional_encoding.ipynb is not valid JSON" in \
        logs[f"grade-merge-{merging}.log"], "the merge names the class's errors together"
    secret = (results / "grading-secret").read_text().strip()
    seeds = {r.seed for r in formats.load_records(results / "all")}
    assert seeds == {scoring.seed_id(secret)}, "every shard graded under the one secret"
    for path in (results / "all").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(), f"the secret leaked into {path}"

    one = subprocess.run([sys.executable, "-m", "autograder", "grade", str(submitted), "--out",
                          str(tmp_path / "one"), "--seed-file", str(results / "grading-secret"),
                          "--jobs", "1", "--quiet"], env=cluster.env, cwd=course.ROOT,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 3, one.stderr  # graded; s02 could not be, and is named
    assert "s02/01-positional-encoding" in one.stderr
    merged, alone = comparable(results / "all"), comparable(tmp_path / "one")
    assert len(merged["records"]) == 12
    differences = [(pair, key, value, alone["records"].get(pair, {}).get(key))
                   for pair, record in merged["records"].items() for key, value in record.items()
                   if alone["records"].get(pair, {}).get(key) != value]
    assert not differences, differences[:5]
    assert merged == alone, "the merged shards differ from one run"
    totals = list(csv.DictReader(open(results / "all" / "totals.csv")))
    assert len(totals) == 12 and {r["total_max"] for r in totals} == {"10"}

    apart_seeds = {r.seed for k in range(3) for r in formats.load_records(apart / f"shard-{k}")}
    assert len(apart_seeds) == 3, "each shard drew its own secret"
    refused = subprocess.run([sys.executable, "-m", "autograder", "merge",
                              *[str(apart / f"shard-{k}") for k in range(3)], "--out",
                              str(apart / "all")], env=cluster.env, cwd=course.ROOT,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: the results were graded under different secrets")
    assert not (apart / "all").exists()
