"""Where independent pieces of one job run: in this process, or as tasks on a Ray cluster.

A job (the chunks of experts of a zoo) hands a pool's ``map`` a module-level function, the inputs
every task shares and one input per task; results come back as tasks finish, each with its
position, so the caller can write them as they arrive and a job interrupted half-way keeps what was
done. Tasks must not depend on each other or on where they run: the same inputs give the same
result in this process and on a worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from weightspace.errors import ConfigError, WeightspaceError


def start_ray(jobs: int | None, address: str | None) -> tuple[Any, bool]:
    """The ``ray`` module, connected to the cluster at ``address`` or to a new local instance with
    ``jobs`` CPUs (default 2); and whether this call started it (then the caller shuts it down)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'weightspace[ray]'") from None
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    started = not ray.is_initialized()
    if started:
        options = {"address": address} if address else {"num_cpus": jobs or 2}
        ray.init(**options, include_dashboard=False, log_to_driver=False, configure_logging=False)
    return ray, started


class LocalPool:
    """Tasks one after the other in this process, in order."""

    def map(self, fn: Callable[..., Any], shared: dict[str, Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for i, item in enumerate(items):
            yield i, fn(item, **shared)

    def close(self) -> None:
        pass


class RayPool:
    """Tasks on Ray, one CPU each (and one GPU each when ``gpus``), at most ``jobs`` in flight.

    The shared inputs are put in Ray's object store once. Workers import weightspace and its plugins
    from their own environment, so a cluster's machines need the same installation."""

    def __init__(self, jobs: int | None = None, address: str | None = None, gpus: bool = False) -> None:
        self.ray, self.started = start_ray(jobs, address)
        self.jobs = jobs or int(self.ray.cluster_resources().get("CPU", 1))
        self.gpus = int(gpus)

    def map(self, fn: Callable[..., Any], shared: dict[str, Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        remote = self.ray.remote(num_cpus=1, num_gpus=self.gpus)(_call)
        refs = {name: self.ray.put(value) for name, value in shared.items()}
        pending, position, next_item = [], {}, 0
        while pending or next_item < len(items):
            while next_item < len(items) and len(pending) < self.jobs:
                handle = remote.remote(fn, items[next_item], list(refs), *refs.values())
                position[handle] = next_item
                pending.append(handle)
                next_item += 1
            (done,), pending = self.ray.wait(pending, num_returns=1)
            try:
                result = self.ray.get(done)
            except self.ray.exceptions.RayTaskError as exc:  # a user error in a task stays one line
                if isinstance(exc.cause, WeightspaceError):
                    raise exc.cause from None
                raise
            yield position.pop(done), result

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def _call(fn: Callable[..., Any], item: Any, names: list[str], *values: Any) -> Any:
    # shared inputs travel as top-level task arguments, which Ray resolves from its object store
    return fn(item, **dict(zip(names, values)))
