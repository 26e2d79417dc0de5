"""Run a bench matrix: its cells become a graph of content-addressed stages, built where missing.

Every cell (:mod:`weightspace.bench.matrix`) needs the stages of its run config (zoo -> encoder ->
generator, keyed by :func:`weightspace.pipeline.stages.plan_run`) and one evaluation. Cells that share a stage
share its node, so methods with one zoo build it once and a sweep point equal to a main cell is
evaluated once. Nodes run on an executor as soon as their dependencies are done::

    OUT/cache/<stage>-<hash>/     stages (the same folders `weightspace train --cache` writes)
    OUT/cache/run-<evaluate-hash> the run an evaluation loads (run.json pointing at its stages)
    OUT/cells/<evaluate-hash>.json result rows of one evaluation (written atomically)
    OUT/timings/<node>.json       seconds each node took when it was built
    OUT/logs/<node>.log           the traceback of a failed node
    OUT/runs/<cell id>/run.json   each cell's trained run (for `weightspace generate --run`)

A rerun skips every node whose output exists, so an interrupted bench resumes where it stopped. A
node that fails is reported with its error; the nodes that need it are skipped, the rest go on.
One bench writes to a folder at a time: two benches (or `train --cache`) building the same stage
folder at once would overwrite each other's files (`weightspace bench` locks its folder). An
interrupted bench (Ctrl-C) stops its running nodes; pool workers also end when the bench process is
killed, so nothing goes on writing into the folder behind a rerun's back.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any, Protocol

import torch

from weightspace.bench.matrix import BASELINES_LABEL, Cell, Matrix
from weightspace.errors import ConfigError
from weightspace.method import EvaluationOptions
from weightspace.parallel import start_ray
from weightspace.pipeline.config import RunConfig, content_hash
from weightspace.pipeline.run import STAGES
from weightspace.pipeline.stages import RunPlan, build_stage, link_run, plan_run, stage_done
from weightspace.progress import BenchProgress, NodeProgress, ZooProgress
from weightspace.registry import default_registry
from weightspace.storage import write_json


@dataclass(frozen=True)
class Node:
    """One unit of work: a stage of a run config, or an evaluation. ``task`` is JSON-able, so a
    node runs in another process or on another machine (:func:`execute`)."""

    key: str
    label: str
    needs: tuple[str, ...]
    task: dict[str, Any]


@dataclass(frozen=True)
class BenchPlan:
    cells: list[Cell]
    nodes: dict[str, Node]
    """Keyed by node key, in dependency order."""
    evaluation: dict[str, str]
    """cell id -> the key of the node that evaluates it."""
    runs: dict[str, RunPlan]
    """cell id -> its run plan (stage keys, for run folders)."""
    main_method: str
    """The matrix's first method: the one its ablations and sweeps change."""
    stage_plans: dict[str, RunPlan]
    """stage node key -> a run plan holding that stage (to see whether it is built)."""

    def is_built(self, key: str, out: Path) -> bool:
        """Whether node ``key``'s output exists in bench folder ``out``."""
        if key.startswith("evaluate-"):
            return (out / "cells" / f"{key}.json").is_file()
        return stage_done(self.stage_plans[key], self.nodes[key].task["kind"], out / "cache")


def _evaluation_spec(cell: Cell, matrix: Matrix) -> dict[str, Any]:
    """What one evaluation node computes: the methods (the matrix's baselines, or the method that
    evaluates the cell's run), the cell's label, and the evaluation options those methods read
    (so that a change to an option another method reads does not re-run this one). L and the
    candidates are the cell's own (its method entry's where it sets them, else the matrix's)."""
    names = list(matrix.baselines) if cell.evaluate == BASELINES_LABEL else [cell.evaluate]
    options = EvaluationOptions(
        observed_frames=cell.observed_frames,
        candidates=cell.candidates,
        finetune_steps=matrix.finetune_steps,
        finetune_budgets=matrix.finetune_budgets,
    )
    registry = default_registry()
    read = sorted({option for name in names for option in registry.get("methods", name).options})
    spec = {"methods": names, "method": cell.method, "options": options.select(tuple(read))}
    if not cell.settings:
        return spec
    return {**spec, "settings": cell.settings if cell.evaluate == BASELINES_LABEL else {cell.evaluate: cell.settings}}


def _needs_run(cell: Cell) -> bool:
    return cell.evaluate != BASELINES_LABEL


def _stages(cell: Cell) -> tuple[str, ...]:
    return STAGES if _needs_run(cell) else STAGES[:1]


def plan_bench(matrix: Matrix) -> BenchPlan:
    """The cells of ``matrix`` and the graph of nodes they need (checks every run config first)."""
    cells = matrix.expand()
    nodes: dict[str, Node] = {}
    evaluation, runs, stage_plans = {}, {}, {}
    for cell in cells:
        plan = runs[cell.id] = plan_run(cell.run_config())
        keys = tuple(plan.stage_key(stage) for stage in _stages(cell))
        for i, (stage, key) in enumerate(zip(_stages(cell), keys)):  # labelled by the first cell needing it
            stage_plans.setdefault(key, plan)
            nodes.setdefault(
                key, Node(key, f"{stage} for {cell.id}", keys[i - 1 : i], {"kind": stage, "config": cell.config})
            )
        spec = _evaluation_spec(cell, matrix)
        key = f"evaluate-{content_hash(keys, spec)}"
        task = {"kind": "evaluate", "config": cell.config, "spec": spec}
        nodes.setdefault(key, Node(key, f"evaluate {cell.id}", keys, task))
        evaluation[cell.id] = key
    return BenchPlan(cells, nodes, evaluation, runs, matrix.methods[0].label, stage_plans)


def execute(
    node: Node, out: str, threads: int, device: str = "cpu", progress: ZooProgress | None = None
) -> dict[str, Any]:
    """Build one node in ``out``; never raises (a failure comes back as ``{"error": ...}`` and its
    traceback goes to ``out/logs/<node>.log``), so one bad cell does not stop the others."""
    out_path = Path(out)
    torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        config = RunConfig.from_dict(node.task["config"], node.label)
        plan = plan_run(config)
        if node.task["kind"] == "evaluate":
            rows = _evaluate(plan, node.task["spec"], out_path / "cache", out_path / "cache" / f"run-{node.key}")
            write_json(out_path / "cells" / f"{node.key}.json", rows)
        else:
            build_stage(plan, node.task["kind"], out_path / "cache", device=device, progress=progress)
    except Exception as exc:  # reported per node; KeyboardInterrupt still stops the bench
        log = out_path / "logs" / f"{node.key}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(traceback.format_exc())
        return {"key": node.key, "error": f"{type(exc).__name__}: {exc}"}
    seconds = time.perf_counter() - start
    write_json(out_path / "timings" / f"{node.key}.json", {"label": node.label, "seconds": seconds})
    return {"key": node.key, "seconds": seconds}


def _evaluate(plan: RunPlan, spec: dict[str, Any], cache: Path, run_dir: Path) -> list[dict[str, Any]]:
    # imported here: evaluation loads the runs and methods, which the planner does not need
    from weightspace.evaluate.evaluation import evaluate
    from weightspace.pipeline.run import Run
    from weightspace.zoo import Zoo

    options, settings = EvaluationOptions(**spec["options"]), spec.get("settings", {})
    registry = default_registry()
    if not any(registry.get("methods", name).needs_run for name in spec["methods"]):
        return evaluate(Zoo.load(plan.folder(cache, "zoo")), spec["methods"], options=options, settings=settings)
    link_run(plan, run_dir, cache)
    run = Run.load(run_dir)
    rows = evaluate(run.zoo, spec["methods"], run=run, options=options, settings=settings)
    held_out = run.summary("encoder")["held_out"]
    return [{**row, "encoder_held_out": held_out} for row in rows]


def die_with_parent(parent: int) -> None:
    """Initializer of the bench's worker processes: on Linux, SIGTERM them when process ``parent``
    (the bench) dies, even by SIGKILL, instead of leaving them training into a folder nobody
    holds. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1  # from <linux/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


class Executor(Protocol):
    """Where nodes run. ``submit`` returns a handle; ``wait`` blocks until at least one of the given
    handles is finished and returns the finished ones; ``result`` gives a finished node's result."""

    jobs: int
    """How many nodes run at once."""

    def submit(self, node: Node, out: str) -> Any: ...

    def wait(self, handles: Sequence[Any]) -> list[Any]: ...

    def result(self, handle: Any) -> dict[str, Any]: ...

    def cancel(self) -> None:
        """Stop every submitted node that has not finished (the bench was interrupted)."""

    def close(self) -> None: ...


class LocalExecutor:
    """Nodes on this machine: in this process for ``jobs = 1``, else in a pool of ``jobs`` processes
    sharing the cores. Either way each running node's stage progress reaches ``progress`` as it goes
    (from the pool through a queue, read while waiting)."""

    def __init__(self, jobs: int = 1, device: str = "cpu", progress: BenchProgress | None = None) -> None:
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        self.jobs, self.device, self.progress = jobs, device, progress or BenchProgress()
        self.threads = torch.get_num_threads() if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)
        self.nodes: dict[str, Node] = {}
        self.manager = SyncManager(ctx=get_context("spawn")) if jobs > 1 else None
        if self.manager is not None:
            self.manager.start(die_with_parent, (os.getpid(),))
        self.events = self.manager.Queue() if self.manager is not None else None
        self.pool = self._pool() if jobs > 1 else None

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.jobs, mp_context=get_context("spawn"), initializer=die_with_parent, initargs=(os.getpid(),)
        )

    def submit(self, node: Node, out: str) -> Future:
        self.nodes[node.key] = node
        if self.pool is not None:
            return self.pool.submit(
                execute, node, out, self.threads, self.device, NodeProgress(node.key, self.events.put)
            )
        future: Future = Future()
        future.set_result(execute(node, out, self.threads, self.device, NodeProgress(node.key, self._deliver)))
        return future

    def _deliver(self, event: tuple[str, str, Any]) -> None:
        key, kind, value = event
        if kind == "stage":
            self.progress.stage(self.nodes[key], *value)
        elif kind == "log":
            self.progress.log(self.nodes[key], value)
        else:
            self.progress.advance(self.nodes[key], value)

    def wait(self, handles: Sequence[Future]) -> list[Future]:
        while True:
            done = wait(handles, timeout=0.2, return_when=FIRST_COMPLETED).done
            while self.events is not None and not self.events.empty():
                self._deliver(self.events.get())
            if done:
                return list(done)

    def result(self, handle: Future) -> dict[str, Any]:
        try:
            return handle.result()
        except BrokenProcessPool:  # a worker died (out of memory, killed): start a fresh pool
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._pool()
            raise

    def cancel(self) -> None:
        if self.pool is None:  # nodes run in this process: the interrupt already stopped them
            return
        # the pool has no public way to stop running work: terminate its workers (Python 3.14's
        # terminate_workers does the same); a stage is complete only once its last file is written
        for process in list(self.pool._processes.values()):
            process.terminate()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.manager.shutdown()


class RayExecutor:
    """Nodes as Ray tasks of one CPU each (stages get one GPU each when ``device`` is cuda): on the
    cluster at ``address`` (as many at once as it has CPUs, unless ``jobs`` says), or on a local Ray
    instance with ``jobs`` workers. Workers import weightspace and its plugins from their own
    environment, so a cluster's nodes need the same installation, and the bench folder must be on a
    file system they all see."""

    def __init__(self, jobs: int | None = None, address: str | None = None, device: str = "cpu") -> None:
        self.ray, self.started = start_ray(jobs, address)
        self.device = device
        self.jobs = jobs or int(self.ray.cluster_resources().get("CPU", 1))
        self.remote = self.ray.remote(num_cpus=1)(execute)
        self.submitted: list[Any] = []

    def submit(self, node: Node, out: str) -> Any:
        gpus = int(self.device.startswith("cuda") and node.task["kind"] != "evaluate")
        handle = self.remote.options(num_gpus=gpus).remote(node, out, 1, self.device)
        self.submitted.append(handle)
        return handle

    def wait(self, handles: Sequence[Any]) -> list[Any]:
        return self.ray.wait(list(handles), num_returns=1)[0]

    def result(self, handle: Any) -> dict[str, Any]:
        self.submitted.remove(handle)
        return self.ray.get(handle)

    def cancel(self) -> None:
        for handle in self.submitted:  # on a cluster they would otherwise run on after the bench
            self.ray.cancel(handle, force=True)
        self.submitted.clear()

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


@dataclass
class BenchOutcome:
    plan: BenchPlan
    ran: list[dict[str, Any]]
    """Results of the nodes built in this call (``seconds`` or ``error``)."""
    failed: dict[str, str]
    """node key -> error, including nodes skipped because a dependency failed."""


def run_bench(
    matrix: Matrix, out: str | Path, executor: Executor, progress: BenchProgress | None = None
) -> BenchOutcome:
    """Build every missing node of ``matrix`` in ``out`` on ``executor``, dependencies first."""
    out, progress = Path(out), progress or BenchProgress()
    plan = plan_bench(matrix)
    done = {key for key in plan.nodes if plan.is_built(key, out)}
    pending = [key for key in plan.nodes if key not in done]
    failed: dict[str, str] = {}
    running: dict[Any, str] = {}
    ran = []
    progress.start(len(plan.nodes), len(done))

    def labels() -> list[str]:
        return [plan.nodes[k].label for k in running.values()]

    try:
        while pending or running:
            for key in list(pending):
                node = plan.nodes[key]
                broken = [n for n in node.needs if n in failed]
                if broken:
                    failed[key] = f"skipped: {plan.nodes[broken[0]].label} failed"
                    pending.remove(key)
                    progress.finished(node, {"key": key, "error": failed[key]})
                elif all(n in done for n in node.needs) and len(running) < executor.jobs:
                    pending.remove(key)
                    running[executor.submit(node, str(out))] = key
                    progress.running(labels())
            if not running:
                continue
            for handle in executor.wait(list(running)):
                key = running.pop(handle)
                try:
                    result = executor.result(handle)
                except Exception as exc:  # the executor lost the node (a worker died): report it, go on
                    result = {"key": key, "error": f"{type(exc).__name__}: {exc}"}
                ran.append(result)
                if "error" in result:
                    failed[key] = result["error"]
                else:
                    done.add(key)
                progress.finished(plan.nodes[key], result)
            progress.running(labels())
    except KeyboardInterrupt:  # stop the running nodes; finished ones are kept for the rerun
        executor.cancel()
        raise
    for cell in plan.cells:  # each trained cell gets a run folder users can generate from
        run = plan.runs[cell.id]
        if _needs_run(cell) and all(run.stage_key(stage) in done for stage in STAGES):
            link_run(run, out / "runs" / cell.id, out / "cache")
    return BenchOutcome(plan, ran, failed)
