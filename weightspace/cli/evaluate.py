"""`weightspace evaluate`: adaptation methods rolled out on the test splits, as result rows."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from weightspace.cli.common import (
    console,
    positive_float,
    positive_int,
    progress_bars,
)
from weightspace.errors import ConfigError
from weightspace.registry import default_registry


def run(args: argparse.Namespace) -> None:
    from weightspace.bench.report import finetune_reach
    from weightspace.evaluate.evaluation import EVALUATED_SPLITS, evaluate
    from weightspace.method import RUN_METHOD, EvaluationOptions
    from weightspace.pipeline.run import Run
    from weightspace.plots import plot_error_curves, plot_finetune_curves
    from weightspace.storage import atomic_path
    from weightspace.zoo import Zoo

    if (args.zoo is None) == (args.run is None):
        raise ConfigError("give exactly one of --zoo DIR (methods that need a zoo) or --run DIR (and the run's method)")
    options = EvaluationOptions(
        observed_frames=args.frames,
        candidates=args.candidates,
        finetune_steps=args.finetune_steps,
        finetune_lr=args.finetune_lr,
        finetune_budgets=tuple(args.finetune_budgets),
    )
    run = Run.load(args.run) if args.run else None
    zoo = run.zoo if run else Zoo.load(args.zoo)
    registry = default_registry()
    zoo_only = [name for name in registry.names("methods") if not registry.get("methods", name).needs_run]
    # the run's own label (e.g. dynadiff) names its generated experts
    methods = [RUN_METHOD if run and m == run.method else m for m in args.method or []]
    methods = methods or ([RUN_METHOD] if run else zoo_only)
    with progress_bars() as progress:
        task = progress.add_task("evaluating", total=len(methods) * len(EVALUATED_SPLITS))

        def log(message: str) -> None:
            progress.update(task, description=message)
            progress.advance(task, 1)

        rows = evaluate(zoo, methods, run=run, options=options, registry=registry, log=log)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(rows, indent=1))
    plot_error_curves(rows, out.with_suffix(".png"))
    written = [out, out.with_suffix(".png")]
    if any("finetune" in r for r in rows):
        written.append(out.with_name(f"{out.stem}-finetune.png"))
        plot_finetune_curves(rows, written[-1])
    table = Table(title=f"{zoo.manifest['system']} x {zoo.manifest['architecture']}: rollouts")
    for column in ("method", "split", "RMSE", "SSIM", "valid horizon", "envs", "traj", "s / env", "NN ratio"):
        table.add_column(column, justify="left" if column in ("method", "split") else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            r["method"],
            r["split"],
            f"{r['rmse_mean']:.4f} ± {r['rmse_std']:.4f}",
            "-" if r["ssim_mean"] is None else f"{r['ssim_mean']:.3f}",
            "-" if r["valid_horizon"] is None else f"{r['valid_horizon']:.1f}",
            str(r["n_envs"]),
            str(r["n_traj"]),
            f"{r['seconds_per_env']:.2f}",
            f"{r['memorization']['ratio_other_env']:.2f}" if "memorization" in r else "-",
        )
    console.print(table)
    if any("memorization" in r for r in rows):
        console.print(
            "NN ratio: median function distance of generated experts to their nearest zoo expert, over that "
            "of zoo experts to the nearest expert of another environment (below 1: close to copies)"
        )
    generated_out = {r["method"]: r for r in rows if r["split"] == "test_out" and "gen_latency_ms" in r}
    for r in rows:
        if "budget_curve" in r:
            points = ", ".join(
                f"{c['steps']} steps {c['rmse']:.4f} in {1000 * c['seconds_per_env']:.0f} ms" for c in r["budget_curve"]
            )
            console.print(f"{r['method']} out of domain by budget (RMSE, time per environment): {points}")
            for method, g in generated_out.items():
                reach = finetune_reach(r["budget_curve"], g["rmse_mean"])
                what = f"after {reach['steps']} steps" if reach["reached"] else f"not within {reach['steps']} steps"
                bound = "" if reach["reached"] else "≥ "
                latency = g["gen_latency_ms"]
                console.print(
                    f"{r['method']} reaches {method}'s out RMSE {g['rmse_mean']:.4f} {what} ({reach['ms']:.0f} ms): "
                    f"{bound}{reach['ms'] / latency:.1f}x its generation latency ({latency:.0f} ms)"
                )
        if "finetune" in r:
            f = r["finetune"]
            reached = ", ".join(f"{k} {v if v is not None else 'never'}" for k, v in f["steps_to_target"].items())
            console.print(f"{r['split']}: steps to the target loss {f['target_loss']:.3g}: {reached}")
    console.print(f"wrote {', '.join(map(str, written))}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="roll out experts of adaptation methods on the test splits")
    p.add_argument("--zoo", default=None, help="zoo directory (methods that need only a zoo)")
    p.add_argument("--run", default=None, help="trained run directory (its methods and those of its zoo)")
    p.add_argument(
        "--method",
        action="append",
        help="a registered method (repeatable; `weightspace plugins` lists them) or the run's own label; "
        "default: every method that needs only a zoo with --zoo, the run's generated experts with --run",
    )
    p.add_argument("--frames", type=positive_int, default=4, help="observed frames L (default: 4)")
    p.add_argument(
        "--candidates", type=positive_int, default=16, help="generated candidates per environment (default: 16)"
    )
    p.add_argument(
        "--finetune-steps", type=positive_int, default=100, help="steps of fine-tuning methods (default: 100)"
    )
    p.add_argument(
        "--finetune-lr", type=positive_float, default=None, help="fine-tuning learning rate (default: the zoo's)"
    )
    p.add_argument(
        "--finetune-budgets",
        type=positive_int,
        nargs="+",
        default=(),
        metavar="STEPS",
        help="also score methods that fine-tune on the observed frames out of domain with each of these step "
        "budgets, to see how long fine-tuning takes to reach the generated experts' RMSE (e.g. 10 30 100 1000)",
    )
    p.add_argument("--out", required=True, help="results JSON; a PNG of error curves is written beside it")
    p.set_defaults(func=run)
