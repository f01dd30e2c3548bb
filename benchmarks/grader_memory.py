"""The grader's own peak memory on a hostile submission, against an honest one.

Two kinds: what the student process writes to the result pipe (the JSON bomb, records at
the reader's limits) and what the notebook file holds (``tamper.largest_legal``: every
limit of ``submissions`` nearly reached at once, the worst a submission that is read can
cost; and files over a limit, refused before they are parsed).

Each submission is graded alone by ``python -m autograder``'s engine in a fresh process that
reports its peak resident memory (``VmHWM`` of that process only: the sandboxed student
processes are others). The difference is what the hostile submission cost the grader.

    python benchmarks/grader_memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import _root  # noqa: F401  (testkit: the test support beside the package)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# VmHWM, not ru_maxrss: Linux carries the largest RSS of the process image before execve
# into ru_maxrss, so a benchmark that built a large notebook would be counted in its child
MEASURE = '''
import json, sys
from autograder import engine
records = engine.grade(sys.argv[1], sys.argv[2], jobs=1, timeout=60, progress=False)
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
print(json.dumps({"peak_mb": hwm / 1024,
                  "score": records[0].score, "notes": records[0].notes}))
'''


REPEAT = 3  # the peak varies by tens of MB from run to run (threads, allocator arenas)


def peak(item) -> dict:
    """The largest peak of ``REPEAT`` runs, each in a fresh process (``low_mb``: the smallest)."""
    from testkit import tamper

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        tamper.write(Path(tmp) / "submitted", item.name, item)
        for i in range(REPEAT):
            out = subprocess.run([sys.executable, "-c", MEASURE, str(Path(tmp) / "submitted"),
                                  str(Path(tmp) / f"results{i}")], capture_output=True, text=True,
                                 cwd=ROOT, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    found = max(runs, key=lambda r: r["peak_mb"])
    found["low_mb"] = min(r["peak_mb"] for r in runs)
    return found


def measure() -> dict:
    from testkit import tamper

    honest = peak(tamper.Submission("honest_wrong", "", tamper.honest_wrong))
    found = {"honest_wrong": honest}
    files = {name: item for item, _ in tamper.BROKEN for name in [item.name]
             if name in ("largest_legal", "oversized_notebook", "many_lists", "deeply_nested")}
    for item in (tamper.json_bomb(), tamper.json_at_limits(), *files.values()):
        found[item.name] = peak(item)
        found[item.name]["extra_mb"] = found[item.name]["peak_mb"] - honest["peak_mb"]
    return found


def main() -> None:
    from autograder import submissions
    from autograder.sandbox import protocol

    found = measure()
    print(f"limits: {protocol.LINE_LIMIT / 2**20:.0f} MiB a record, {protocol.CONTAINER_LIMIT} "
          f"lists/objects a record, {protocol.TOTAL_LIMIT / 2**20:.0f} MiB a submission")
    print(f"notebook: {submissions.MAX_BYTES / 2**20:.0f} MiB, {submissions.MAX_CONTAINERS:,} "
          f"lists/objects, {submissions.MAX_DEPTH} deep, {submissions.MAX_CODE / 2**20:.0f} MiB "
          "of code")
    print(f"| submission | grader peak RSS (MB, highest of {REPEAT} runs; lowest) | more than "
          "honest (MB) | score |")
    print("|---|---|---|---|")
    for name, row in found.items():
        print(f"| `{name}` | {row['peak_mb']:.0f} ({row['low_mb']:.0f}) | "
              f"{row.get('extra_mb', 0):.0f} | {row['score']:g} |")


if __name__ == "__main__":
    main()
