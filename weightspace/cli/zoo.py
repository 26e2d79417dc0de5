"""`weightspace zoo build` and `zoo info`: train a domain-adaptive zoo, or describe one."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table

from weightspace.cli.common import (
    RichZooProgress,
    add_compute_options,
    add_executor_options,
    add_set_option,
    console,
    progress_bars,
    resolve_device,
)
from weightspace.config import parse_assignments
from weightspace.errors import ConfigError
from weightspace.registry import default_registry

if TYPE_CHECKING:
    from weightspace.zoo import Zoo

SET_SCOPES = ("system", "arch", "zoo")


def _scoped_overrides(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """``--set scope.key=value`` assignments split by scope (system, arch, zoo)."""
    scoped: dict[str, dict[str, str]] = {scope: {} for scope in SET_SCOPES}
    for key, value in parse_assignments(items).items():
        scope, dot, name = key.partition(".")
        if not dot or scope not in scoped:
            raise ConfigError(f"--set {key}=...: prefix the key with one of {', '.join(SET_SCOPES)} (e.g. zoo.size=4)")
        scoped[scope][name] = value
    return scoped


def run_zoo_build(args: argparse.Namespace) -> None:
    from weightspace.parallel import RayPool
    from weightspace.storage import claim_output
    from weightspace.zoo import build_zoo, plan_zoo

    scoped = _scoped_overrides(args.set)
    if args.size is not None:
        scoped["zoo"]["size"] = args.size
    if args.random_init:
        scoped["zoo"]["random_init"] = True
    if args.executor == "local" and (args.jobs is not None or args.address is not None):
        raise ConfigError("--jobs and --address choose Ray workers: add --executor ray")
    registry = default_registry()
    device = resolve_device(args.device)  # of the base, trained here, and of every expert
    plan = plan_zoo(
        registry,
        args.system,
        args.arch,
        args.profile,
        args.seed,
        system_overrides=scoped["system"],
        architecture_overrides=scoped["arch"],
        zoo_overrides=scoped["zoo"],
    )
    start = time.perf_counter()
    with claim_output(args.out, "zoo"):
        pool = RayPool(args.jobs, args.address, gpus=device.type == "cuda") if args.executor == "ray" else None
        try:
            with progress_bars() as progress:
                zoo = build_zoo(plan, args.out, device, RichZooProgress(progress), registry, pool)
        finally:
            if pool is not None:
                pool.close()
    console.print(_zoo_table(zoo))
    console.print(f"zoo in {args.out}: built or resumed in {time.perf_counter() - start:.1f} s")


def _zoo_table(zoo: Zoo) -> Table:
    m = zoo.manifest
    table = Table(title=f"zoo: {m['system']} ({m['profile']}) x {m['architecture']}, seed {m['seed']}")
    for column in ("environment", "experts", "dropped", "val loss", "val RMSE", "perturbed layers"):
        table.add_column(column, justify="left" if column in ("environment", "perturbed layers") else "right")

    def mean(values: list) -> str:
        values = [v for v in values if v is not None]
        return f"{sum(values) / len(values):.4g}" if values else "-"

    base = m["base"]
    table.add_row("base (all seen)", "1", "0", mean([base["val_loss"]]), mean([base["val_rmse"]]), "")
    for r in m["environments"]:
        label = ", ".join(f"{k}={v:.3g}" for k, v in r["env_params"].items())
        layers = sorted({e["perturbed_layer"] for e in r["experts"] if e["perturbed_layer"]})
        table.add_row(
            f"{r['env_index']}: {label}",
            str(len(r["experts"])),
            str(len(r["dropped"])),
            mean([e["val_loss"] for e in r["experts"]]),
            mean([e["val_rmse"] for e in r["experts"]]),
            f"{len(layers)} distinct" if layers else "random init",
        )
    return table


def run_zoo_info(args: argparse.Namespace) -> None:
    from weightspace.zoo import Zoo

    zoo = Zoo.load(args.dir)
    if args.json:
        print(json.dumps(zoo.manifest))
        return
    console.print(_zoo_table(zoo))
    m = zoo.manifest
    console.print(
        f"{zoo.n_experts} experts of {zoo.spec.n_params:,} parameters; architecture config "
        f"{json.dumps(m['architecture_config'])}"
    )
    console.print(f"verified: {zoo.verified}", soft_wrap=True)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("zoo", help="build or describe a model zoo")
    zoo_sub = p.add_subparsers(dest="zoo_command", required=True)
    p = zoo_sub.add_parser("build", help="train a domain-adaptive zoo (resumable: rerun to continue)")
    p.add_argument("--system", required=True, help="registered system name")
    p.add_argument("--arch", required=True, help="registered architecture name")
    p.add_argument("--profile", default="quick", help="quick (CPU) or paper (default: quick)")
    p.add_argument("--size", type=int, default=None, help="experts per seen environment (default: the profile's)")
    p.add_argument("--random-init", action="store_true", help="train experts from random init (ablation)")
    p.add_argument("--out", required=True, help="zoo directory (new or empty; a rerun resumes there)")
    add_set_option(p, "--set arch.hidden_channels=16 --set zoo.expert_steps=100 --set system.n_seen=3")
    add_compute_options(p)
    add_executor_options(
        p,
        "where the experts train: this process, or Ray tasks of one chunk of experts each",
        "ray: tasks at once (default: 2 local workers, or the cluster's CPUs)",
    )
    p.set_defaults(func=run_zoo_build)
    p = zoo_sub.add_parser("info", help="summarise a zoo and verify its checksums")
    p.add_argument("dir", help="zoo directory")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=run_zoo_info)
