"""`weightspace distill`: sparse polynomial equations (SINDy) of a vector-field expert."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from weightspace.cli.common import (
    console,
    non_negative_float,
    positive_float,
    positive_int,
    seed,
)
from weightspace.registry import default_registry


def run(args: argparse.Namespace) -> None:
    import torch

    from weightspace.evaluate.distill import compare_terms, distill_vector_field
    from weightspace.pipeline.generation import read_expert_config
    from weightspace.storage import atomic_path, load_tensors

    folder = Path(args.expert)
    meta = read_expert_config(folder)
    registry = default_registry()
    adapter = registry.architecture(meta["architecture"], meta["config"])
    params = load_tensors(folder / "expert.safetensors")[0]
    system = registry.system(meta["system"], meta["profile"], meta["system_settings"]) if "system" in meta else None
    n_steps = args.steps or (system.settings.n_frames - 1 if system else 100)
    dt = meta.get("dt", args.dt)
    x0 = adapter.example_input(args.trajectories, torch.Generator().manual_seed(args.seed))
    names = list(system.channel_names) if system else [f"x{i}" for i in range(x0.shape[1])]
    distilled = distill_vector_field(adapter, params, x0, n_steps, dt, names, args.degree, args.threshold)
    result: dict = {"expert": str(folder), **distilled.to_dict()}
    table = Table(title=f"SINDy equations of {folder} (degree {args.degree}, threshold {args.threshold})")
    for column in ("state", "term", "recovered", "true"):
        table.add_column(column, justify="left" if column in ("state", "term") else "right")
    truth = system.polynomial_coefficients(torch.tensor(list(meta["env_params"].values()))) if system else None
    if truth is not None:
        result["environment"] = meta["env_params"]
        result["terms"] = compare_terms(distilled, truth)
    for state, equation in zip(distilled.state_names, distilled.equations):
        console.print(f"d{state}/dt = {equation}")
    for row in result.get("terms", []):
        table.add_row(row["state"], row["term"], f"{row['recovered']:.4f}", f"{row['true']:.4f}")
    if truth is not None:
        console.print(table)
    if args.out:
        with atomic_path(Path(args.out)) as tmp:
            tmp.write_text(json.dumps(result, indent=1))
        console.print(f"wrote {args.out}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="fit sparse polynomial equations (SINDy) to a vector-field expert")
    p.add_argument("--expert", required=True, help="an expert folder (from `weightspace generate`)")
    p.add_argument("--degree", type=positive_int, default=2, help="degree of the polynomial library (default: 2)")
    p.add_argument(
        "--threshold", type=non_negative_float, default=0.05, help="STLSQ sparsity threshold (default: 0.05)"
    )
    p.add_argument("--trajectories", type=positive_int, default=16, help="initial states integrated (default: 16)")
    p.add_argument(
        "--steps", type=positive_int, default=None, help="steps per trajectory (default: the system's horizon)"
    )
    p.add_argument(
        "--dt", type=positive_float, default=0.1, help="step when the expert does not record one (default: 0.1)"
    )
    p.add_argument("--seed", type=seed, default=0, help="seed of the initial states (default: 0)")
    p.add_argument("--out", default=None, help="write the equations and the term comparison as JSON")
    p.set_defaults(func=run)
