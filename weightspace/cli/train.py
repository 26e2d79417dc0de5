"""`weightspace train`: the stages of a run config (zoo, encoder, generator + prompter), cached."""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

from rich.table import Table

from weightspace.cli.common import (
    RichZooProgress,
    add_compute_options,
    console,
    progress_bars,
    resolve_device,
)


def run(args: argparse.Namespace) -> None:
    from weightspace.pipeline import RunConfig, plan_run, train_run
    from weightspace.pipeline.stages import use_zoo
    from weightspace.storage import claim_output

    config = RunConfig.from_toml(args.config)
    plan = plan_run(config)  # every name and setting checked before --out is created
    if args.zoo is not None:
        use_zoo(plan, args.zoo)
    device = resolve_device(args.device)
    start = time.perf_counter()
    shared_cache = args.cache is not None and Path(args.cache).resolve() != Path(args.out).resolve()
    cache_claim = claim_output(args.cache, "cache") if shared_cache else contextlib.nullcontext()
    with claim_output(args.out, "run"), cache_claim, progress_bars() as progress:
        run = train_run(
            config, args.out, device=device, progress=RichZooProgress(progress), cache=args.cache, zoo=args.zoo
        )
    table = Table(title=f"run {args.out} ({config.method}): {config.system} x {config.architecture} ({config.profile})")
    for column in ("stage", "folder", "summary"):
        table.add_column(column)
    folders = {stage: os.path.relpath(folder, run.path) for stage, folder in run.stages.items()}
    table.add_row("zoo", folders["zoo"], f"{run.zoo.n_experts} experts")
    held = run.summary("encoder")["held_out"]
    summary = f"held-out weight MSE {held['weight_mse']:.4g}, function error {held['function_error']:.4g}"
    if "nearest_training_function_error" in held:  # absent from stages built before it was measured
        summary += f" (nearest training expert: {held['nearest_training_function_error']:.4g})"
    table.add_row("encoder", folders["encoder"], summary)
    generator = run.summary("generator")
    last = generator["history"][-1]
    summary = f"generator loss {last['diffusion']:.4g}, aux {last['aux']:.4g}"
    kept = [v for v in generator.get("validation", ()) if v["step"] == generator.get("kept_step")]
    if kept:  # a validated stage: the weights kept and their validation rollout RMSE
        summary += f"; kept step {kept[0]['step']} (val_out RMSE {kept[0]['val_rmse']:.4g})"
    table.add_row("generator", folders["generator"], summary)
    console.print(table)
    console.print(f"trained or resumed in {time.perf_counter() - start:.1f} s")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="run the stages of a run config (zoo, encoder, generator+prompter), cached")
    p.add_argument("--config", required=True, help="run config TOML (see configs/)")
    p.add_argument(
        "--out", required=True, help="run directory (new or empty; a rerun resumes and reuses finished stages)"
    )
    p.add_argument("--cache", default=None, help="folder of stage folders, shareable between runs (default: --out)")
    p.add_argument(
        "--zoo", default=None, help="a zoo built by `weightspace zoo build` to use as the zoo stage (it must match)"
    )
    add_compute_options(p)
    p.set_defaults(func=run)
