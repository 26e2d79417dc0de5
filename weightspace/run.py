"""A weight-generation run: a TOML config, its stages cached by content, and the loaded result.

A run config names the system, architecture, profile and seed, the method's label (``method``,
the name its result rows carry; default ``dynadiff``), and the encoder, generator and prompter with
their settings (``configs/*.toml``). A config can extend another (``extends = "base.toml"``, a path
relative to it): its sections are merged into the base's, key by key, except that a section naming
another component replaces the base's section. ``train_run`` runs the stages in order, each in a
folder named by the hash of the config slice it depends on, so a rerun (or another run sharing a
zoo or an encoder, given the same ``cache`` folder) skips what exists and resumes what was
interrupted::

    CACHE/zoo-<hash>/          weightspace zoo (resumable on its own)
    CACHE/encoder-<hash>/      encoder/ (component folder), normalizer.safetensors, stage.json
    CACHE/generator-<hash>/    generator/, prompter/, environments.safetensors, stage.json
    DIR/run.json               the config and the three stage folders (relative to DIR)

``CACHE`` is the run folder ``DIR`` unless given. A stage is done when its ``stage.json`` exists
(written last, atomically).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from weightspace.components import Component, Context, Generator, Prompter
from weightspace.config import config_to_dict, make_config
from weightspace.encoding import (
    EncoderTraining,
    WeightCodec,
    fit_encoder,
    fit_normalizer,
    nearest_function_error,
    permutation_sensitivity,
    reconstruction_error,
    split_holdout,
)
from weightspace.errors import ConfigError, StorageError
from weightspace.generation import EnvironmentScale, GeneratorTraining, fit_generator
from weightspace.graph import GraphNormalizer
from weightspace.registry import Registry, default_registry
from weightspace.storage import load_tensors, save_tensors, write_json
from weightspace.trajectories import by_environment
from weightspace.zoo import Zoo, ZooPlan, ZooProgress, build_zoo, plan_zoo

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTIONS = ("system_settings", "architecture_config", "zoo", "encoder", "encoder_training")
SECTIONS += ("generator", "prompter", "generator_training")
TOP_LEVEL = ("system", "architecture", "profile", "seed", "method")
"""The run config's keys outside any section."""


@dataclass(frozen=True)
class RunConfig:
    system: str
    architecture: str
    profile: str = "quick"
    seed: int = 0
    method: str = "dynadiff"
    """The label of the run's result rows (e.g. ``flat-vae`` for a run with that encoder)."""
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(read_config_toml(Path(path), ()), str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "run config") -> RunConfig:
        data = dict(data)
        missing = [k for k in ("system", "architecture") if k not in data]
        if missing:
            raise ConfigError(f"{where} lacks {', '.join(missing)}")
        top = {k: data.pop(k) for k in TOP_LEVEL if k in data}
        for key, section in (("system", "system_settings"), ("architecture", "architecture_config")):
            if isinstance(top[key], dict):
                raise ConfigError(f"{where}: {key} is the {key}'s name; its settings go in [{section}]")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)}; sections: {', '.join(SECTIONS)}")
        sections = {s: dict(data.get(s, {})) for s in SECTIONS}
        for kind, default in (("encoder", "graph-vae"), ("generator", "dit-diffusion"), ("prompter", "dynamics")):
            sections[kind].setdefault("name", default)
        return dataclasses.replace(make_config(cls, top, owner=where), sections=sections)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in TOP_LEVEL}


def read_config_toml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A run config's TOML with the configs it extends merged in (see the module docstring)."""
    if not path.is_file():
        raise ConfigError(f"no such run config: {path}")
    if path.resolve() in chain:
        raise ConfigError(f"{path} extends itself through {' -> '.join(map(str, chain))}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    parent = data.pop("extends", None)
    if parent is None:
        return data
    return merge_config(read_config_toml(path.parent / parent, (*chain, path.resolve())), data)


def merge_config(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` merged into the config dict ``base``: sections key by key, except that a section
    naming another component replaces the base's section (its options belong to the old component)."""
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and value.get("name", old.get("name")) == old.get("name"):
            value = {**old, **value}
        merged[key] = value
    return merged


def content_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


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
class Run:
    """A trained run: the zoo, the codec (encoder + normalizer), the generator and prompter."""

    path: Path
    zoo: Zoo
    codec: WeightCodec
    generator: Generator
    prompter: Prompter
    env_scale: EnvironmentScale
    method: str = "dynadiff"
    """The label of the run's result rows."""

    @classmethod
    def load(cls, path: str | Path, registry: Registry | None = None) -> Run:
        path, registry = Path(path), registry or default_registry()
        index = path / "run.json"
        if not index.is_file():
            raise StorageError(f"{path} is not a trained run: no run.json (run `weightspace train` first)")
        meta = json.loads(index.read_text())
        stages = meta["stages"]
        zoo = Zoo.load(path / stages["zoo"], registry)
        gen_dir = path / stages["generator"]
        codec = _load_codec(zoo, path / stages["encoder"], registry)
        generator = Component.load(gen_dir / "generator", registry).eval()
        prompter = Component.load(gen_dir / "prompter", registry).eval()
        env = load_tensors(gen_dir / "environments.safetensors")[0]
        env_scale = EnvironmentScale(env["low"], env["high"])
        return cls(path, zoo, codec, generator, prompter, env_scale, meta["config"].get("method", "dynadiff"))


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

    def stage_key(self, stage: str) -> str:
        """``<stage>-<hash>``: the name of the stage's folder in a cache, and its bench node."""
        return f"{stage}-{self.keys[stage]}"

    def folder(self, cache: Path, stage: str) -> Path:
        return cache / self.stage_key(stage)


STAGES = ("zoo", "encoder", "generator")
"""A run's stages in order; each depends on the one before."""


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


def _load_codec(zoo: Zoo, folder: Path, registry: Registry) -> WeightCodec:
    encoder = Component.load(folder / "encoder", registry).eval()
    normalizer = GraphNormalizer.from_state_dict(zoo.spec, load_tensors(folder / "normalizer.safetensors")[0])
    return WeightCodec(encoder, normalizer, zoo.adapter)


def _build_generator(
    plan: RunPlan, data: _ZooData, cache: Path, registry: Registry, progress: ZooProgress, device: torch.device
) -> None:
    config, training, zoo, context = plan.config, plan.generator_training, data.zoo, data.context
    seed = _stage_seed(plan, training)
    s = config.sections
    codec = _load_codec(zoo, plan.folder(cache, "encoder"), registry)
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
    progress.stage(f"generator {s['generator']['name']} + prompter {s['prompter']['name']}", training.steps)
    history = fit_generator(
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
    )
    generator.cpu()
    prompter.cpu()
    folder = plan.folder(cache, "generator")
    generator.save(folder / "generator")
    prompter.save(folder / "prompter")
    save_tensors(folder / "environments.safetensors", {"low": env_scale.low, "high": env_scale.high})
    write_json(folder / "stage.json", {"history": history})


def link_run(plan: RunPlan, out: str | Path, cache: str | Path) -> None:
    """Write ``out/run.json``: the config and its built stage folders, relative to ``out``."""
    out, cache = Path(out), Path(cache)
    out.mkdir(parents=True, exist_ok=True)
    stages = {stage: os.path.relpath(plan.folder(cache, stage), out) for stage in STAGES}
    write_json(out / "run.json", {"config": {**plan.config.to_dict(), **plan.config.sections}, "stages": stages})


def train_run(
    config: RunConfig,
    out: str | Path,
    registry: Registry | None = None,
    device: str | torch.device = "cpu",
    progress: ZooProgress | None = None,
    cache: str | Path | None = None,
) -> Run:
    """Run (or resume) every stage of ``config``, stage folders in ``cache`` (default: ``out``),
    and return the run loaded from ``out``."""
    registry = registry or default_registry()
    cache = Path(cache if cache is not None else out)
    cache.mkdir(parents=True, exist_ok=True)
    plan = plan_run(config, registry)
    for stage in STAGES:
        build_stage(plan, stage, cache, registry, device, progress)
    link_run(plan, out, cache)
    return Run.load(out, registry)
