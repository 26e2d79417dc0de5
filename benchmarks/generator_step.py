"""What one generator training step costs on the CPU, and which levers change it without changing the model.

The generator stage is a fixed number of steps of a DiT over latent tokens (``pipeline_cost.py``
shows it dominating the quick pipelines), so its cost is steps x step time. This times one
optimizer step (forward, backward, AdamW) of the quick configs' DiT on random latents of the quick
zoos' shapes (timing does not depend on the values) under levers that keep the model's math:
torch threads, the attention kernel (flash vs math), and ``torch.compile`` (its compile time
reported apart). Levers that change the model (width, depth, batch size, steps) are listed for
scale, not as recommendations: they need an accuracy check on validation environments first.

    python benchmarks/generator_step.py [--steps 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from rich.console import Console
from rich.table import Table
from torch.nn.attention import SDPBackend, sdpa_kernel

from weightspace.nn.dit import DiT

# (label, tokens, latent dim): the graph-vae latents of the quick zoos (one token per hidden unit)
SHAPES = (("lotka-volterra quick (mlp-node 64 x 64)", 130, 8), ("lambda-omega quick (fno hidden 16)", 162, 8))
CONDITION = 64


def _step(
    net: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: int, tokens: int, dim: int
) -> Callable[[], None]:
    g = torch.Generator().manual_seed(0)
    x, t, c = (
        torch.randn(batch, tokens, dim, generator=g),
        torch.rand(batch, generator=g),
        torch.randn(batch, CONDITION, generator=g),
    )

    def step() -> None:
        loss = (net(x, 1000 * t, c) - x).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(
    tokens: int,
    dim: int,
    *,
    hidden: int = 64,
    depth: int = 3,
    batch: int = 32,
    threads: int = 2,
    kernel: str = "default",
    compiled: bool = False,
    steps: int = 20,
) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = DiT(tokens, dim, CONDITION, hidden, depth, 4)
    model = torch.compile(net) if compiled else net
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3)
    step = _step(model, optimizer, batch, tokens, dim)
    context: Callable[[], AbstractContextManager] = {
        "default": nullcontext,
        "math": lambda: sdpa_kernel(SDPBackend.MATH),
        "flash": lambda: sdpa_kernel(SDPBackend.FLASH_ATTENTION),
    }[kernel]
    with context():
        start = time.perf_counter()
        step()  # the first step compiles
        first = time.perf_counter() - start
        for _ in range(2):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        per_step = (time.perf_counter() - start) / steps
    return {
        "hidden": hidden,
        "depth": depth,
        "batch": batch,
        "threads": threads,
        "kernel": kernel,
        "compiled": compiled,
        "ms_per_step": 1000 * per_step,
        "first_step_s": first,
    }


LEVERS = (
    ("as shipped (2 threads)", {}),
    ("1 thread", {"threads": 1}),
    ("math attention", {"kernel": "math"}),
    ("flash attention", {"kernel": "flash"}),
    ("torch.compile", {"compiled": True}),
    ("model change: batch 16", {"batch": 16}),
    ("model change: hidden 32, depth 2", {"hidden": 32, "depth": 2}),
    ("model change: hidden 128, depth 4", {"hidden": 128, "depth": 4}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for label, tokens, dim in SHAPES:
        table = Table(title=f"DiT training step, {label}: {tokens} tokens x {dim}")
        for column in ("lever", "ms / step", "vs shipped", "first step (s)"):
            table.add_column(column, justify="left" if column == "lever" else "right")
        shipped = None
        for lever, options in LEVERS:
            row = {"shape": label, "lever": lever, **measure(tokens, dim, steps=args.steps, **options)}
            shipped = shipped or row["ms_per_step"]
            rows.append(row)
            table.add_row(
                lever, f"{row['ms_per_step']:.1f}", f"{row['ms_per_step'] / shipped:.2f}x", f"{row['first_step_s']:.1f}"
            )
        Console().print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
