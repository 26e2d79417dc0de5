"""What the commands share: the console, option groups, device resolution and progress bars.

Each command imports the library it needs when it runs, so that `--help` and `plugins` start
without torch, neuraloperator or matplotlib (seconds on 2 cores); nothing here imports them.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from weightspace.config import MAX_COUNT
from weightspace.errors import ConfigError
from weightspace.progress import ZooProgress

if TYPE_CHECKING:
    import torch

# piped output (make, CI logs) gets a wide console instead of rich's 80-column default
console = Console() if sys.stdout.isatty() else Console(width=140)


MAX_SEED = 2**63 - 1
"""The largest seed: torch and numpy take seeds as 64-bit integers (larger ones overflow)."""


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` for integers in ``[low, high]``: a bad value is argparse's one-line usage
    error at parse time instead of an empty tensor, an overflow or a silent default later."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in [{low}, {high}], got {text!r}")
        return value

    return parse


positive_int = int_in(1, MAX_COUNT)
"""A count: at least one of something."""
non_negative_int = int_in(0, MAX_COUNT)
"""An index or a count that may be zero."""
seed = int_in(0, MAX_SEED)
"""A seed torch and numpy accept."""


def finite_float(text: str) -> float:
    """An argparse ``type`` for finite numbers: ``nan`` would compare false everywhere and pass range
    checks unnoticed, ``inf`` would run without meaning anything."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse ``type`` for finite numbers > 0 (learning rates, time steps)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse ``type`` for finite numbers >= 0 (thresholds, where 0 switches a feature off)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text!r}")
    return value


def resolve_device(name: str | None) -> torch.device:
    """``name`` as a torch device; ``None`` means cuda when available, else cpu."""
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"not a device: {name!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available here")
    return device


def add_compute_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--seed", type=seed, default=0, help="seed for every random choice (default: 0)")


def add_executor_options(parser: argparse.ArgumentParser, where: str, jobs: str) -> None:
    """``--executor local|ray``, ``--jobs`` and ``--address`` (a Ray cluster's)."""
    parser.add_argument("--executor", choices=("local", "ray"), default="local", help=f"{where} (default: local)")
    parser.add_argument("--jobs", type=positive_int, default=None, help=jobs)
    parser.add_argument(
        "--address", default=None, help="Ray cluster address, e.g. auto (default: a local Ray instance)"
    )


def add_set_option(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help=f"override a config value, e.g. {example}"
    )


def progress_bars() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


class RichZooProgress(ZooProgress):
    """Zoo-building progress as rich bars, one per stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task = progress, None

    def stage(self, name: str, total: int) -> None:
        self.task = self.progress.add_task(name, total=total)

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def log(self, message: str) -> None:
        self.progress.console.print(message)
