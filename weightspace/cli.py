"""The ``weightspace`` command line.

Each subcommand is a thin layer over the Python API: it parses arguments, calls the library and
renders the result as a rich table or as JSON (``--json``). User errors (a bad ``--set`` key, an
unknown plugin, a file that does not fit) are printed as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from weightspace import __version__
from weightspace.config import parse_assignments
from weightspace.dataset import write_dataset
from weightspace.diagnostics import architecture_report
from weightspace.errors import ConfigError, WeightspaceError
from weightspace.hookspecs import KINDS
from weightspace.plots import plot_dataset_preview
from weightspace.registry import default_registry
from weightspace.simulation import build_dataset
from weightspace.storage import load_tensors

console = Console()


def resolve_device(name: str | None) -> torch.device:
    """``name`` as a torch device; ``None`` means cuda when available, else cpu."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"not a device: {name!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available here")
    return device


def _add_compute_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="seed for every random choice (default: 0)")


def _add_set_option(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help=f"override a config value, e.g. {example}"
    )


def _cmd_plugins(args: argparse.Namespace) -> None:
    registry = default_registry()
    if args.json:
        print(json.dumps({kind: registry.names(kind) for kind in KINDS}))
        return
    table = Table(title="weightspace plugins")
    for column in ("kind", "name", "source"):
        table.add_column(column)
    for kind in KINDS:
        entries = registry.entries(kind)
        if not entries:
            table.add_row(kind, "[dim](none)[/dim]", "")
        for name in sorted(entries):
            table.add_row(kind, name, entries[name].source)
    console.print(table)


def _cmd_inspect(args: argparse.Namespace) -> None:
    adapter = default_registry().architecture(args.architecture, parse_assignments(args.set))
    device = resolve_device(args.device)
    state_dict = load_tensors(args.weights)[0] if args.weights else None
    report = architecture_report(adapter, seed=args.seed, device=device, state_dict=state_dict)
    if args.json:
        print(json.dumps(report))
        return
    summary = Table(title=f"{report['architecture']} ({report['prediction']})", show_header=False)
    summary.add_column("key", style="bold")
    summary.add_column("value")
    summary.add_row("config", json.dumps(report["config"]))
    for key in (
        "n_parameters",
        "n_nodes",
        "roundtrip_max_abs_error",
        "roundtrip_bitwise",
        "permutation_max_abs_error",
        "output_max_abs",
        "device",
        "seed",
    ):
        summary.add_row(key, str(report[key]))
    groups = Table(title="node groups")
    for column in ("group", "n_nodes", "feat_dim", "permuted by"):
        groups.add_column(column, justify="right" if column in ("n_nodes", "feat_dim") else "left")
    for g in report["node_groups"]:
        groups.add_row(g["name"], str(g["n_nodes"]), str(g["feat_dim"]), g["permutation"] or "[dim]fixed[/dim]")
    console.print(summary)
    console.print(groups)


def _cmd_simulate(args: argparse.Namespace) -> None:
    system = default_registry().system(args.system, args.profile, parse_assignments(args.set))
    device = resolve_device(args.device)
    out = Path(args.out)
    h5_path, png_path = out / f"{system.name}-{system.profile}.h5", out / f"{system.name}-{system.profile}.png"
    n_envs = len(system.environments())
    start = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weightspace", description="Trained network weights as data.")
    parser.add_argument("--version", action="version", version=f"weightspace {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list registered plugins by kind")
    p.add_argument("--json", action="store_true", help="print {kind: [names]} as JSON")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("inspect", help="build an architecture and check its weight graph and symmetries")
    p.add_argument("architecture", help="registered architecture name (see `weightspace plugins`)")
    _add_set_option(p, "--set hidden_channels=16 --set n_modes=6,6")
    p.add_argument("--weights", default=None, help="a safetensors state dict to inspect instead of a fresh init")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_compute_options(p)
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("simulate", help="simulate a system's train/test_in/test_out splits to HDF5, with a preview")
    p.add_argument("system", help="registered system name (see `weightspace plugins`)")
    p.add_argument("--profile", default="quick", help="settings profile: quick (CPU) or paper (default: quick)")
    p.add_argument("--out", required=True, help="output folder; writes SYSTEM-PROFILE.h5 and SYSTEM-PROFILE.png")
    _add_set_option(p, "--set n_frames=51 --set resolution=64")
    _add_compute_options(p)
    p.set_defaults(func=_cmd_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except WeightspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
