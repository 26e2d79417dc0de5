"""Did a change of the shipped configs change accuracy? Two bench results of the same matrix, before
and after, compared method by method, environment by environment.

For every system, architecture, method and split that both results hold, the paired difference of
RMSE (before minus after: positive when the change helped) with the bench's own statistics
(:func:`weightspace.bench.report.paired_comparison`: per environment averaged over the paired
seeds, a 95% bootstrap interval over environments, a verdict only with at least 3 seeds). A speed
setting is kept when its verdict on ``val_out`` is "tie" or "better" ("tie" is the goal: unchanged
accuracy, within seed noise); ``test_out`` is reported, never used to choose.

    python benchmarks/profile_change.py BEFORE_DIR AFTER_DIR [--json out.json] [--markdown out.md]

Each directory is a ``weightspace bench --out`` folder (or a committed copy) holding results.json.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from weightspace.bench.report import load_results, paired_comparison
from weightspace.evaluate.evaluation import EVALUATED_SPLITS
from weightspace.storage import write_json, write_text

KEY = ("system", "architecture", "method", "split")


def _cells(results: dict[str, Any]) -> dict[tuple, list[dict[str, Any]]]:
    """Per-seed rows of a results file by system, architecture, method and split (sweeps left out)."""
    cells: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in results["rows"]:
        if row.get("sweep") is None and row.get("per_env") is not None:
            cells[tuple(row[k] for k in KEY)].append(row)
    return cells


def _mean_rmse(rows: list[dict[str, Any]]) -> float:
    return sum(r["rmse_mean"] for r in rows) / len(rows)


def profile_change(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """One comparison per cell both results hold: mean RMSE over seeds before and after, and the
    paired difference (before minus after) with its interval, win count and verdict for "after"."""
    old, new = _cells(before), _cells(after)
    order = {split: i for i, split in enumerate(EVALUATED_SPLITS)}
    keys = sorted(set(old) & set(new), key=lambda k: (k[0], k[1], k[2], order.get(k[3], len(order))))
    comparisons = []
    for key in keys:
        comparisons.append(
            {**dict(zip(KEY, key)), "rmse_before": _mean_rmse(old[key]), "rmse_after": _mean_rmse(new[key])}
            | paired_comparison(new[key], old[key])
        )
    return comparisons


def _difference(c: dict[str, Any]) -> tuple[str, str]:
    """A comparison's mean difference and interval as printed ("-" where there are too few seeds)."""
    delta = "-" if c["mean_diff"] is None else f"{c['mean_diff']:+.4f}"
    ci = "-" if c["ci_low"] is None else f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
    return delta, ci


def markdown(comparisons: list[dict[str, Any]]) -> str:
    lines = [
        "| system / arch | method | split | RMSE before | RMSE after | mean Δ (before − after) | 95% CI "
        "| after wins / environments | seeds | verdict for after |",
        "|---|---|---|---:|---:|---:|---|---|---:|---|",
    ]
    for c in comparisons:
        delta, ci = _difference(c)
        lines.append(
            f"| {c['system']} / {c['architecture']} | {c['method']} | {c['split']} | {c['rmse_before']:.4f} "
            f"| {c['rmse_after']:.4f} | {delta} | {ci} | {c['wins']} / {c['n_envs']} | {c['n_seeds']} "
            f"| {c['verdict']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="bench folder with results.json, before the change")
    parser.add_argument("after", type=Path, help="bench folder with results.json, after the change")
    parser.add_argument("--json", type=Path, help="write the comparisons here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    args = parser.parse_args()
    comparisons = profile_change(load_results(args.before), load_results(args.after))
    table = Table(title=f"{args.before} -> {args.after}")
    for column in ("system", "method", "split", "before", "after", "Δ (before − after)", "95% CI", "wins", "verdict"):
        table.add_column(column)
    for c in comparisons:
        delta, ci = _difference(c)
        table.add_row(
            c["system"],
            c["method"],
            c["split"],
            f"{c['rmse_before']:.4f}",
            f"{c['rmse_after']:.4f}",
            delta,
            ci,
            f"{c['wins']}/{c['n_envs']}",
            c["verdict"],
        )
    Console(width=160).print(table)
    if args.json:
        write_json(args.json, {"before": str(args.before), "after": str(args.after), "comparisons": comparisons})
    if args.markdown:
        write_text(args.markdown, markdown(comparisons))


if __name__ == "__main__":
    main()
