"""The bench: a matrix of systems x architectures x methods x ablations x sweeps x seeds, run as a
graph of cached stages, and its report.

- :mod:`weightspace.bench.matrix`: the matrix TOML, expanded into cells;
- :mod:`weightspace.bench.runner`: cells planned into content-addressed nodes, run on an executor;
- :mod:`weightspace.bench.report`: result rows gathered, summarised over seeds, written as tables and plots.
"""

from weightspace.bench.runner import (
    BenchOutcome,
    BenchPlan,
    Executor,
    LocalExecutor,
    Node,
    RayExecutor,
    execute,
    plan_bench,
    run_bench,
)
from weightspace.progress import BenchProgress

__all__ = [
    "BenchOutcome",
    "BenchPlan",
    "BenchProgress",
    "Executor",
    "LocalExecutor",
    "Node",
    "RayExecutor",
    "execute",
    "plan_bench",
    "run_bench",
]
