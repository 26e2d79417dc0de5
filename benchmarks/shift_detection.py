"""Do the shift scores of :mod:`weightspace.evaluate.shift` detect environments outside the seen
parameter range, and do they track a generated expert's error? Measured on a finished bench.

For every seed of one method of the matrix (a trained run evaluated by ``generated``), the run's
experts for the validation and test environments are generated again exactly as evaluation
generated them (same observed frames, candidates and sampling seeds), and each environment gets
both scores. An environment is "outside" when its parameters lie outside the convex hull of the
seen environments' parameters. Per split, pooled over seeds: the AUROC of each score for telling
outside from inside, and its Spearman correlation with the expert's rollout RMSE (from the bench's
results.json). Choose a score on ``val_out``; ``test_out`` is reported.

    python benchmarks/shift_detection.py MATRIX BENCH_DIR [--method dynadiff] [--json F] [--markdown F]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from weightspace.bench.matrix import Matrix
from weightspace.bench.report import load_results
from weightspace.bench.runner import plan_bench
from weightspace.data.trajectories import by_environment
from weightspace.evaluate.adaptation import generate_split
from weightspace.evaluate.shift import auroc, inside_hull, residual_score, seen_residuals, spearman
from weightspace.method import Environments
from weightspace.pipeline.run import Run
from weightspace.storage import write_json, write_text

SPLITS = ("val_out", "test_out")
SCORES = ("range", "residual")


def scores_of_cell(run: Run, length: int, candidates: int) -> dict[str, dict[str, Any]]:
    """Per split: env_index, outside-the-hull labels and both scores."""
    zoo = run.zoo
    seen = by_environment(zoo.dataset()["train"])[1]
    reference = seen_residuals(run, length, candidates)
    out = {}
    for split in SPLITS:
        environments = Environments(split, *by_environment(zoo.dataset()[split]))
        made = generate_split(run, environments, length, candidates)
        out[split] = {
            "env_index": environments.env_index.tolist(),
            "outside": (~inside_hull(environments.env_params, seen)).tolist(),
            "range": made.range_score.tolist(),
            "residual": residual_score(made.residual, reference).tolist(),
        }
    return out


def measure(matrix_path: Path, bench: Path, method: str) -> list[dict[str, Any]]:
    plan = plan_bench(Matrix.from_toml(matrix_path))
    rows = load_results(bench)["rows"]
    rmse = {
        (r["system"], r["architecture"], r["seed"], r["split"], e["env_index"]): e["rmse"]
        for r in rows
        if r["method"] == method and r.get("sweep") is None
        for e in r["per_env"]
    }
    pooled: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for cell in plan.cells:
        if cell.method != method or cell.group != "method":
            continue
        run = Run.load(bench / "cache" / f"run-{plan.evaluation[cell.id]}")
        for split, found in scores_of_cell(run, cell.observed_frames, cell.candidates).items():
            into = pooled[(cell.system, cell.architecture, split)]
            for key in ("outside", *SCORES):
                into[key] += found[key]
            into["rmse"] += [rmse[(cell.system, cell.architecture, cell.seed, split, e)] for e in found["env_index"]]
            into["seeds"].append(cell.seed)
    results = []
    for (system, arch, split), data in pooled.items():
        outside, error = torch.tensor(data["outside"]), torch.tensor(data["rmse"])
        record = {"system": system, "architecture": arch, "split": split, "method": method}
        record |= {"environments": len(outside), "outside": int(outside.sum()), "seeds": sorted(set(data["seeds"]))}
        for name in SCORES:
            score = torch.tensor(data[name])
            record[f"auroc_{name}"] = auroc(score, outside)
            record[f"spearman_{name}"] = spearman(score, error)
        results.append(record)
    return results


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


COLUMNS = (
    "system / arch",
    "method",
    "split",
    "environments (outside the seen hull)",
    "seeds",
    "AUROC range",
    "AUROC residual",
    "Spearman range vs RMSE",
    "Spearman residual vs RMSE",
)
MEASURES = ("auroc_range", "auroc_residual", "spearman_range", "spearman_residual")


def _cells(r: dict[str, Any]) -> list[str]:
    where = [f"{r['system']} / {r['architecture']}", r["method"], r["split"]]
    return [*where, f"{r['environments']} ({r['outside']})", str(len(r["seeds"])), *(_fmt(r[k]) for k in MEASURES)]


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---|---|---|---|---:|---:|---:|---:|"]
    return "\n".join([*lines, *("| " + " | ".join(_cells(r)) + " |" for r in results)]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrix", type=Path, help="the bench matrix the folder was built from")
    parser.add_argument("bench", type=Path, help="its weightspace bench --out folder")
    parser.add_argument("--method", default="dynadiff", help="a method of the matrix evaluated as generated")
    parser.add_argument("--json", type=Path, help="write the measures here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    args = parser.parse_args()
    results = measure(args.matrix, args.bench, args.method)
    table = Table(title=f"shift scores of {args.method}")
    for column in COLUMNS:
        table.add_column(column)
    for r in results:
        table.add_row(*_cells(r))
    Console().print(table)
    if args.json:
        write_json(args.json, results)
    if args.markdown:
        write_text(args.markdown, markdown(results))


if __name__ == "__main__":
    main()
