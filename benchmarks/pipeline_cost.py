"""Where a quick pipeline's time goes, stage by stage, and how cost grows with zoo size and expert width.

``stages``: for each run config, builds every stage in a fresh cache (or resumes one given with
``--cache``, keeping the timings of stages already built) and times simulation, zoo, encoder,
generator, the evaluation of every baseline and of the generated experts, and generation latency;
each as wall time and share of the whole. ``--profile-steps N`` then reruns N steps of the encoder
and of the generator under ``torch.profiler`` and lists their top operators by self CPU time.

``scaling``: on random experts of the mlp-node and FNO quick architectures (timing does not depend
on the weights' values), the encoder's and generator's parameter counts and step times as the
expert's width grows (tokens are the expert's hidden units, so they grow with it), with the
log-log slope of each against width; and the zoo-wide steps (aligning and normalizing the zoo,
encoding it, retrieving the nearest expert by rollout) as the zoo grows from 16 to 512 experts.

    python benchmarks/pipeline_cost.py stages configs/lotka-volterra-quick.toml [...] [--profile-steps 20]
    python benchmarks/pipeline_cost.py scaling [--json out.json]

Run it alone on the machine (benchmarks/README.md: one torch job at a time).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from weightspace.components import Context
from weightspace.data.dataset import write_dataset
from weightspace.data.simulation import build_dataset
from weightspace.data.trajectories import ChannelScale
from weightspace.evaluate.evaluation import evaluate
from weightspace.method import RUN_METHOD
from weightspace.metrics import observation_residual
from weightspace.pipeline.config import RunConfig, merge_config, read_config_toml
from weightspace.pipeline.encoding import EncoderTraining, WeightCodec, fit_encoder, fit_normalizer
from weightspace.pipeline.generation import GeneratorTraining, fit_generator
from weightspace.pipeline.run import Run
from weightspace.pipeline.stages import build_stage, link_run, plan_run
from weightspace.registry import default_registry
from weightspace.storage import write_json
from weightspace.zoo import Zoo

console = Console(width=140)


# -- stages --------------------------------------------------------------------------------------
def _timed(timings: dict[str, float], record: Path, name: str, work: Callable[[], Any]) -> Any:
    """Run ``work`` unless ``name`` was timed before (a resumed cache), recording its wall time."""
    if name in timings:
        return None
    start = time.perf_counter()
    result = work()
    timings[name] = time.perf_counter() - start
    write_json(record, timings)
    return result


def stage_costs(config_path: Path, changes: dict[str, Any], cache: Path, profile_steps: int) -> dict[str, Any]:
    merged = merge_config(read_config_toml(config_path), changes)
    config = RunConfig.from_dict(merged, str(config_path))
    plan = plan_run(config)
    record = cache / f"timings-{plan.keys['generator']}.json"
    timings: dict[str, float] = json.loads(record.read_text()) if record.is_file() else {}
    zoo_dir = plan.folder(cache, "zoo")

    def simulate() -> None:
        write_dataset(zoo_dir / "dataset.h5", build_dataset(plan.zoo.system, plan.zoo.seed))

    console.print(f"[bold]{config_path}[/bold]: stages in {cache}")
    _timed(timings, record, "simulate", simulate)
    for stage in ("zoo", "encoder", "generator"):
        _timed(timings, record, stage, lambda stage=stage: build_stage(plan, stage, cache))
        console.print(f"  {stage} built")
    zoo = Zoo.load(zoo_dir)
    latency: list[float] = []
    registry = default_registry()
    for method in (m for m in registry.names("methods") if not registry.get("methods", m).needs_run):
        _timed(timings, record, f"evaluate {method}", lambda method=method: evaluate(zoo, [method]))
    run_dir = cache / f"run-{plan.keys['generator']}"
    link_run(plan, run_dir, cache)

    def generated() -> None:
        run = Run.load(run_dir)
        rows = evaluate(run.zoo, [RUN_METHOD], run=run)
        latency.extend(r["gen_latency_ms"] for r in rows)
        timings["generation latency (ms per environment)"] = statistics.median(latency)

    _timed(timings, record, f"evaluate {config.method}", generated)
    result = {"config": str(config_path), "changes": changes, "seconds": timings}
    if profile_steps:
        result["profile"] = {
            stage: _profile(plan, merged, stage, cache, profile_steps) for stage in ("encoder", "generator")
        }
    return result


def _profile(plan: Any, merged: dict[str, Any], stage: str, cache: Path, steps: int) -> list[dict[str, Any]]:
    """Top operators of ``steps`` training steps of ``stage`` (of run config ``merged``), built afresh
    in a scratch cache beside the finished stages before it."""
    training = "encoder_training" if stage == "encoder" else "generator_training"
    config = RunConfig.from_dict(merge_config(merged, {training: {"steps": steps}}))
    short = plan_run(config)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / short.stage_key("zoo")).symlink_to(plan.folder(cache, "zoo").resolve())
        if stage == "generator":
            (scratch / short.stage_key("encoder")).symlink_to(plan.folder(cache, "encoder").resolve())
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            build_stage(short, stage, scratch)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {
            "op": e.key,
            "share": e.self_cpu_time_total / total,
            "calls": e.count,
            "ms_per_step": e.self_cpu_time_total / 1000 / steps,
        }
        for e in events[:10]
    ]


def print_stages(result: dict[str, Any]) -> None:
    seconds = {k: v for k, v in result["seconds"].items() if not k.startswith("generation latency")}
    total = sum(seconds.values())
    table = Table(title=f"{result['config']} {json.dumps(result['changes']) if result['changes'] else ''}")
    for column in ("stage", "seconds", "share"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for name, value in seconds.items():
        table.add_row(name, f"{value:.1f}", f"{value / total:.0%}")
    table.add_row("[bold]total[/bold]", f"{total:.1f}", "100%")
    latency = result["seconds"].get("generation latency (ms per environment)")
    console.print(table)
    if latency is not None:
        console.print(f"generation latency: {latency:.0f} ms per environment (median)")
    for stage, ops in result.get("profile", {}).items():
        ops_table = Table(title=f"{stage} step: top operators by self CPU time")
        for column in ("operator", "share", "ms / step", "calls"):
            ops_table.add_column(column, justify="left" if column == "operator" else "right")
        for op in ops:
            ops_table.add_row(op["op"][:60], f"{op['share']:.0%}", f"{op['ms_per_step']:.1f}", str(op["calls"]))
        console.print(ops_table)


# -- scaling -------------------------------------------------------------------------------------
# the quick configs' components
ENCODER = ("graph-vae", {"width": 64, "latent_dim": 8, "depth": 2, "heads": 4})
GENERATOR = ("dit-diffusion", {"hidden": 64, "depth": 3, "heads": 4})
PROMPTER = ("dynamics", {})
WIDTHS = {
    "mlp-node": ("lotka-volterra", "hidden_width", (16, 32, 64, 128, 256)),
    "fno": ("lambda-omega", "hidden_channels", (8, 16, 32, 64)),
}
ZOO_SIZES = (16, 64, 256, 512)
MEASURED = {
    "expert_params": "expert params",
    "tokens": "tokens",
    "encoder_params": "encoder params",
    "generator_params": "generator params",
    "encoder_ms_per_step": "encoder ms/step",
    "generator_ms_per_step": "generator ms/step",
}
"""What each width is measured for, with its column in the table."""


def _setup(arch: str, width: int | None = None, n_experts: int = 64) -> dict[str, Any]:
    """Random experts, trajectories and components at the quick profile of ``arch``'s system."""
    registry = default_registry()
    system_name, width_key, _ = WIDTHS[arch]
    system = registry.system(system_name, "quick")
    cls = registry.get("architectures", arch)
    overrides = {**cls.profiles["quick"].get("architecture", {}), **cls.data_overrides(system.state_shape())}
    if width is not None:
        overrides[width_key] = width
    adapter = cls.from_overrides(overrides)
    params = adapter.init_params(n_experts, seed=0)
    s = system.settings
    traj = torch.randn(4, 3, s.n_frames, *system.state_shape(), generator=torch.Generator().manual_seed(0))
    scale = ChannelScale.fit(traj, adapter.input_ndim)
    context = Context(adapter.spec.to_json(), system.state_shape(), len(system.param_names))
    return {
        "registry": registry,
        "adapter": adapter,
        "params": params,
        "traj": traj,
        "scale": scale,
        "context": context,
        "dt": s.dt,
    }


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def width_costs(arch: str, width: int, steps: int) -> dict[str, Any]:
    x = _setup(arch, width)
    registry, adapter, params = x["registry"], x["adapter"], x["params"]
    encoder = registry.get("encoders", ENCODER[0]).from_overrides(ENCODER[1], x["context"])
    codec = WeightCodec(encoder, fit_normalizer(adapter, params, "network"), adapter)
    probes = x["traj"].flatten(0, 2)
    training = EncoderTraining(steps=steps, holdout=0.5)
    fit_encoder(codec, params, probes, x["scale"], replace(training, steps=2), 0)  # warm-up
    start = time.perf_counter()
    fit_encoder(codec, params, probes, x["scale"], training, 0)
    encoder_step = (time.perf_counter() - start) / steps
    with torch.no_grad():
        latents = codec.encode(params)[0]
    tokens, dim = encoder.latent_shape
    ctx = x["context"]
    prompter = registry.get("prompters", PROMPTER[0]).from_overrides(PROMPTER[1], ctx)
    full = Context(ctx.spec_json, ctx.state_shape, ctx.n_env_params, tokens, dim, prompter.dim)
    generator = registry.get("generators", GENERATOR[0]).from_overrides(GENERATOR[1], full)
    group = torch.arange(len(latents)) % x["traj"].shape[0]
    env = torch.zeros(x["traj"].shape[0], ctx.n_env_params)
    gen_training = GeneratorTraining(steps=steps)
    fit_generator(generator, prompter, latents, group, x["traj"], env, x["scale"], replace(gen_training, steps=2), 0)
    start = time.perf_counter()
    fit_generator(generator, prompter, latents, group, x["traj"], env, x["scale"], gen_training, 0)
    generator_step = (time.perf_counter() - start) / steps
    return {
        "architecture": arch,
        "width": width,
        "expert_params": adapter.spec.n_params,
        "tokens": tokens,
        "encoder_params": _n_params(encoder),
        "generator_params": _n_params(generator),
        "encoder_ms_per_step": 1000 * encoder_step,
        "generator_ms_per_step": 1000 * generator_step,
    }


def zoo_size_costs(arch: str, n_experts: int) -> dict[str, Any]:
    x = _setup(arch, n_experts=n_experts)
    registry, adapter, params = x["registry"], x["adapter"], x["params"]
    start = time.perf_counter()
    normalizer = fit_normalizer(adapter, params, "network")
    align = time.perf_counter() - start
    encoder = registry.get("encoders", ENCODER[0]).from_overrides(ENCODER[1], x["context"])
    codec = WeightCodec(encoder, normalizer, adapter)
    start = time.perf_counter()
    with torch.no_grad():
        codec.encode(params)
    encode = time.perf_counter() - start
    observed = x["traj"][:1, 0, :4].expand(n_experts, -1, *x["traj"].shape[3:])
    start = time.perf_counter()
    observation_residual(adapter, params, observed, x["scale"], x["dt"])
    retrieve = time.perf_counter() - start
    return {"architecture": arch, "zoo_size": n_experts, "align_s": align, "encode_s": encode, "retrieve_s": retrieve}


def _slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def scaling(steps: int) -> dict[str, Any]:
    widths = [width_costs(arch, w, steps) for arch, (_, _, ws) in WIDTHS.items() for w in ws]
    sizes = [zoo_size_costs(arch, n) for arch in WIDTHS for n in ZOO_SIZES]
    slopes = {}
    for arch in WIDTHS:
        rows = [r for r in widths if r["architecture"] == arch]
        xs = [r["width"] for r in rows]
        slopes[arch] = {key: _slope(xs, [r[key] for r in rows]) for key in MEASURED}
    return {"widths": widths, "slopes": slopes, "zoo_sizes": sizes, "steps_timed": steps}


def print_scaling(result: dict[str, Any]) -> None:
    table = Table(title=f"cost against expert width ({result['steps_timed']} steps timed, batch sizes of the defaults)")
    columns = ("architecture", "width", *MEASURED.values())
    keys = ("architecture", "width", *MEASURED)
    for column in columns:
        table.add_column(column, justify="left" if column == "architecture" else "right")
    for r in result["widths"]:
        table.add_row(
            *(
                f"{r[k]:.1f}" if isinstance(r[k], float) else f"{r[k]:,}" if isinstance(r[k], int) else r[k]
                for k in keys
            )
        )
    for arch, slope in result["slopes"].items():
        table.add_row(f"[bold]{arch} slope[/bold]", "1", *(f"{slope[k]:.2f}" for k in keys[2:]))
    console.print(table)
    sizes = Table(title="zoo-wide steps against zoo size (seconds)")
    for column in ("architecture", "experts", "align + normalize", "encode", "retrieve (residual on 4 frames)"):
        sizes.add_column(column, justify="left" if column == "architecture" else "right")
    for r in result["zoo_sizes"]:
        sizes.add_row(
            r["architecture"],
            str(r["zoo_size"]),
            f"{r['align_s']:.2f}",
            f"{r['encode_s']:.2f}",
            f"{r['retrieve_s']:.2f}",
        )
    console.print(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stages", help="time each stage of run configs")
    p.add_argument("configs", nargs="+", type=Path)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="change every config")
    p.add_argument(
        "--cache", type=Path, default=None, help="stage cache to build in or resume (default: a temporary one)"
    )
    p.add_argument("--profile-steps", type=int, default=0, help="profile this many encoder and generator steps")
    p.add_argument("--json", type=Path, default=None)
    p = sub.add_parser("scaling", help="cost against expert width and zoo size")
    p.add_argument("--steps", type=int, default=10, help="training steps timed per point (default: 10)")
    p.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "scaling":
        result = scaling(args.steps)
        print_scaling(result)
    else:
        changes: dict[str, Any] = {}
        for item in args.set:
            key, _, value = item.partition("=")
            section, _, name = key.partition(".")
            changes = merge_config(changes, {section: {name: json.loads(value)}})
        results = []
        for config in args.configs:
            with nullcontext(args.cache) if args.cache else tempfile.TemporaryDirectory() as cache:
                results.append(stage_costs(config, changes, Path(cache), args.profile_steps))
            print_stages(results[-1])
        result = {"stages": results}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
