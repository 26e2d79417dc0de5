"""Wall time of short `weightspace` commands from process start to exit, against importing torch alone.

A user's first contact is `weightspace --help` and `weightspace plugins`; both import no torch (the
plugins name their components lazily and each command imports its library when it runs). This
times each command as a fresh process, the median of ``--repeat`` runs after one warm-up, next to
`python -c "import torch"` and `python -c "import weightspace.cli"`.

    python benchmarks/cli_startup.py [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

COMMANDS = {
    "weightspace --help": ["weightspace", "--help"],
    "weightspace plugins": ["weightspace", "plugins"],
    "weightspace plugins --json": ["weightspace", "plugins", "--json"],
    "weightspace zoo build --help": ["weightspace", "zoo", "build", "--help"],
    'python -c "import weightspace.cli"': [sys.executable, "-c", "import weightspace.cli"],
    'python -c "import torch" (reference)': [sys.executable, "-c", "import torch"],
}


def wall(argv: list[str], repeat: int) -> float:
    subprocess.run(argv, capture_output=True, check=True)  # warm-up: file cache, bytecode
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    exe = shutil.which("weightspace")
    if exe is None:
        raise SystemExit("weightspace is not on PATH: install the package (make test does) and activate its venv")
    results = {
        label: wall([exe, *argv[1:]] if argv[0] == "weightspace" else argv, args.repeat)
        for label, argv in COMMANDS.items()
    }
    table = Table(title=f"start-to-exit wall time, median of {args.repeat}")
    table.add_column("command")
    table.add_column("seconds", justify="right")
    for label, seconds in results.items():
        table.add_row(label, f"{seconds:.2f}")
    Console().print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
