"""What the commands share: the console, option groups, device resolution and progress bars.

Each command imports the library it needs when it runs, so that `--help` and `plugins` start
without torch, neuraloperator or matplotlib (seconds on 2 cores); nothing here imports them.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from weightspace.errors import ConfigError
from weightspace.progress import ZooProgress

if TYPE_CHECKING:
    import torch

# piped output (make, CI logs) gets a wide console instead of rich's 80-column default
console = Console() if sys.stdout.isatty() else Console(width=140)


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
    parser.add_argument("--seed", type=int, default=0, help="seed for every random choice (default: 0)")


def add_executor_options(parser: argparse.ArgumentParser, where: str, jobs: str) -> None:
    """``--executor local|ray``, ``--jobs`` and ``--address`` (a Ray cluster's)."""
    parser.add_argument("--executor", choices=("local", "ray"), default="local", help=f"{where} (default: local)")
    parser.add_argument("--jobs", type=int, default=None, help=jobs)
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
