"""`weightspace bench` and `report`: run a matrix of systems x methods x ablations x seeds; redraw its report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.progress import Progress
from rich.table import Table

from weightspace.cli.common import (
    add_executor_options,
    console,
    progress_bars,
    resolve_device,
)
from weightspace.errors import WeightspaceError
from weightspace.progress import BenchProgress

if TYPE_CHECKING:
    from weightspace.bench import Node


class _RichBenchProgress(BenchProgress):
    """The bench's overall bar naming the nodes running, a bar per running node's stage, and one
    line per finished node."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task, self.stages = progress, None, {}

    def start(self, total: int, done: int) -> None:
        self.task = self.progress.add_task("bench", total=total, completed=done)

    def running(self, labels: list[str]) -> None:
        self.progress.update(self.task, description=f"bench: {'; '.join(labels) or 'idle'}")

    def stage(self, node: Node, name: str, total: int) -> None:
        self._drop(node)
        self.stages[node.key] = self.progress.add_task(f"  {node.label}: {name}", total=total)

    def advance(self, node: Node, n: int) -> None:
        if node.key in self.stages:
            self.progress.advance(self.stages[node.key], n)

    def log(self, node: Node, message: str) -> None:
        self.progress.console.print(f"{node.label}: {message}")

    def finished(self, node: Node, result: dict) -> None:
        self._drop(node)
        self.progress.advance(self.task, 1)
        if "error" in result:
            self.progress.console.print(f"[red]failed[/red] {node.label}: {result['error']}")
        else:
            self.progress.console.print(f"done {node.label} in {result['seconds']:.1f} s")

    def _drop(self, node: Node) -> None:
        if node.key in self.stages:
            self.progress.remove_task(self.stages.pop(node.key))


def run_bench(args: argparse.Namespace) -> None:
    from rich.markdown import Markdown

    from weightspace.bench import LocalExecutor, RayExecutor, plan_bench, run_bench
    from weightspace.bench.matrix import Matrix
    from weightspace.bench.report import methods_table, write_report, write_results
    from weightspace.storage import claim_output

    matrix = Matrix.from_toml(args.matrix)
    out = Path(args.out)
    if args.dry_run:
        plan = plan_bench(matrix)
        table = Table(title=f"{args.matrix}: {len(plan.cells)} cells, {len(plan.nodes)} nodes")
        for column in ("node", "needs", "built"):
            table.add_column(column)
        for node in plan.nodes.values():
            needs = ", ".join(plan.nodes[n].label for n in node.needs)
            table.add_row(node.label, needs, "yes" if plan.is_built(node.key, out) else "no")
        console.print(table)
        return
    start = time.perf_counter()
    with claim_output(out, "bench"):
        with progress_bars() as progress:
            bench_progress = _RichBenchProgress(progress)
            if args.executor == "ray":  # the device is the workers', not this machine's
                executor = RayExecutor(args.jobs, args.address, args.device or "cpu")
            else:
                executor = LocalExecutor(args.jobs or 1, str(resolve_device(args.device)), bench_progress)
            try:
                outcome = run_bench(matrix, out, executor, bench_progress)
            except KeyboardInterrupt:  # run_bench stopped the running nodes
                raise WeightspaceError(
                    f"interrupted; every finished stage is kept in {out}: rerun the same command to resume"
                ) from None
            finally:
                executor.close()
        results = write_results(outcome.plan, out, outcome.failed, str(args.matrix))
        written = write_report(out, results)
    console.print(Markdown(f"**{args.matrix}**: rollout RMSE (mean over seeds)\n\n{methods_table(results)}"))
    console.print(
        f"bench finished in {time.perf_counter() - start:.0f} s ({len(outcome.ran)} nodes built); "
        f"report: {written[0]}; results: {out / 'results.json'}, {out / 'results.csv'}"
    )
    if outcome.failed:
        raise WeightspaceError(
            f"{len(outcome.failed)} node(s) failed; the report lists them and {out / 'logs'} has the tracebacks. "
            "Rerun the same command to retry them (everything built is kept)."
        )


def run_report(args: argparse.Namespace) -> None:
    from rich.markdown import Markdown

    from weightspace.bench.report import load_results, methods_table, write_report

    out = Path(args.dir)
    results = load_results(out)
    written = write_report(out, results)
    console.print(Markdown(f"**{results['matrix']}**: rollout RMSE (mean over seeds)\n\n{methods_table(results)}"))
    console.print(f"wrote {', '.join(map(str, written))}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a matrix of systems x methods x ablations x seeds; tables and plots")
    p.add_argument("matrix", help="matrix TOML (see benchmarks/matrices/)")
    p.add_argument(
        "--out", required=True, help="bench folder (new or empty; a rerun resumes and reuses every finished stage)"
    )
    add_executor_options(
        p, "where nodes run", "nodes at once (default: 1; ray: 2 local workers, or the cluster's CPUs)"
    )
    p.add_argument("--dry-run", action="store_true", help="list the nodes and which are built; run nothing")
    p.add_argument("--device", default=None, help="device of the stages: cpu, cuda (default: cuda when available)")
    p.set_defaults(func=run_bench)
    p = sub.add_parser("report", help="redraw a bench's report.md and plots from its results.json")
    p.add_argument("dir", help="bench folder")
    p.set_defaults(func=run_report)
