"""Batched (torch.func.vmap) versus looped evaluation of K experts, per architecture and K.

Later stages evaluate many experts at once (function loss, zoo evaluation, candidate selection).
Whether vmap beats a Python loop over modules depends on the architecture, its size and the
hardware, so this measures both in one run and reports times and loop/vmap ratios. vmap over
many large experts can lose to a loop on a CPU (its intermediates outgrow the caches); chunking
the vmap (``functional(..., chunk_size=)``) is measured beside it.

    python benchmarks/functional_batching.py [--ks 1,4,16,64] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

import weightspace as ws

# quick-profile sizes: a small FNO at 32x32, the paper's LV NeuralODE vector field
CASES = {
    "fno": ({"hidden_channels": 16, "n_layers": 2, "n_modes": (6, 6)}, 8),
    "uno": ({}, 8),
    "wno": ({"width": 8, "n_layers": 2}, 8),
    "mlp-node": ({}, 256),
}


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(name: str, overrides: dict, n_inputs: int, k: int, repeats: int, chunk_size: int) -> dict:
    adapter = ws.architecture(name, **overrides)
    params = adapter.init_params(k, seed=0)
    x = adapter.example_input(n_inputs, torch.Generator().manual_seed(0))
    modules = adapter.modules(params)

    with torch.no_grad():
        batched = best_time(lambda: adapter.functional(params, x), repeats)
        chunked = best_time(lambda: adapter.functional(params, x, chunk_size=chunk_size), repeats)
        looped = best_time(lambda: [m(x) for m in modules], repeats)
    return {
        "architecture": name,
        "k": k,
        "inputs_per_expert": n_inputs,
        "batched_s": batched,
        "chunked_s": chunked,
        "chunk_size": chunk_size,
        "looped_s": looped,
        "batched_experts_per_s": k / batched,
        "looped_experts_per_s": k / looped,
        "speedup": looped / batched,
        "chunked_speedup": looped / chunked,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="1,4,16,64")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-size", type=int, default=16, help="vmap chunk size of the chunked column")
    parser.add_argument("--architectures", default=",".join(CASES))
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    jobs = [(a, k) for a in args.architectures.split(",") for k in ks]
    rows = [
        measure(a, CASES[a][0], CASES[a][1], k, args.repeats, args.chunk_size)
        for a, k in track(jobs, description="measuring", transient=True)
    ]

    table = Table(title=f"batched vs looped evaluation ({torch.get_num_threads()} threads, torch {torch.__version__})")
    columns = (
        "architecture",
        "K",
        "inputs",
        "vmap ms",
        f"vmap/{args.chunk_size} ms",
        "loop ms",
        "vmap speedup",
        f"vmap/{args.chunk_size} speedup",
    )
    for col in columns:
        table.add_column(col, justify="left" if col == "architecture" else "right")
    for r in rows:
        table.add_row(
            r["architecture"],
            str(r["k"]),
            str(r["inputs_per_expert"]),
            f"{1e3 * r['batched_s']:.2f}",
            f"{1e3 * r['chunked_s']:.2f}",
            f"{1e3 * r['looped_s']:.2f}",
            f"{r['speedup']:.2f}x",
            f"{r['chunked_speedup']:.2f}x",
        )
    Console().print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
