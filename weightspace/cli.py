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
from collections.abc import Sequence

import torch
from rich.console import Console
from rich.table import Table

from weightspace import __version__
from weightspace.config import parse_assignments
from weightspace.diagnostics import architecture_report
from weightspace.errors import ConfigError, WeightspaceError
from weightspace.hookspecs import KINDS
from weightspace.registry import default_registry
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weightspace", description="Trained network weights as data.")
    parser.add_argument("--version", action="version", version=f"weightspace {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list registered plugins by kind")
    p.add_argument("--json", action="store_true", help="print {kind: [names]} as JSON")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("inspect", help="build an architecture and check its weight graph and symmetries")
    p.add_argument("architecture", help="registered architecture name (see `weightspace plugins`)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set hidden_channels=16 --set n_modes=6,6",
    )
    p.add_argument("--weights", default=None, help="a safetensors state dict to inspect instead of a fresh init")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_compute_options(p)
    p.set_defaults(func=_cmd_inspect)
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
