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

from weightspace.evaluation import adapt_baseline, evaluate_run, scored_row
from weightspace.run import Run
from weightspace.trajectories import by_environment


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
    split = "test_out"
    environments = by_environment(zoo.dataset()[split])
    generated = next(
        r for r in evaluate_run(run, observed_frames=args.frames, n_candidates=args.candidates) if r["split"] == split
    )
    rows = [{"method": "dynadiff", "rmse": generated["rmse_mean"], "seconds_per_env": generated["seconds_per_env"]}]
    budgets = [int(s) for s in args.steps.split(",")]
    references = [(m, None) for m in args.references.split(",") if m]
    for method, steps in references + [("finetune-L", s) for s in budgets]:
        console.print(f"{method} {steps or ''} on {len(environments[0])} unseen environments")
        adapted = adapt_baseline(
            zoo, method, split, environments[0], observed_frames=args.frames, finetune_steps=steps or 1
        )
        row = scored_row(zoo, method, split, adapted.params, environments)
        rows.append(
            {"method": method, "steps": steps, "rmse": row["rmse_mean"], "seconds_per_env": adapted.seconds_per_env}
        )
    reached = [r for r in rows if r["method"] == "finetune-L" and r["rmse"] <= rows[0]["rmse"]]
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
            f"finetune-{args.frames} reaches the generated experts' RMSE after {first['steps']} steps: "
            f"{first['seconds_per_env'] / rows[0]['seconds_per_env']:.0f}x the generation latency"
        )
    else:
        console.print(f"finetune-{args.frames} does not reach the generated experts' RMSE within {max(budgets)} steps")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
