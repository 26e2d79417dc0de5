"""Planning and building a run's stages: zoo -> encoder -> generator, each cached by content.

``plan_run`` resolves a run config (:mod:`weightspace.pipeline.config`) and keys each stage by the
hash of the config slice it depends on; ``train_run`` builds the stages in order, each in a folder
named by its key, so a rerun (or another run sharing a zoo or an encoder, given the same ``cache``
folder) skips what exists and resumes what was interrupted::

    CACHE/zoo-<hash>/          weightspace zoo (resumable on its own)
    CACHE/encoder-<hash>/      encoder/ (component folder), normalizer.safetensors, stage.json
    CACHE/generator-<hash>/    generator/, prompter/, environments.safetensors, stage.json
    DIR/run.json               the config, the three stage folders, the cache (and a zoo given with
                               ``zoo=``), all relative to DIR; loading refuses a stage outside them

``CACHE`` is the run folder ``DIR`` unless given. A stage is done when its ``stage.json`` exists
(written last, atomically). A zoo built by ``weightspace zoo build`` can stand in for the zoo stage
(``train_run(..., zoo=DIR)``) when it is the zoo the config describes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from weightspace.components import Component, Context
from weightspace.config import config_to_dict, make_config
from weightspace.data.simulation import observed_frames
from weightspace.data.trajectories import by_environment
from weightspace.errors import ConfigError, StorageError
from weightspace.pipeline.config import RunConfig, content_hash
from weightspace.pipeline.encoding import (
    EncoderTraining,
    WeightCodec,
    fit_encoder,
    fit_normalizer,
    nearest_function_error,
    permutation_sensitivity,
    reconstruction_error,
    split_holdout,
)
from weightspace.pipeline.generation import EnvironmentScale, GeneratorTraining, fit_generator, validation_rmse
from weightspace.pipeline.run import STAGES, Run, load_codec
from weightspace.registry import Registry, default_registry
from weightspace.storage import read_json, save_tensors, write_json
from weightspace.zoo import Zoo, ZooPlan, ZooProgress, build_zoo, plan_zoo


def _component(registry: Registry, kind: str, section: dict[str, Any], context: Context) -> Component:
    options = dict(section)
    cls = registry.get(kind, options.pop("name"))
    return cls.from_overrides(options, context)


def _resolved(registry: Registry, kind: str, section: dict[str, Any]) -> dict[str, Any]:
    """A component section with every default filled in: what a stage's cache key must cover, so
    that a changed default retrains the stage instead of reusing a stale one."""
    options = dict(section)
    name = options.pop("name")
    cls = registry.get(kind, name)
    return {"name": name, **config_to_dict(make_config(cls.Config, options, owner=f"{cls.kind} {name!r}"))}


@dataclass(frozen=True)
class RunPlan:
    """A run config resolved against the registry: its zoo plan, training settings and the content
    key of each stage, known before anything is built (the bench schedules stages by these keys)."""

    config: RunConfig
    zoo: ZooPlan
    encoder_training: EncoderTraining
    generator_training: GeneratorTraining
    keys: dict[str, str]
    """``{"zoo": h, "encoder": h, "generator": h}``; a stage's folder is ``<stage>-<h>``."""
    zoo_folder: Path | None = None
    """A built zoo standing in for the zoo stage (see :func:`use_zoo`); None: ``CACHE/zoo-<h>``."""

    def stage_key(self, stage: str) -> str:
        """``<stage>-<hash>``: the name of the stage's folder in a cache, and its bench node."""
        return f"{stage}-{self.keys[stage]}"

    def folder(self, cache: Path, stage: str) -> Path:
        if stage == "zoo" and self.zoo_folder is not None:
            return self.zoo_folder
        return cache / self.stage_key(stage)


def use_zoo(plan: RunPlan, folder: str | Path) -> RunPlan:
    """``plan`` with the complete zoo in ``folder`` (e.g. from ``weightspace zoo build``) as its zoo
    stage. The zoo must be the one the config describes (same system, profile, settings, architecture
    and seed), since the later stages are keyed by that description."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise StorageError(f"{folder} is not a weightspace zoo: no manifest.json (`weightspace zoo build` makes one)")
    manifest = read_json(manifest_path)
    if not isinstance(manifest, dict) or not manifest.get("complete", False):
        raise StorageError(f"{folder} is not a complete zoo (resume it with `weightspace zoo build` first)")
    identity = plan.zoo.identity()
    changed = sorted(k for k in identity if manifest.get(k) != identity[k])
    if changed:
        detail = "; ".join(f"{k}: zoo {manifest.get(k)!r}, config {identity[k]!r}" for k in changed[:2])
        raise ConfigError(
            f"zoo {folder} is not the zoo of run config {plan.config.method!r} ({', '.join(changed)} differ: {detail})"
        )
    return dataclasses.replace(plan, zoo_folder=folder)


def plan_run(config: RunConfig, registry: Registry | None = None) -> RunPlan:
    """Resolve ``config`` (every default filled in) and key its stages by content."""
    registry = registry or default_registry()
    s = config.sections
    encoder_training = make_config(EncoderTraining, s["encoder_training"], owner="encoder_training")
    generator_training = make_config(GeneratorTraining, s["generator_training"], owner="generator_training")
    resolved = {kind: _resolved(registry, f"{kind}s", s[kind]) for kind in ("encoder", "generator", "prompter")}
    zoo = plan_zoo(
        registry,
        config.system,
        config.architecture,
        config.profile,
        config.seed,
        system_overrides=s["system_settings"],
        architecture_overrides=s["architecture_config"],
        zoo_overrides=s["zoo"],
    )
    zoo_key = content_hash(zoo.identity())
    enc_key = content_hash(zoo_key, resolved["encoder"], _training_identity(encoder_training))
    gen_key = content_hash(enc_key, resolved["generator"], resolved["prompter"], _training_identity(generator_training))
    keys = {"zoo": zoo_key, "encoder": enc_key, "generator": gen_key}
    return RunPlan(config, zoo, encoder_training, generator_training, keys)


def _training_identity(training: EncoderTraining | GeneratorTraining) -> dict[str, Any]:
    """The training settings a stage's key covers. An unset stage seed is left out: the run's seed
    is in the zoo's key already, and stages keyed before the setting existed stay valid."""
    settings = config_to_dict(training)
    if settings["seed"] is None:
        del settings["seed"]
    return settings


def _stage_seed(plan: RunPlan, training: EncoderTraining | GeneratorTraining) -> int:
    return plan.config.seed if training.seed is None else training.seed


@dataclass(frozen=True)
class _ZooData:
    """What the encoder and generator stages read from a built zoo."""

    zoo: Zoo
    params: dict[str, torch.Tensor]
    expert_env: torch.Tensor
    seen: torch.Tensor
    seen_params: torch.Tensor
    traj: torch.Tensor
    context: Context

    @classmethod
    def of(cls, zoo: Zoo) -> _ZooData:
        params, expert_env = zoo.experts()
        seen, seen_params, traj = by_environment(zoo.dataset()["train"])
        context = Context(zoo.spec.to_json(), tuple(traj.shape[3:]), seen_params.shape[1])
        return cls(zoo, params, expert_env, seen, seen_params, traj, context)


def stage_done(plan: RunPlan, stage: str, cache: str | Path) -> bool:
    """Whether ``stage`` of ``plan`` is fully built in ``cache`` (a zoo's manifest says complete;
    the other stages write ``stage.json`` last)."""
    folder = plan.folder(Path(cache), stage)
    if stage != "zoo":
        return (folder / "stage.json").is_file()
    manifest = folder / "manifest.json"
    return manifest.is_file() and json.loads(manifest.read_text()).get("complete", False)


def build_stage(
    plan: RunPlan,
    stage: str,
    cache: str | Path,
    registry: Registry | None = None,
    device: str | torch.device = "cpu",
    progress: ZooProgress | None = None,
) -> Path:
    """Build (or resume) one stage of ``plan`` in ``cache`` and return its folder. The stages before
    it must exist (``train_run`` builds them in order; the bench schedules them as dependencies)."""
    registry, progress, cache = registry or default_registry(), progress or ZooProgress(), Path(cache)
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    folder = plan.folder(cache, stage)
    if stage == "zoo":
        if plan.zoo_folder is None:  # a zoo given with `use_zoo` is complete and not ours to write
            build_zoo(plan.zoo, folder, device, progress, registry)
        return folder
    if stage_done(plan, stage, cache):
        return folder
    for before in STAGES[: STAGES.index(stage)]:
        if not stage_done(plan, before, cache):
            raise StorageError(f"stage {stage} needs {plan.folder(cache, before)}, which is not built")
    data = _ZooData.of(Zoo.load(plan.folder(cache, "zoo"), registry))
    build = _build_encoder if stage == "encoder" else _build_generator
    build(plan, data, cache, registry, progress, torch.device(device))
    return folder


def _build_encoder(
    plan: RunPlan, data: _ZooData, cache: Path, registry: Registry, progress: ZooProgress, device: torch.device
) -> None:
    config, training, zoo = plan.config, plan.encoder_training, data.zoo
    seed = _stage_seed(plan, training)
    section = config.sections["encoder"]
    probes = data.traj.flatten(0, 2)
    train_idx, held_idx = split_holdout(len(data.expert_env), training.holdout, seed)
    train_params = {k: v[train_idx] for k, v in data.params.items()}
    normalizer = fit_normalizer(zoo.adapter, train_params, training.centre)
    torch.manual_seed(seed)
    encoder = _component(registry, "encoders", section, data.context).to(device)
    codec = WeightCodec(encoder, normalizer, zoo.adapter)
    progress.stage(f"encoder {section['name']}", training.steps)
    history = fit_encoder(codec, train_params, probes, zoo.scale, training, seed, progress.advance)
    encoder.cpu()
    held = {k: v[held_idx] for k, v in data.params.items()}
    pick = torch.randint(len(probes), (256,), generator=torch.Generator().manual_seed(seed))
    report = reconstruction_error(codec, held, probes[pick], zoo.scale)
    report["nearest_training_function_error"] = float(
        nearest_function_error(zoo.adapter, held, train_params, probes[pick], zoo.scale).mean()
    )
    report["permuted_10pct_function_change"] = permutation_sensitivity(codec, held, probes[pick], zoo.scale, 0.1, seed)
    folder = plan.folder(cache, "encoder")
    encoder.save(folder / "encoder")
    save_tensors(folder / "normalizer.safetensors", normalizer.state_dict())
    write_json(folder / "stage.json", {"history": history, "held_out": report, "n_held_out": len(held_idx)})


def _build_generator(
    plan: RunPlan, data: _ZooData, cache: Path, registry: Registry, progress: ZooProgress, device: torch.device
) -> None:
    config, training, zoo, context = plan.config, plan.generator_training, data.zoo, data.context
    seed = _stage_seed(plan, training)
    s = config.sections
    codec = load_codec(zoo, plan.folder(cache, "encoder"), registry)
    with torch.no_grad():
        latents = codec.encode(data.params)[0]
        fresh = zoo.adapter.init_params(len(latents), seed=seed)
        source = codec.encode(fresh)[0]
    tokens, dim = codec.encoder.latent_shape
    torch.manual_seed(seed)
    prompter = _component(registry, "prompters", s["prompter"], context)
    full = Context(context.spec_json, context.state_shape, context.n_env_params, tokens, dim, prompter.dim)
    generator = _component(registry, "generators", s["generator"], full)
    env_scale = EnvironmentScale.fit(data.seen_params)
    group = torch.searchsorted(data.seen, data.expert_env)
    generator.to(device)
    prompter.to(device)
    validate = None
    if training.validate_every:
        system = zoo.system()
        val_index, val_params, val_traj = by_environment(zoo.dataset()["val_out"])
        length = min(training.val_observed_frames, system.settings.n_frames)
        observed = observed_frames(system, val_index, length, zoo.manifest["seed"])
        validate = validation_rmse(
            codec,
            observed,
            env_scale.normalize(val_params),
            val_traj,
            zoo.scale,
            zoo.dt,
            training.val_candidates,
            seed,
        )
    progress.stage(f"generator {s['generator']['name']} + prompter {s['prompter']['name']}", training.steps)
    fit = fit_generator(
        generator,
        prompter,
        latents,
        group,
        data.traj,
        env_scale.normalize(data.seen_params),
        zoo.scale,
        training,
        seed,
        progress.advance,
        source_latents=source,
        validate=validate,
    )
    generator.cpu()
    prompter.cpu()
    folder = plan.folder(cache, "generator")
    generator.save(folder / "generator")
    prompter.save(folder / "prompter")
    save_tensors(folder / "environments.safetensors", {"low": env_scale.low, "high": env_scale.high})
    write_json(
        folder / "stage.json", {"history": fit.history, "validation": fit.validation, "kept_step": fit.kept_step}
    )


def link_run(plan: RunPlan, out: str | Path, cache: str | Path) -> None:
    """Write ``out/run.json``: the config, its built stage folders, the cache holding them and the
    zoo given with :func:`use_zoo` (if any), all relative to ``out``. :meth:`Run.load` accepts a
    stage folder only inside the run folder or that cache, or the given zoo, so the declared
    folders are recorded beside the stages."""
    out, cache = Path(out), Path(cache)
    out.mkdir(parents=True, exist_ok=True)
    stages = {stage: os.path.relpath(plan.folder(cache, stage), out) for stage in STAGES}
    config = {**plan.config.to_dict(), **plan.config.sections}
    meta = {"config": config, "stages": stages, "cache": os.path.relpath(cache, out)}
    if plan.zoo_folder is not None:
        meta["zoo"] = os.path.relpath(plan.zoo_folder, out)
    write_json(out / "run.json", meta)


def train_run(
    config: RunConfig,
    out: str | Path,
    registry: Registry | None = None,
    device: str | torch.device = "cpu",
    progress: ZooProgress | None = None,
    cache: str | Path | None = None,
    zoo: str | Path | None = None,
) -> Run:
    """Run (or resume) every stage of ``config``, stage folders in ``cache`` (default: ``out``),
    and return the run loaded from ``out``. With ``zoo``, that built zoo is the zoo stage
    (:func:`use_zoo`)."""
    registry = registry or default_registry()
    cache = Path(cache if cache is not None else out)
    plan = plan_run(config, registry)
    if zoo is not None:
        plan = use_zoo(plan, zoo)
    cache.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        build_stage(plan, stage, cache, registry, device, progress)
    link_run(plan, out, cache)
    return Run.load(out, registry)
