"""`weightspace simulate`: a system's train/test_in/val_out/test_out splits to HDF5, with a preview."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.table import Table

from weightspace.cli.common import (
    add_compute_options,
    add_set_option,
    console,
    progress_bars,
    resolve_device,
)
from weightspace.config import parse_assignments
from weightspace.registry import default_registry


def run(args: argparse.Namespace) -> None:
    from weightspace.data.dataset import write_dataset
    from weightspace.data.simulation import build_dataset
    from weightspace.plots import plot_dataset_preview
    from weightspace.storage import claim_output

    system = default_registry().system(args.system, args.profile, parse_assignments(args.set))
    device = resolve_device(args.device)
    out = Path(args.out)
    h5_path, png_path = out / f"{system.name}-{system.profile}.h5", out / f"{system.name}-{system.profile}.png"
    n_envs = len(system.environments())
    start = time.perf_counter()
    with claim_output(out, "dataset", force=args.force):
        with progress_bars() as progress:
            task = progress.add_task(f"simulating {system.name} ({system.profile})", total=n_envs)
            dataset = build_dataset(system, args.seed, lambda n: progress.advance(task, n), device)
        sim_seconds = time.perf_counter() - start
        write_dataset(h5_path, dataset)
        plot_dataset_preview(dataset, png_path)
    wall = time.perf_counter() - start

    table = Table(title=f"{system.name} ({system.profile}, seed {args.seed})")
    for column in ("split", "environments", "trajectories", "frames", "shape"):
        table.add_column(column, justify="left" if column in ("split", "shape") else "right")
    for name, split in dataset.splits.items():
        table.add_row(
            name,
            str(len(split.env_index.unique())),
            str(split.trajectories.shape[0]),
            str(split.trajectories.shape[1]),
            str(list(split.trajectories.shape)),
        )
    console.print(table)
    console.print(f"simulated on {device} in {sim_seconds:.1f} s, {wall:.1f} s with writing; dt = {dataset.dt:g}")
    console.print(f"wrote {h5_path} and {png_path}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help="simulate a system's train/test_in/val_out/test_out splits to HDF5, with a preview"
    )
    p.add_argument("system", help="registered system name (see `weightspace plugins`)")
    p.add_argument("--profile", default="quick", help="settings profile: quick (CPU) or paper (default: quick)")
    p.add_argument("--out", required=True, help="output folder; writes SYSTEM-PROFILE.h5 and SYSTEM-PROFILE.png")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty folder weightspace did not create (same-named files are replaced)",
    )
    add_set_option(p, "--set n_frames=51 --set resolution=64")
    add_compute_options(p)
    p.set_defaults(func=run)
