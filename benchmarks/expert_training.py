"""Experts per minute when training K experts batched (one stacked tensor) versus looped (one at a time).

The zoo trains its experts ``expert_batch`` at a time (``weightspace.zoo.trainer``). This measures, in
one run, the time of a fixed number of training steps of K experts trained together and of the
same K experts trained one after another, at the quick profile's architecture and training
settings, and reports experts per minute (extrapolated to the quick profile's ``expert_steps``) and
the batched/looped ratio as K grows. The two ways give the same experts (tests/test_trainer.py).
Timing does not depend on the data's values, so the data are random trajectories of each system's
quick-profile shape.

It also times, in the same run, an FNO training step with neuraloperator's 1x1 convolutions
computed as matrix products (``weightspace_neuralop.pointwise``, as the adapters build them) against
the stock ``nn.Conv1d`` (oneDNN grouped convolutions under ``vmap``), at the lambda-omega quick
profile's shapes.

    python benchmarks/expert_training.py [--ks 1,4,16,64] [--steps 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table
from torch import nn

from weightspace.data.trajectories import ChannelScale
from weightspace.registry import default_registry
from weightspace.zoo import plan_zoo
from weightspace.zoo.trainer import TrainingData, train_experts
from weightspace_neuralop.pointwise import PointwiseConv1d

MATMUL_FORWARD = PointwiseConv1d.forward

# (architecture, system): the pairs of the quick-profile zoos
CASES = (("fno", "kolmogorov"), ("mlp-node", "lotka-volterra"))


def _data(plan, n_groups: int = 4, n_traj: int = 5) -> TrainingData:
    system = plan.system
    shape = (n_groups, n_traj, system.settings.n_frames, *system.state_shape())
    traj = 2 + 0.05 * torch.randn(shape, generator=torch.Generator().manual_seed(1)).cumsum(dim=2)
    return TrainingData(traj[:, :-1], traj[:, -1:], ChannelScale.fit(traj, len(shape) - 3), system.settings.dt)


def measure(arch: str, system: str, k: int, steps: int) -> dict:
    plan = plan_zoo(default_registry(), system, arch, "quick")
    data = _data(plan)
    config = plan.settings.training(base=False)
    timed = replace(config, steps=steps, eval_every=steps, patience=steps)
    init = plan.adapter.init_params(k, seed=0)
    group, seeds = [i % data.train.shape[0] for i in range(k)], list(range(k))
    train_experts(plan.adapter, init, data, group, seeds, replace(timed, steps=1))  # warm-up
    times = {}
    for label, batch in (("batched", k), ("looped", 1)):
        start = time.perf_counter()
        train_experts(plan.adapter, init, data, group, seeds, timed, expert_batch=batch)
        times[label] = time.perf_counter() - start
    per_expert_steps = config.steps / steps
    return {
        "architecture": arch,
        "system": system,
        "k": k,
        "steps_timed": steps,
        "expert_steps": config.steps,
        "batched_s": times["batched"],
        "looped_s": times["looped"],
        "batched_experts_per_min": 60 * k / (times["batched"] * per_expert_steps),
        "looped_experts_per_min": 60 * k / (times["looped"] * per_expert_steps),
        "speedup": times["looped"] / times["batched"],
    }


def measure_pointwise(k: int, steps: int) -> dict:
    """Seconds per step of K FNO experts trained batched, 1x1 convolutions as matmuls and stock."""
    plan = plan_zoo(default_registry(), "lambda-omega", "fno", "quick")
    data = _data(plan)
    config = replace(plan.settings.training(base=False), steps=steps, eval_every=steps, patience=steps)
    init = plan.adapter.init_params(k, seed=0)
    group, seeds = [i % data.train.shape[0] for i in range(k)], list(range(k))
    times = {}
    for label, forward in (("matmul", MATMUL_FORWARD), ("stock", nn.Conv1d.forward)):
        PointwiseConv1d.forward = forward
        try:
            train_experts(plan.adapter, init, data, group, seeds, replace(config, steps=1))  # warm-up
            start = time.perf_counter()
            train_experts(plan.adapter, init, data, group, seeds, config)
            times[label] = (time.perf_counter() - start) / steps
        finally:
            PointwiseConv1d.forward = MATMUL_FORWARD
    return {"k": k, "matmul_s": times["matmul"], "stock_s": times["stock"], "speedup": times["stock"] / times["matmul"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="1,4,16,64")
    parser.add_argument("--steps", type=int, default=10, help="training steps timed per measurement")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    jobs = [(a, s, int(k)) for a, s in CASES for k in args.ks.split(",")]
    rows = [measure(a, s, k, args.steps) for a, s, k in track(jobs, description="measuring", transient=True)]

    table = Table(
        title=f"expert training, batched vs looped ({torch.get_num_threads()} threads, torch {torch.__version__})"
    )
    for col in ("architecture", "system", "K", "batched experts/min", "looped experts/min", "speedup"):
        table.add_column(col, justify="left" if col in ("architecture", "system") else "right")
    for r in rows:
        table.add_row(
            r["architecture"],
            r["system"],
            str(r["k"]),
            f"{r['batched_experts_per_min']:.1f}",
            f"{r['looped_experts_per_min']:.1f}",
            f"{r['speedup']:.2f}x",
        )
    Console().print(table)
    pointwise = [measure_pointwise(k, args.steps) for k in (1, 8)]
    table = Table(title="FNO (lambda-omega quick) training step: 1x1 convolutions as matmuls vs stock Conv1d")
    for col in ("K", "matmul ms / step", "stock ms / step", "stock / matmul"):
        table.add_column(col, justify="right")
    for r in pointwise:
        table.add_row(str(r["k"]), f"{1000 * r['matmul_s']:.1f}", f"{1000 * r['stock_s']:.1f}", f"{r['speedup']:.2f}x")
    Console().print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batched_vs_looped": rows, "pointwise": pointwise}, f, indent=2)


if __name__ == "__main__":
    main()
