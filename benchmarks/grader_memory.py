"""The grader's own peak memory on a hostile submission, against an honest one.

Each submission is graded alone by ``python -m autograder``'s engine in a fresh process that
reports its peak resident memory (``ru_maxrss`` of that process only: the sandboxed student
processes are others). The difference is what the hostile submission cost the grader.

    python benchmarks/grader_memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEASURE = '''
import json, resource, sys
from autograder import engine
records = engine.grade(sys.argv[1], sys.argv[2], jobs=1, timeout=60, progress=False)
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "score": records[0].score, "notes": records[0].notes}))
'''


def peak(item) -> dict:
    from autograder.testing import tamper

    with tempfile.TemporaryDirectory() as tmp:
        tamper.write(Path(tmp) / "submitted", item.name, item)
        out = subprocess.run([sys.executable, "-c", MEASURE, str(Path(tmp) / "submitted"),
                              str(Path(tmp) / "results")], capture_output=True, text=True,
                             cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure() -> dict:
    from autograder.testing import tamper

    honest = peak(tamper.Submission("honest_wrong", "", tamper.honest_wrong))
    found = {"honest_wrong": honest}
    for item in (tamper.json_bomb(), tamper.json_at_limits()):
        found[item.name] = peak(item)
        found[item.name]["extra_mb"] = found[item.name]["peak_mb"] - honest["peak_mb"]
    return found


def main() -> None:
    from autograder.sandbox import protocol

    found = measure()
    print(f"limits: {protocol.LINE_LIMIT / 2**20:.0f} MiB a record, {protocol.CONTAINER_LIMIT} "
          f"lists/objects a record, {protocol.TOTAL_LIMIT / 2**20:.0f} MiB a submission")
    print("| submission | grader peak RSS (MB) | more than honest (MB) | score |")
    print("|---|---|---|---|")
    for name, row in found.items():
        print(f"| `{name}` | {row['peak_mb']:.0f} | {row.get('extra_mb', 0):.0f} | "
              f"{row['score']:g} |")


if __name__ == "__main__":
    main()
