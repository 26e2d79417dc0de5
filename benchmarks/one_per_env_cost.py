"""What One-per-Env's ceiling costs: every evaluated split trained at once, against split by split.

The ceiling trains, per environment, an expert from the base and one from scratch until early
stopping (``plugins/weightspace_methods/baselines.py``). ``evaluate`` asks it for all splits in one
call (``Method.adapt_splits``), which trains every split's environments as one batch; before, it
trained each split alone (``Method.adapt`` per split). Both give the same experts up to round-off,
since an expert does not depend on its batch mates: the table says how far apart they are.

Builds the config's zoo in ``--cache`` (a temporary folder by default; a cache of ``pipeline_cost.py
stages`` or ``weightspace bench`` is reused), then times both ways in one process.

    python benchmarks/one_per_env_cost.py configs/lotka-volterra-quick.toml [--cache DIR] [--json out.json]

Run it alone on the machine (benchmarks/README.md: one torch job at a time).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from weightspace.evaluate.evaluation import EVALUATED_SPLITS, split_environments
from weightspace.method import EvaluationOptions
from weightspace.pipeline.config import RunConfig, merge_config, read_config_toml
from weightspace.pipeline.stages import build_stage, plan_run
from weightspace.registry import default_registry
from weightspace.storage import write_json
from weightspace.zoo import Zoo


def ceiling_costs(config_path: Path, cache: Path, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Both ways of training the ceiling of every evaluated split of the config's zoo (``changes``
    merged into the config first, as ``pipeline_cost.py`` does), timed, and how far apart they are."""
    merged = merge_config(read_config_toml(config_path), changes or {})
    plan = plan_run(RunConfig.from_dict(merged, str(config_path)))
    build_stage(plan, "zoo", cache)
    zoo = Zoo.load(plan.folder(cache, "zoo"))
    splits = [split_environments(zoo, split) for split in EVALUATED_SPLITS]
    method, options = default_registry().get("methods", "one-per-env")(), EvaluationOptions()

    start = time.perf_counter()
    apart = [method.adapt(zoo, None, environments, options) for environments in splits]
    seconds_apart = time.perf_counter() - start
    start = time.perf_counter()
    together = method.adapt_splits(zoo, None, splits, options)
    seconds_together = time.perf_counter() - start

    difference = max(
        float((a.params[name] - b.params[name]).abs().max()) for a, b in zip(apart, together) for name in a.params
    )
    return {
        "config": str(config_path),
        "environments": {e.split: len(e.env_index) for e in splits},
        "seconds_split_by_split": seconds_apart,
        "seconds_all_splits": seconds_together,
        "speedup": seconds_apart / seconds_together,
        "max_abs_param_difference": difference,
        "ceiling_at_cap": [a.fields["ceiling_at_cap"] for a in together],
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, help="build (or reuse) the zoos here")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [ceiling_costs(config, args.cache or Path(tmp)) for config in args.configs]
    table = Table(title=f"One-per-Env ceilings of every evaluated split ({torch.get_num_threads()} threads)")
    for col in ("config", "environments", "split by split (s)", "all at once (s)", "speedup", "max |Δ param|"):
        table.add_column(col, justify="right")
    for r in rows:
        envs = ", ".join(f"{n} {split}" for split, n in r["environments"].items())
        table.add_row(
            r["config"],
            envs,
            f"{r['seconds_split_by_split']:.1f}",
            f"{r['seconds_all_splits']:.1f}",
            f"{r['speedup']:.2f}x",
            f"{r['max_abs_param_difference']:.1e}",
        )
    Console().print(table)
    if args.json:
        write_json(args.json, rows)


if __name__ == "__main__":
    main()
