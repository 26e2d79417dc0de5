"""Progress callbacks that long jobs report to: the CLI draws rich bars, tests count calls.

Kept apart from the jobs themselves so that a front end can implement them without importing
torch and the training code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weightspace.bench import Node


class ZooProgress:
    """Callbacks of :func:`weightspace.zoo.build_zoo` and the stages of a run."""

    def stage(self, name: str, total: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def log(self, message: str) -> None: ...

    def environment_done(self, env_index: int) -> None: ...


class BenchProgress:
    """Callbacks of :func:`weightspace.bench.run_bench`, and of the nodes it runs as they go."""

    def start(self, total: int, done: int) -> None: ...

    def running(self, labels: list[str]) -> None: ...

    def stage(self, node: Node, name: str, total: int) -> None:
        """A running node began a stage of ``total`` steps."""

    def advance(self, node: Node, n: int) -> None:
        """A running node did ``n`` more steps of its stage."""

    def log(self, node: Node, message: str) -> None:
        """A running node's message (e.g. that it simulates a system first)."""

    def finished(self, node: Node, result: dict[str, Any]) -> None: ...


class NodeProgress(ZooProgress):
    """A node's stage progress as events ``(key, "stage", (name, total))``, ``(key, "advance", n)``
    and ``(key, "log", message)`` handed to ``send``: straight to a :class:`BenchProgress`, or
    through a queue from a worker process. Steps are sent at most every ``interval`` seconds, so
    that fast loops do not flood it."""

    def __init__(self, key: str, send: Callable[[tuple[str, str, Any]], None], interval: float = 0.25) -> None:
        self.key, self.send, self.interval = key, send, interval
        self.pending, self.last = 0, 0.0

    def stage(self, name: str, total: int) -> None:
        self._flush()
        self.send((self.key, "stage", (name, total)))

    def log(self, message: str) -> None:
        self.send((self.key, "log", message))

    def advance(self, n: int) -> None:
        self.pending += n
        if time.monotonic() - self.last >= self.interval:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.send((self.key, "advance", self.pending))
        self.pending, self.last = 0, time.monotonic()
