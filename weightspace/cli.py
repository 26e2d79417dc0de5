"""The ``weightspace`` command line.

Each subcommand is a thin layer over the Python API: it parses arguments, calls the library and
renders the result as a rich table or as JSON (``--json``). User errors (a bad ``--set`` key, an
unknown plugin, a file that does not fit) are printed as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from weightspace import __version__
from weightspace.config import parse_assignments
from weightspace.errors import ConfigError, WeightspaceError
from weightspace.hookspecs import KINDS
from weightspace.progress import BenchProgress, ZooProgress
from weightspace.registry import default_registry

if TYPE_CHECKING:
    import torch

    from weightspace.bench import Node
    from weightspace.zoo import Zoo

# Each command imports the library it needs when it runs: `--help` and `plugins` start without
# torch, neuraloperator or matplotlib (seconds on 2 cores).

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


def _add_compute_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="seed for every random choice (default: 0)")


def _add_executor_options(parser: argparse.ArgumentParser, where: str, jobs: str) -> None:
    """``--executor local|ray``, ``--jobs`` and ``--address`` (a Ray cluster's)."""
    parser.add_argument("--executor", choices=("local", "ray"), default="local", help=f"{where} (default: local)")
    parser.add_argument("--jobs", type=int, default=None, help=jobs)
    parser.add_argument(
        "--address", default=None, help="Ray cluster address, e.g. auto (default: a local Ray instance)"
    )


def _add_set_option(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help=f"override a config value, e.g. {example}"
    )


def _cmd_plugins(args: argparse.Namespace) -> None:
    registry = default_registry()
    names = {kind: registry.names(kind) for kind in KINDS}  # lists every kind first: a hook that raises is skipped
    broken = [{"entry_point": b.entry_point, "distribution": b.distribution, "error": b.error} for b in registry.broken]
    if args.json:
        print(json.dumps({**names, "broken": broken} if broken else names))
        return
    table = Table(title="weightspace plugins")
    for column in ("kind", "name", "source"):
        table.add_column(column)
    for kind in KINDS:
        entries = registry.entries(kind)
        if not entries:
            table.add_row(kind, "[dim](none)[/dim]", "")
        for name in sorted(entries):
            table.add_row(kind, name, entries[name].source)
    console.print(table)
    if broken:
        skipped = Table(title="broken plugins (skipped; the others work)")
        for column in ("entry point", "distribution", "error"):
            skipped.add_column(column, style="red" if column == "error" else None)
        for b in broken:
            skipped.add_row(b["entry_point"], b["distribution"], b["error"])
        console.print(skipped)


def _cmd_inspect(args: argparse.Namespace) -> None:
    import torch

    from weightspace.diagnostics import architecture_report
    from weightspace.errors import PluginError
    from weightspace.graph import WeightGraph
    from weightspace.storage import load_tensors
    from weightspace.testing import PERMUTATION_RTOL, permutation_violations

    adapter = default_registry().architecture(args.architecture, parse_assignments(args.set))
    device = resolve_device(args.device)
    state_dict = load_tensors(args.weights)[0] if args.weights else None
    report = architecture_report(adapter, seed=args.seed, device=device, state_dict=state_dict)
    # each permutation set on its own, so that a broken symmetry names the set whose layout is wrong
    if state_dict is None:
        params = adapter.init_params(1, args.seed, device)
    else:
        params = WeightGraph.from_state_dict(adapter.spec, state_dict).to(device).to_params()
    x = adapter.example_input(4, torch.Generator().manual_seed(args.seed)).to(device)
    broken = permutation_violations(adapter, params, x, args.seed)
    report["broken_permutations"] = broken
    if args.json:
        print(json.dumps(report))
    else:
        _print_inspect_tables(report)
    if broken:
        sets = ", ".join(f"{name!r} (output changed by {error:.3g})" for name, error in broken.items())
        raise PluginError(
            f"{adapter.name}: permuting hidden-unit set(s) {sets} changes the network's output (tolerance "
            f"{PERMUTATION_RTOL:g} x (max |output| + 1)); the layout misses or misplaces an axis that moves with it"
        )


def _print_inspect_tables(report: dict) -> None:
    summary = Table(title=f"{report['architecture']} ({report['prediction']})", show_header=False)
    summary.add_column("key", style="bold")
    summary.add_column("value")
    summary.add_row("config", json.dumps(report["config"]))
    for key in (
        "n_parameters",
        "n_nodes",
        "roundtrip_max_abs_error",
        "roundtrip_bitwise",
        "permutation_max_abs_error",
        "output_max_abs",
        "device",
        "seed",
    ):
        summary.add_row(key, str(report[key]))
    broken = ", ".join(f"{name} ({error:.3g})" for name, error in report["broken_permutations"].items())
    summary.add_row("broken_permutations", f"[red]{broken}[/red]" if broken else "none")
    groups = Table(title="node groups")
    for column in ("group", "n_nodes", "feat_dim", "permuted by"):
        groups.add_column(column, justify="right" if column in ("n_nodes", "feat_dim") else "left")
    for g in report["node_groups"]:
        groups.add_row(g["name"], str(g["n_nodes"]), str(g["feat_dim"]), g["permutation"] or "[dim]fixed[/dim]")
    console.print(summary)
    console.print(groups)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _cmd_simulate(args: argparse.Namespace) -> None:
    from weightspace.dataset import write_dataset
    from weightspace.plots import plot_dataset_preview
    from weightspace.simulation import build_dataset

    system = default_registry().system(args.system, args.profile, parse_assignments(args.set))
    device = resolve_device(args.device)
    out = Path(args.out)
    h5_path, png_path = out / f"{system.name}-{system.profile}.h5", out / f"{system.name}-{system.profile}.png"
    n_envs = len(system.environments())
    start = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"simulating {system.name} ({system.profile})", total=n_envs)
        dataset = build_dataset(system, args.seed, lambda n: progress.advance(task, n), device)
    sim_seconds = time.perf_counter() - start
    write_dataset(h5_path, dataset)
    plot_dataset_preview(dataset, png_path)
    wall = time.perf_counter() - start

    table = Table(title=f"{system.name} ({system.profile}, seed {args.seed})")
    for column in ("split", "environments", "trajectories", "frames", "shape"):
        table.add_column(column, justify="left" if column in ("split", "shape") else "right")
    for name, split in dataset.splits.items():
        table.add_row(
            name,
            str(len(split.env_index.unique())),
            str(split.trajectories.shape[0]),
            str(split.trajectories.shape[1]),
            str(list(split.trajectories.shape)),
        )
    console.print(table)
    console.print(f"simulated on {device} in {sim_seconds:.1f} s, {wall:.1f} s with writing; dt = {dataset.dt:g}")
    console.print(f"wrote {h5_path} and {png_path}")


class _RichZooProgress(ZooProgress):
    """Zoo-building progress as rich bars, one per stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task = progress, None

    def stage(self, name: str, total: int) -> None:
        self.task = self.progress.add_task(name, total=total)

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def log(self, message: str) -> None:
        self.progress.console.print(message)


SET_SCOPES = ("system", "arch", "zoo")


def _scoped_overrides(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """``--set scope.key=value`` assignments split by scope (system, arch, zoo)."""
    scoped: dict[str, dict[str, str]] = {scope: {} for scope in SET_SCOPES}
    for key, value in parse_assignments(items).items():
        scope, dot, name = key.partition(".")
        if not dot or scope not in scoped:
            raise ConfigError(f"--set {key}=...: prefix the key with one of {', '.join(SET_SCOPES)} (e.g. zoo.size=4)")
        scoped[scope][name] = value
    return scoped


def _cmd_zoo_build(args: argparse.Namespace) -> None:
    from weightspace.parallel import RayPool
    from weightspace.zoo import build_zoo, plan_zoo

    scoped = _scoped_overrides(args.set)
    if args.size is not None:
        scoped["zoo"]["size"] = args.size
    if args.random_init:
        scoped["zoo"]["random_init"] = True
    if args.executor == "local" and (args.jobs is not None or args.address is not None):
        raise ConfigError("--jobs and --address choose Ray workers: add --executor ray")
    registry = default_registry()
    device = resolve_device(args.device)  # of the base, trained here, and of every expert
    plan = plan_zoo(
        registry,
        args.system,
        args.arch,
        args.profile,
        args.seed,
        system_overrides=scoped["system"],
        architecture_overrides=scoped["arch"],
        zoo_overrides=scoped["zoo"],
    )
    start = time.perf_counter()
    pool = RayPool(args.jobs, args.address, gpus=device.type == "cuda") if args.executor == "ray" else None
    try:
        with _progress() as progress:
            zoo = build_zoo(plan, args.out, device, _RichZooProgress(progress), registry, pool)
    finally:
        if pool is not None:
            pool.close()
    console.print(_zoo_table(zoo))
    console.print(f"zoo in {args.out}: built or resumed in {time.perf_counter() - start:.1f} s")


def _zoo_table(zoo: Zoo) -> Table:
    m = zoo.manifest
    table = Table(title=f"zoo: {m['system']} ({m['profile']}) x {m['architecture']}, seed {m['seed']}")
    for column in ("environment", "experts", "dropped", "val loss", "val RMSE", "perturbed layers"):
        table.add_column(column, justify="left" if column in ("environment", "perturbed layers") else "right")

    def mean(values: list) -> str:
        values = [v for v in values if v is not None]
        return f"{sum(values) / len(values):.4g}" if values else "-"

    base = m["base"]
    table.add_row("base (all seen)", "1", "0", mean([base["val_loss"]]), mean([base["val_rmse"]]), "")
    for r in m["environments"]:
        label = ", ".join(f"{k}={v:.3g}" for k, v in r["env_params"].items())
        layers = sorted({e["perturbed_layer"] for e in r["experts"] if e["perturbed_layer"]})
        table.add_row(
            f"{r['env_index']}: {label}",
            str(len(r["experts"])),
            str(len(r["dropped"])),
            mean([e["val_loss"] for e in r["experts"]]),
            mean([e["val_rmse"] for e in r["experts"]]),
            f"{len(layers)} distinct" if layers else "random init",
        )
    return table


def _cmd_zoo_info(args: argparse.Namespace) -> None:
    from weightspace.zoo import Zoo

    zoo = Zoo.load(args.dir)
    if args.json:
        print(json.dumps(zoo.manifest))
        return
    console.print(_zoo_table(zoo))
    m = zoo.manifest
    console.print(
        f"{zoo.n_experts} experts of {zoo.spec.n_params:,} parameters; architecture config "
        f"{json.dumps(m['architecture_config'])}; checksums verified"
    )


def _cmd_train(args: argparse.Namespace) -> None:
    from weightspace.pipeline import RunConfig, train_run

    config = RunConfig.from_toml(args.config)
    start = time.perf_counter()
    with _progress() as progress:
        run = train_run(
            config,
            args.out,
            device=resolve_device(args.device),
            progress=_RichZooProgress(progress),
            cache=args.cache,
            zoo=args.zoo,
        )
    table = Table(title=f"run {args.out} ({config.method}): {config.system} x {config.architecture} ({config.profile})")
    for column in ("stage", "folder", "summary"):
        table.add_column(column)
    folders = {stage: os.path.relpath(folder, run.path) for stage, folder in run.stages.items()}
    table.add_row("zoo", folders["zoo"], f"{run.zoo.n_experts} experts")
    held = run.summary("encoder")["held_out"]
    summary = f"held-out weight MSE {held['weight_mse']:.4g}, function error {held['function_error']:.4g}"
    if "nearest_training_function_error" in held:  # absent from stages built before it was measured
        summary += f" (nearest training expert: {held['nearest_training_function_error']:.4g})"
    table.add_row("encoder", folders["encoder"], summary)
    last = run.summary("generator")["history"][-1]
    table.add_row("generator", folders["generator"], f"generator loss {last['diffusion']:.4g}, aux {last['aux']:.4g}")
    console.print(table)
    console.print(f"trained or resumed in {time.perf_counter() - start:.1f} s")


def _cmd_generate(args: argparse.Namespace) -> None:
    import torch

    from weightspace.adaptation import observed_frames
    from weightspace.generation import save_expert
    from weightspace.pipeline.run import Run
    from weightspace.storage import load_tensors

    run = Run.load(args.run)
    if (args.env is None) == (args.frames is None):
        raise ConfigError("give exactly one of --env INDEX (simulated observation) or --frames FILE.safetensors")
    if args.frames is not None:
        tensors = load_tensors(args.frames)[0]
        if "frames" not in tensors:
            raise ConfigError(f"{args.frames} must hold a tensor named 'frames' shaped [L, *state]")
        observed, env_params, label = tensors["frames"].float()[None], None, args.frames
        source = {}
    else:
        system = run.zoo.system()
        if not 0 <= args.env < len(system.environments()):
            raise ConfigError(f"--env must be in [0, {len(system.environments()) - 1}] for {system.name}")
        index = torch.tensor([args.env])
        observed = observed_frames(system, index, args.length, run.zoo.manifest["seed"])
        env_params, label = system.environments()[index].float(), f"environment {args.env}"
        m = run.zoo.manifest
        source = {"system": m["system"], "profile": m["profile"], "system_settings": m["system_settings"]}
        source |= {"env_index": args.env, "env_params": dict(zip(system.param_names, env_params[0].tolist()))}
    out = run.generate(observed, args.n, seed=args.seed, env_params=env_params)
    record = {"observed": label, "frames": observed.shape[1], "candidates": args.n, "residual": float(out.residual[0])}
    record |= {"method": run.method, "dt": run.zoo.dt, **source}
    save_expert(run.zoo.adapter, {k: v[0] for k, v in out.params.items()}, args.out, record)
    console.print(
        f"generated a {run.zoo.adapter.name} expert for {label} from {observed.shape[1]} frames in "
        f"{1000 * out.seconds:.1f} ms: best of {args.n} candidates (residual {float(out.residual[0]):.4g}, "
        f"{int(out.rejected[0])} rejected); wrote {args.out}/expert.safetensors and config.json"
    )


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from weightspace.evaluation import TEST_SPLITS, evaluate
    from weightspace.method import RUN_METHOD, EvaluationOptions
    from weightspace.pipeline.run import Run
    from weightspace.plots import plot_error_curves, plot_finetune_curves
    from weightspace.registry import default_registry
    from weightspace.report import finetune_reach
    from weightspace.storage import atomic_path
    from weightspace.zoo import Zoo

    if (args.zoo is None) == (args.run is None):
        raise ConfigError("give exactly one of --zoo DIR (methods that need a zoo) or --run DIR (and the run's method)")
    options = EvaluationOptions(
        observed_frames=args.frames,
        candidates=args.candidates,
        finetune_steps=args.finetune_steps,
        finetune_lr=args.finetune_lr,
        finetune_budgets=tuple(args.finetune_budgets),
    )
    run = Run.load(args.run) if args.run else None
    zoo = run.zoo if run else Zoo.load(args.zoo)
    registry = default_registry()
    zoo_only = [name for name in registry.names("methods") if not registry.get("methods", name).needs_run]
    # the run's own label (e.g. dynadiff) names its generated experts
    methods = [RUN_METHOD if run and m == run.method else m for m in args.method or []]
    methods = methods or ([RUN_METHOD] if run else zoo_only)
    with _progress() as progress:
        task = progress.add_task("evaluating", total=len(methods) * len(TEST_SPLITS))

        def log(message: str) -> None:
            progress.update(task, description=message)
            progress.advance(task, 1)

        rows = evaluate(zoo, methods, run=run, options=options, registry=registry, log=log)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(rows, indent=1))
    plot_error_curves(rows, out.with_suffix(".png"))
    written = [out, out.with_suffix(".png")]
    if any("finetune" in r for r in rows):
        written.append(out.with_name(f"{out.stem}-finetune.png"))
        plot_finetune_curves(rows, written[-1])
    table = Table(title=f"{zoo.manifest['system']} x {zoo.manifest['architecture']}: rollouts")
    for column in ("method", "split", "RMSE", "SSIM", "valid horizon", "envs", "traj", "s / env", "NN ratio"):
        table.add_column(column, justify="left" if column in ("method", "split") else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            r["method"],
            r["split"],
            f"{r['rmse_mean']:.4f} ± {r['rmse_std']:.4f}",
            "-" if r["ssim_mean"] is None else f"{r['ssim_mean']:.3f}",
            "-" if r["valid_horizon"] is None else f"{r['valid_horizon']:.1f}",
            str(r["n_envs"]),
            str(r["n_traj"]),
            f"{r['seconds_per_env']:.2f}",
            f"{r['memorization']['ratio_other_env']:.2f}" if "memorization" in r else "-",
        )
    console.print(table)
    if any("memorization" in r for r in rows):
        console.print(
            "NN ratio: median function distance of generated experts to their nearest zoo expert, over that "
            "of zoo experts to the nearest expert of another environment (below 1: close to copies)"
        )
    generated_out = {r["method"]: r for r in rows if r["split"] == "test_out" and "gen_latency_ms" in r}
    for r in rows:
        if "budget_curve" in r:
            points = ", ".join(
                f"{c['steps']} steps {c['rmse']:.4f} in {1000 * c['seconds_per_env']:.0f} ms" for c in r["budget_curve"]
            )
            console.print(f"{r['method']} out of domain by budget (RMSE, time per environment): {points}")
            for method, g in generated_out.items():
                reach = finetune_reach(r["budget_curve"], g["rmse_mean"])
                what = f"after {reach['steps']} steps" if reach["reached"] else f"not within {reach['steps']} steps"
                bound = "" if reach["reached"] else "≥ "
                latency = g["gen_latency_ms"]
                console.print(
                    f"{r['method']} reaches {method}'s out RMSE {g['rmse_mean']:.4f} {what} ({reach['ms']:.0f} ms): "
                    f"{bound}{reach['ms'] / latency:.1f}x its generation latency ({latency:.0f} ms)"
                )
        if "finetune" in r:
            f = r["finetune"]
            reached = ", ".join(f"{k} {v if v is not None else 'never'}" for k, v in f["steps_to_target"].items())
            console.print(f"{r['split']}: steps to the target loss {f['target_loss']:.3g}: {reached}")
    console.print(f"wrote {', '.join(map(str, written))}")


class _RichBenchProgress(BenchProgress):
    """The bench's overall bar naming the nodes running, a bar per running node's stage, and one
    line per finished node."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task, self.stages = progress, None, {}

    def start(self, total: int, done: int) -> None:
        self.task = self.progress.add_task("bench", total=total, completed=done)

    def running(self, labels: list[str]) -> None:
        self.progress.update(self.task, description=f"bench: {'; '.join(labels) or 'idle'}")

    def stage(self, node: Node, name: str, total: int) -> None:
        self._drop(node)
        self.stages[node.key] = self.progress.add_task(f"  {node.label}: {name}", total=total)

    def advance(self, node: Node, n: int) -> None:
        if node.key in self.stages:
            self.progress.advance(self.stages[node.key], n)

    def log(self, node: Node, message: str) -> None:
        self.progress.console.print(f"{node.label}: {message}")

    def finished(self, node: Node, result: dict) -> None:
        self._drop(node)
        self.progress.advance(self.task, 1)
        if "error" in result:
            self.progress.console.print(f"[red]failed[/red] {node.label}: {result['error']}")
        else:
            self.progress.console.print(f"done {node.label} in {result['seconds']:.1f} s")

    def _drop(self, node: Node) -> None:
        if node.key in self.stages:
            self.progress.remove_task(self.stages.pop(node.key))


def _cmd_bench(args: argparse.Namespace) -> None:
    from rich.markdown import Markdown

    from weightspace.bench import LocalExecutor, RayExecutor, plan_bench, run_bench
    from weightspace.matrix import Matrix
    from weightspace.report import methods_table, write_report, write_results

    matrix = Matrix.from_toml(args.matrix)
    out = Path(args.out)
    if args.dry_run:
        plan = plan_bench(matrix)
        table = Table(title=f"{args.matrix}: {len(plan.cells)} cells, {len(plan.nodes)} nodes")
        for column in ("node", "needs", "built"):
            table.add_column(column)
        for node in plan.nodes.values():
            needs = ", ".join(plan.nodes[n].label for n in node.needs)
            table.add_row(node.label, needs, "yes" if plan.is_built(node.key, out) else "no")
        console.print(table)
        return
    start = time.perf_counter()
    with _progress() as progress:
        bench_progress = _RichBenchProgress(progress)
        if args.executor == "ray":  # the device is the workers', not this machine's
            executor = RayExecutor(args.jobs, args.address, args.device or "cpu")
        else:
            executor = LocalExecutor(args.jobs or 1, str(resolve_device(args.device)), bench_progress)
        try:
            outcome = run_bench(matrix, out, executor, bench_progress)
        finally:
            executor.close()
    results = write_results(outcome.plan, out, outcome.failed, str(args.matrix))
    written = write_report(out, results)
    console.print(Markdown(f"**{args.matrix}**: rollout RMSE (mean over seeds)\n\n{methods_table(results)}"))
    console.print(
        f"bench finished in {time.perf_counter() - start:.0f} s ({len(outcome.ran)} nodes built); "
        f"report: {written[0]}; results: {out / 'results.json'}, {out / 'results.csv'}"
    )
    if outcome.failed:
        raise WeightspaceError(
            f"{len(outcome.failed)} node(s) failed; the report lists them and {out / 'logs'} has the tracebacks. "
            "Rerun the same command to retry them (everything built is kept)."
        )


def _cmd_report(args: argparse.Namespace) -> None:
    from rich.markdown import Markdown

    from weightspace.report import load_results, methods_table, write_report

    out = Path(args.dir)
    results = load_results(out)
    written = write_report(out, results)
    console.print(Markdown(f"**{results['matrix']}**: rollout RMSE (mean over seeds)\n\n{methods_table(results)}"))
    console.print(f"wrote {', '.join(map(str, written))}")


def _size(text: str, what: str) -> tuple[int, int]:
    try:
        h, w = (int(n) for n in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"{what} must be given as HxW, e.g. 32x32, got {text!r}") from None
    return h, w


def _cmd_import_gridded(args: argparse.Namespace) -> None:
    from weightspace.gridded_import import GriddedImport, import_gridded

    settings = GriddedImport(
        variables=tuple(v.strip() for v in args.vars.split(",") if v.strip()),
        env_by=args.env_by,
        time_split=args.time_split,
        tile=_size(args.tile, "--tile"),
        n_frames=args.frames,
        stride=args.stride,
        n_seen=args.n_seen,
        seed=args.seed,
        max_missing=args.max_missing,
    )
    summary = import_gridded(args.input, settings, args.out)
    table = Table(title=f"imported {args.input} -> {summary.path}")
    for column in ("environments", "seen", "unseen", "train windows / env", "test windows / env", "dropped"):
        table.add_column(column, justify="right")
    n = summary.n_envs
    table.add_row(
        str(n),
        str(summary.n_seen),
        str(n - summary.n_seen),
        str(summary.n_train),
        str(summary.n_test),
        str(len(summary.dropped)),
    )
    console.print(table)
    for d in summary.dropped:
        console.print(f"dropped environment {d['env_params']}: {d['missing_fraction']:.0%} of its values missing")
    if summary.missing_filled:
        console.print(f"{summary.missing_filled:.2%} of the kept values were missing and set to their channel's mean")
    console.print(f'use it with system = "gridded" and [system_settings] path = "{summary.path}"', markup=False)


def _cmd_distill(args: argparse.Namespace) -> None:
    import torch

    from weightspace.distill import compare_terms, distill_vector_field
    from weightspace.storage import atomic_path, load_tensors

    folder = Path(args.expert)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder} holds no expert: missing config.json (write one with `weightspace generate`)")
    meta = json.loads((folder / "config.json").read_text())
    registry = default_registry()
    adapter = registry.architecture(meta["architecture"], meta["config"])
    params = load_tensors(folder / "expert.safetensors")[0]
    system = registry.system(meta["system"], meta["profile"], meta["system_settings"]) if "system" in meta else None
    n_steps = args.steps or (system.settings.n_frames - 1 if system else 100)
    dt = meta.get("dt", args.dt)
    x0 = adapter.example_input(args.trajectories, torch.Generator().manual_seed(args.seed))
    names = list(system.channel_names) if system else [f"x{i}" for i in range(x0.shape[1])]
    distilled = distill_vector_field(adapter, params, x0, n_steps, dt, names, args.degree, args.threshold)
    result: dict = {"expert": str(folder), **distilled.to_dict()}
    table = Table(title=f"SINDy equations of {folder} (degree {args.degree}, threshold {args.threshold})")
    for column in ("state", "term", "recovered", "true"):
        table.add_column(column, justify="left" if column in ("state", "term") else "right")
    truth = system.polynomial_coefficients(torch.tensor(list(meta["env_params"].values()))) if system else None
    if truth is not None:
        result["environment"] = meta["env_params"]
        result["terms"] = compare_terms(distilled, truth)
    for state, equation in zip(distilled.state_names, distilled.equations):
        console.print(f"d{state}/dt = {equation}")
    for row in result.get("terms", []):
        table.add_row(row["state"], row["term"], f"{row['recovered']:.4f}", f"{row['true']:.4f}")
    if truth is not None:
        console.print(table)
    if args.out:
        with atomic_path(Path(args.out)) as tmp:
            tmp.write_text(json.dumps(result, indent=1))
        console.print(f"wrote {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weightspace", description="Trained network weights as data.")
    parser.add_argument("--version", action="version", version=f"weightspace {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list registered plugins by kind")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {kind: [names]} as JSON, with "broken": [{entry_point, distribution, error}] when some failed',
    )
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser(
        "inspect",
        help="build an architecture and check its weight graph and symmetries (exit 2 naming a broken permutation)",
    )
    p.add_argument("architecture", help="registered architecture name (see `weightspace plugins`)")
    _add_set_option(p, "--set hidden_channels=16 --set n_modes=6,6")
    p.add_argument("--weights", default=None, help="a safetensors state dict to inspect instead of a fresh init")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_compute_options(p)
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("simulate", help="simulate a system's train/test_in/test_out splits to HDF5, with a preview")
    p.add_argument("system", help="registered system name (see `weightspace plugins`)")
    p.add_argument("--profile", default="quick", help="settings profile: quick (CPU) or paper (default: quick)")
    p.add_argument("--out", required=True, help="output folder; writes SYSTEM-PROFILE.h5 and SYSTEM-PROFILE.png")
    _add_set_option(p, "--set n_frames=51 --set resolution=64")
    _add_compute_options(p)
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("zoo", help="build or describe a model zoo")
    zoo_sub = p.add_subparsers(dest="zoo_command", required=True)
    p = zoo_sub.add_parser("build", help="train a domain-adaptive zoo (resumable: rerun to continue)")
    p.add_argument("--system", required=True, help="registered system name")
    p.add_argument("--arch", required=True, help="registered architecture name")
    p.add_argument("--profile", default="quick", help="quick (CPU) or paper (default: quick)")
    p.add_argument("--size", type=int, default=None, help="experts per seen environment (default: the profile's)")
    p.add_argument("--random-init", action="store_true", help="train experts from random init (ablation)")
    p.add_argument("--out", required=True, help="zoo directory")
    _add_set_option(p, "--set arch.hidden_channels=16 --set zoo.expert_steps=100 --set system.n_seen=3")
    _add_compute_options(p)
    _add_executor_options(
        p,
        "where the experts train: this process, or Ray tasks of one chunk of experts each",
        "ray: tasks at once (default: 2 local workers, or the cluster's CPUs)",
    )
    p.set_defaults(func=_cmd_zoo_build)
    p = zoo_sub.add_parser("info", help="summarise a zoo and verify its checksums")
    p.add_argument("dir", help="zoo directory")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=_cmd_zoo_info)

    p = sub.add_parser("train", help="run the stages of a run config (zoo, encoder, generator+prompter), cached")
    p.add_argument("--config", required=True, help="run config TOML (see configs/)")
    p.add_argument("--out", required=True, help="run directory; a rerun resumes and reuses finished stages")
    p.add_argument("--cache", default=None, help="folder of stage folders, shareable between runs (default: --out)")
    p.add_argument(
        "--zoo", default=None, help="a zoo built by `weightspace zoo build` to use as the zoo stage (it must match)"
    )
    _add_compute_options(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("generate", help="generate an expert from observed frames, with no gradient step")
    p.add_argument("--run", required=True, help="a trained run directory")
    p.add_argument("--env", type=int, default=None, help="observe this environment (index in the system's grid)")
    p.add_argument("--frames", default=None, help="or a safetensors file with a tensor 'frames' [L, *state]")
    p.add_argument("--length", type=int, default=4, help="frames observed with --env (default: 4)")
    p.add_argument("--n", type=int, default=16, help="candidates sampled; the best on the frames is kept")
    p.add_argument("--out", required=True, help="folder for expert.safetensors and config.json")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("evaluate", help="roll out experts of adaptation methods on the test splits")
    p.add_argument("--zoo", default=None, help="zoo directory (methods that need only a zoo)")
    p.add_argument("--run", default=None, help="trained run directory (its methods and those of its zoo)")
    p.add_argument(
        "--method",
        action="append",
        help="a registered method (repeatable; `weightspace plugins` lists them) or the run's own label; "
        "default: every method that needs only a zoo with --zoo, the run's generated experts with --run",
    )
    p.add_argument("--frames", type=int, default=4, help="observed frames L (default: 4)")
    p.add_argument("--candidates", type=int, default=16, help="generated candidates per environment (default: 16)")
    p.add_argument("--finetune-steps", type=int, default=100, help="steps of fine-tuning methods (default: 100)")
    p.add_argument("--finetune-lr", type=float, default=None, help="fine-tuning learning rate (default: the zoo's)")
    p.add_argument(
        "--finetune-budgets",
        type=int,
        nargs="+",
        default=(),
        metavar="STEPS",
        help="also score methods that fine-tune on the observed frames out of domain with each of these step "
        "budgets, to see how long fine-tuning takes to reach the generated experts' RMSE (e.g. 10 30 100 1000)",
    )
    p.add_argument("--out", required=True, help="results JSON; a PNG of error curves is written beside it")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("bench", help="run a matrix of systems x methods x ablations x seeds; tables and plots")
    p.add_argument("matrix", help="matrix TOML (see benchmarks/matrices/)")
    p.add_argument("--out", required=True, help="bench folder; a rerun resumes and reuses every finished stage")
    _add_executor_options(
        p, "where nodes run", "nodes at once (default: 1; ray: 2 local workers, or the cluster's CPUs)"
    )
    p.add_argument("--dry-run", action="store_true", help="list the nodes and which are built; run nothing")
    p.add_argument("--device", default=None, help="device of the stages: cpu, cuda (default: cuda when available)")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("report", help="redraw a bench's report.md and plots from its results.json")
    p.add_argument("dir", help="bench folder")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("import", help="turn local data into a dataset the pipeline can use")
    import_sub = p.add_subparsers(dest="importer", required=True)
    p = import_sub.add_parser("gridded", help="gridded fields (NetCDF, zarr) cut into environments and windows")
    p.add_argument("--input", required=True, help="a NetCDF / HDF5 file or a zarr folder (read with xarray)")
    p.add_argument("--vars", required=True, help="variables, comma-separated, e.g. u100,v100")
    p.add_argument(
        "--env-by", default="regions:2x2", help="regions:RxC (lat x lon tiles) or dim:NAME (default: regions:2x2)"
    )
    p.add_argument("--time-split", default="0.5", help="test period start: ISO date or fraction (default: 0.5)")
    p.add_argument("--tile", default="32x32", help="grid each environment is resampled to (default: 32x32)")
    p.add_argument("--frames", type=int, default=24, help="frames per trajectory window (default: 24)")
    p.add_argument("--stride", type=int, default=None, help="frames between windows (default: --frames)")
    p.add_argument("--n-seen", type=int, default=None, help="seen environments (default: a third)")
    p.add_argument("--max-missing", type=float, default=0.2, help="drop environments with more missing values")
    p.add_argument("--seed", type=int, default=0, help="seed of the seen/unseen split (default: 0)")
    p.add_argument("--out", required=True, help="the dataset file to write (.h5)")
    p.set_defaults(func=_cmd_import_gridded)

    p = sub.add_parser("distill", help="fit sparse polynomial equations (SINDy) to a vector-field expert")
    p.add_argument("--expert", required=True, help="an expert folder (from `weightspace generate`)")
    p.add_argument("--degree", type=int, default=2, help="degree of the polynomial library (default: 2)")
    p.add_argument("--threshold", type=float, default=0.05, help="STLSQ sparsity threshold (default: 0.05)")
    p.add_argument("--trajectories", type=int, default=16, help="initial states integrated (default: 16)")
    p.add_argument("--steps", type=int, default=None, help="steps per trajectory (default: the system's horizon)")
    p.add_argument("--dt", type=float, default=0.1, help="step when the expert does not record one (default: 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial states (default: 0)")
    p.add_argument("--out", default=None, help="write the equations and the term comparison as JSON")
    p.set_defaults(func=_cmd_distill)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except WeightspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
