"""Gradient-free generation against fine-tuning on the same observed frames: accuracy and time.

For a trained run (``weightspace train``), this generates an expert for every unseen environment
from its first L observed frames (prompt, sample N candidates, decode, select) and fine-tunes the
zoo's base on the same L frames for a growing number of gradient steps (``finetune-L``). It reports,
in one run, each method's out-domain rollout RMSE and wall time per environment, the nearest-zoo
retrieval and One-per-Env references, the smallest fine-tuning budget whose RMSE reaches the
generated experts', and the ratio of its time to the generation latency ("not reached" when no
budget does: fine-tuning on a few frames can overfit them and never get there).

    python benchmarks/generation_vs_finetune.py RUN_DIR [--frames 4] [--candidates 8]
        [--steps 10,30,100,300] [--references nearest-zoo,one-per-env] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from weightspace.evaluate.evaluation import evaluate
from weightspace.method import RUN_METHOD, EvaluationOptions
from weightspace.pipeline.run import Run
from weightspace.registry import default_registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a trained run folder")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--steps", default="10,30,100,300", help="fine-tuning budgets (comma-separated)")
    parser.add_argument("--references", default="nearest-zoo,one-per-env", help="reference methods (comma-separated)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    run = Run.load(args.run)
    zoo, console = run.zoo, Console()
    registry = default_registry()
    finetuning = [m for m in registry.names("methods") if registry.get("methods", m).fine_tunes_observed]
    budgets = [int(s) for s in args.steps.split(",")]
    options = EvaluationOptions(
        observed_frames=args.frames, candidates=args.candidates, finetune_budgets=tuple(budgets)
    )
    methods = [RUN_METHOD, *(m for m in args.references.split(",") if m), *finetuning]
    out = [r for r in evaluate(zoo, methods, run=run, options=options, log=console.print) if r["split"] == "test_out"]
    rows = [{"method": out[0]["method"], "rmse": out[0]["rmse_mean"], "seconds_per_env": out[0]["seconds_per_env"]}]
    for r in out[1:]:
        points = r.get("budget_curve") or [
            {"steps": None, "rmse": r["rmse_mean"], "seconds_per_env": r["seconds_per_env"]}
        ]
        rows += [{"method": r["method"], **point} for point in points]
    reached = [r for r in rows if r.get("steps") and r["rmse"] <= rows[0]["rmse"]]
    table = Table(
        title=f"{zoo.manifest['system']} x {zoo.manifest['architecture']}: unseen environments, L = {args.frames}"
    )
    for column in ("method", "steps", "out-domain RMSE", "s / env", "time / generation"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for r in rows:
        ratio = r["seconds_per_env"] / rows[0]["seconds_per_env"]
        table.add_row(
            r["method"], str(r.get("steps") or ""), f"{r['rmse']:.4f}", f"{r['seconds_per_env']:.3f}", f"{ratio:.1f}x"
        )
    console.print(table)
    if reached:
        first = reached[0]
        console.print(
            f"{first['method']} reaches the generated experts' RMSE after {first['steps']} steps: "
            f"{first['seconds_per_env'] / rows[0]['seconds_per_env']:.0f}x the generation latency"
        )
    else:
        console.print(f"fine-tuning does not reach the generated experts' RMSE within {max(budgets)} steps")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
