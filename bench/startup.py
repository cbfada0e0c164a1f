#!/usr/bin/env python3
"""What `cleartext version` and `cleartext --help` cost at start-up, against their floors, in one run.

Each command is run N times as a fresh interpreter with ``-X importtime``; the table gives the median of
the summed import time (what the issue's "< 150 ms (python -X importtime)" measures) and of the wall
time, next to the floors in the same run: a bare interpreter, ``import typer``, and a one-command typer
app run the same way (the least any typer CLI pays). With ``--compare REV``, the same commands of
another revision of the tree (a ``git worktree`` made and removed by the script) run interleaved.

    bench/.venv/bin/python bench/startup.py                 # 15 runs each
    bench/.venv/bin/python bench/startup.py --compare 863d43d -n 21

Byte-code is written once before timing (this machine sets PYTHONDONTWRITEBYTECODE; an installed
package has its .pyc files), so the figures are those of an installed cleartext.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")

TYPER_APP = """
import typer
app = typer.Typer(add_completion=False)
@app.command()
def version() -> None:
    print("x")
@app.command()
def other(flag: bool = False) -> None:
    pass
app()
"""


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(summed top-level import time in ms, wall time in ms) of one fresh interpreter."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    wall = (time.perf_counter() - start) * 1000
    total = 0
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|", 2)
            if name.startswith(" ") and not name.startswith("  ") and cumulative.strip().isdigit():
                total += int(cumulative)
    return total / 1000, wall


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=15, help="runs of each command (median reported)")
    parser.add_argument("--compare", metavar="REV", help="also time this git revision's commands")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="cleartext-startup-") as tmp:
        app = Path(tmp) / "typer_app.py"
        app.write_text(TYPER_APP)
        trees = {"now": ROOT / "src"}
        if args.compare:
            other = Path(tmp) / "other"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(other), args.compare],
                check=True,
                capture_output=True,
            )
            trees[args.compare] = other / "src"
        try:
            cases: dict[str, tuple[list[str], dict[str, str]]] = {
                "python -c pass": ([PYTHON, "-X", "importtime", "-c", "pass"], env),
                "import typer": ([PYTHON, "-X", "importtime", "-c", "import typer"], env),
                "typer app, 2 commands: version": ([PYTHON, "-X", "importtime", str(app), "version"], env),
                "typer app, 2 commands: --help": ([PYTHON, "-X", "importtime", str(app), "--help"], env),
            }
            for label, src in trees.items():
                tree_env = {**env, "PYTHONPATH": str(src)}
                for command in ("version", "--help"):
                    argv = [PYTHON, "-X", "importtime", "-m", "cleartext", command]
                    cases[f"cleartext {command} ({label})"] = (argv, tree_env)
            for argv, case_env in cases.values():  # write byte-code, warm the page cache
                subprocess.run(
                    [a for a in argv if a not in ("-X", "importtime")],
                    capture_output=True,
                    env=case_env,
                    timeout=60,
                )
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
            for _ in range(args.n):  # interleaved: a load spike hits every case alike
                for name, (argv, case_env) in cases.items():
                    samples[name].append(run(argv, case_env))
        finally:
            if args.compare:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], capture_output=True
                )
    print(f"load average {os.getloadavg()[0]:.1f}; {args.n} runs each, medians")
    print("| command | imports ms | wall ms |")
    print("|---|---:|---:|")
    for name, values in samples.items():
        imports = statistics.median(v[0] for v in values)
        wall = statistics.median(v[1] for v in values)
        print(f"| {name} | {imports:.0f} | {wall:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
