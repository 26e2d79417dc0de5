"""`weightspace import gridded`: gridded fields (NetCDF, zarr) cut into environments and windows."""

from __future__ import annotations

import argparse

from rich.table import Table

from weightspace.cli.common import (
    console,
    finite_float,
    positive_int,
    seed,
)
from weightspace.errors import ConfigError


def _size(text: str, what: str) -> tuple[int, int]:
    try:
        h, w = (int(n) for n in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"{what} must be given as HxW, e.g. 32x32, got {text!r}") from None
    return h, w


def run(args: argparse.Namespace) -> None:
    from weightspace.data.gridded import GriddedImport, import_gridded

    settings = GriddedImport(
        variables=tuple(v.strip() for v in args.vars.split(",") if v.strip()),
        env_by=args.env_by,
        time_split=args.time_split,
        tile=_size(args.tile, "--tile"),
        n_frames=args.frames,
        stride=args.stride,
        n_seen=args.n_seen,
        n_val=args.n_val,
        seed=args.seed,
        max_missing=args.max_missing,
    )
    summary = import_gridded(args.input, settings, args.out)
    table = Table(title=f"imported {args.input} -> {summary.path}")
    columns = ("environments", "seen", "validation", "test", "train windows / env", "test windows / env", "dropped")
    for column in columns:
        table.add_column(column, justify="right")
    n = summary.n_envs
    table.add_row(
        str(n),
        str(summary.n_seen),
        str(summary.n_val),
        str(n - summary.n_seen - summary.n_val),
        str(summary.n_train),
        str(summary.n_test),
        str(len(summary.dropped)),
    )
    console.print(table)
    for d in summary.dropped:
        console.print(f"dropped environment {d['env_params']}: {d['missing_fraction']:.0%} of its values missing")
    if summary.missing_filled:
        console.print(f"{summary.missing_filled:.2%} of the kept values were missing and set to their channel's mean")
    console.print(f'use it with system = "gridded" and [system_settings] path = "{summary.path}"', markup=False)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn local data into a dataset the pipeline can use")
    import_sub = p.add_subparsers(dest="importer", required=True)
    p = import_sub.add_parser("gridded", help="gridded fields (NetCDF, zarr) cut into environments and windows")
    p.add_argument("--input", required=True, help="a NetCDF / HDF5 file or a zarr folder (read with xarray)")
    p.add_argument("--vars", required=True, help="variables, comma-separated, e.g. u100,v100")
    p.add_argument(
        "--env-by", default="regions:2x2", help="regions:RxC (lat x lon tiles) or dim:NAME (default: regions:2x2)"
    )
    p.add_argument("--time-split", default="0.5", help="test period start: ISO date or fraction (default: 0.5)")
    p.add_argument("--tile", default="32x32", help="grid each environment is resampled to (default: 32x32)")
    p.add_argument("--frames", type=positive_int, default=24, help="frames per trajectory window (default: 24)")
    p.add_argument("--stride", type=positive_int, default=None, help="frames between windows (default: --frames)")
    p.add_argument("--n-seen", type=positive_int, default=None, help="seen environments (default: a third)")
    p.add_argument(
        "--n-val", type=positive_int, default=None, help="unseen environments for validation (default: half the unseen)"
    )
    p.add_argument("--max-missing", type=finite_float, default=0.2, help="drop environments with more missing values")
    p.add_argument("--seed", type=seed, default=0, help="seed of the seen/validation/test split (default: 0)")
    p.add_argument("--out", required=True, help="the dataset file to write (.h5)")
    p.set_defaults(func=run)
