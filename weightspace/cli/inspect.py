"""`weightspace inspect`: build an architecture and check its weight graph and permutation symmetries."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from weightspace.cli.common import (
    add_compute_options,
    add_set_option,
    console,
    resolve_device,
)
from weightspace.config import parse_assignments
from weightspace.registry import default_registry


def run(args: argparse.Namespace) -> None:
    import torch

    from weightspace.diagnostics import architecture_report
    from weightspace.errors import PluginError
    from weightspace.graph import WeightGraph
    from weightspace.storage import load_tensors
    from weightspace.testing import PERMUTATION_RTOL, permutation_violations

    adapter = default_registry().architecture(args.architecture, parse_assignments(args.set))
    device = resolve_device(args.device)
    state_dict = load_tensors(args.weights)[0] if args.weights else None
    report = architecture_report(adapter, seed=args.seed, device=device, state_dict=state_dict)
    # each permutation set on its own, so that a broken symmetry names the set whose layout is wrong
    if state_dict is None:
        params = adapter.init_params(1, args.seed, device)
    else:
        params = WeightGraph.from_state_dict(adapter.spec, state_dict).to(device).to_params()
    x = adapter.example_input(4, torch.Generator().manual_seed(args.seed)).to(device)
    broken = permutation_violations(adapter, params, x, args.seed)
    report["broken_permutations"] = broken
    if args.json:
        print(json.dumps(report))
    else:
        _print_inspect_tables(report)
    if broken:
        sets = ", ".join(f"{name!r} (output changed by {error:.3g})" for name, error in broken.items())
        raise PluginError(
            f"{adapter.name}: permuting hidden-unit set(s) {sets} changes the network's output (tolerance "
            f"{PERMUTATION_RTOL:g} x (max |output| + 1)); the layout misses or misplaces an axis that moves with it"
        )


def _print_inspect_tables(report: dict) -> None:
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
    broken = ", ".join(f"{name} ({error:.3g})" for name, error in report["broken_permutations"].items())
    summary.add_row("broken_permutations", f"[red]{broken}[/red]" if broken else "none")
    groups = Table(title="node groups")
    for column in ("group", "n_nodes", "feat_dim", "permuted by"):
        groups.add_column(column, justify="right" if column in ("n_nodes", "feat_dim") else "left")
    for g in report["node_groups"]:
        groups.add_row(g["name"], str(g["n_nodes"]), str(g["feat_dim"]), g["permutation"] or "[dim]fixed[/dim]")
    console.print(summary)
    console.print(groups)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="build an architecture and check its weight graph and symmetries (exit 2 naming a broken permutation)",
    )
    p.add_argument("architecture", help="registered architecture name (see `weightspace plugins`)")
    add_set_option(p, "--set hidden_channels=16 --set n_modes=6,6")
    p.add_argument("--weights", default=None, help="a safetensors state dict to inspect instead of a fresh init")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_compute_options(p)
    p.set_defaults(func=run)
