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
    permutation_sensitivity,
    reconstruction_error,
    split_holdout,
)
from weightspace.errors import ConfigError, StorageError
from weightspace.generation import EnvironmentScale, GeneratorTraining, fit_generator
from weightspace.graph import GraphNormalizer
from weightspace.registry import Registry, default_registry
from weightspace.storage import atomic_path, load_tensors, save_tensors
from weightspace.trajectories import by_environment
from weightspace.zoo import Zoo, ZooProgress, build_zoo, plan_zoo

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
        return cls.from_dict(_read_toml(Path(path), ()), str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "run config") -> RunConfig:
        data = dict(data)
        missing = [k for k in ("system", "architecture") if k not in data]
        if missing:
            raise ConfigError(f"{where} lacks {', '.join(missing)}")
        top = {k: data.pop(k) for k in TOP_LEVEL if k in data}
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)}; sections: {', '.join(SECTIONS)}")
        sections = {s: dict(data.get(s, {})) for s in SECTIONS}
        for kind, default in (("encoder", "graph-vae"), ("generator", "dit-diffusion"), ("prompter", "dynamics")):
            sections[kind].setdefault("name", default)
        return cls(sections=sections, **top)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in TOP_LEVEL}


def _read_toml(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
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
    merged = _read_toml(path.parent / parent, (*chain, path.resolve()))
    for key, value in data.items():
        base = merged.get(key)
        if (
            isinstance(base, dict)
            and isinstance(value, dict)
            and value.get("name", base.get("name")) == base.get("name")
        ):
            value = {**base, **value}
        merged[key] = value
    return merged


def content_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


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
        enc_dir, gen_dir = path / stages["encoder"], path / stages["generator"]
        encoder = Component.load(enc_dir / "encoder", registry).eval()
        normalizer = GraphNormalizer.from_state_dict(zoo.spec, load_tensors(enc_dir / "normalizer.safetensors")[0])
        generator = Component.load(gen_dir / "generator", registry).eval()
        prompter = Component.load(gen_dir / "prompter", registry).eval()
        env = load_tensors(gen_dir / "environments.safetensors")[0]
        codec = WeightCodec(encoder, normalizer, zoo.adapter)
        env_scale = EnvironmentScale(env["low"], env["high"])
        return cls(path, zoo, codec, generator, prompter, env_scale, meta["config"].get("method", "dynadiff"))


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
    out, registry, progress = Path(out), registry or default_registry(), progress or ZooProgress()
    cache = Path(cache) if cache is not None else out
    s = config.sections
    encoder_training = make_config(EncoderTraining, s["encoder_training"], owner="encoder_training")
    generator_training = make_config(GeneratorTraining, s["generator_training"], owner="generator_training")
    resolved = {kind: _resolved(registry, f"{kind}s", s[kind]) for kind in ("encoder", "generator", "prompter")}
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    plan = plan_zoo(
        registry,
        config.system,
        config.architecture,
        config.profile,
        config.seed,
        system_overrides=s["system_settings"],
        architecture_overrides=s["architecture_config"],
        zoo_overrides=s["zoo"],
    )
    zoo_key = content_hash(plan.identity())
    zoo = build_zoo(plan, cache / f"zoo-{zoo_key}", device, progress, registry)

    params, expert_env = zoo.experts()
    seen, seen_params, traj = by_environment(zoo.dataset()["train"])
    probes = traj.flatten(0, 2)
    context = Context(zoo.spec.to_json(), tuple(traj.shape[3:]), seen_params.shape[1])

    enc_key = content_hash(zoo_key, resolved["encoder"], config_to_dict(encoder_training))
    enc_dir = cache / f"encoder-{enc_key}"
    if not (enc_dir / "stage.json").is_file():
        train_idx, held_idx = split_holdout(len(expert_env), encoder_training.holdout, config.seed)
        train_params = {k: v[train_idx] for k, v in params.items()}
        normalizer = fit_normalizer(zoo.adapter, train_params, encoder_training.centre)
        torch.manual_seed(config.seed)
        encoder = _component(registry, "encoders", s["encoder"], context)
        codec = WeightCodec(encoder, normalizer, zoo.adapter)
        progress.stage(f"encoder {s['encoder']['name']}", encoder_training.steps)
        history = fit_encoder(codec, train_params, probes, zoo.scale, encoder_training, config.seed, progress.advance)
        held = {k: v[held_idx] for k, v in params.items()}
        pick = torch.randint(len(probes), (256,), generator=torch.Generator().manual_seed(config.seed))
        report = reconstruction_error(codec, held, probes[pick], zoo.scale)
        report["permuted_10pct_function_change"] = permutation_sensitivity(
            codec, held, probes[pick], zoo.scale, 0.1, config.seed
        )
        encoder.save(enc_dir / "encoder")
        save_tensors(enc_dir / "normalizer.safetensors", normalizer.state_dict())
        _write_json(enc_dir / "stage.json", {"history": history, "held_out": report, "n_held_out": len(held_idx)})
    encoder = Component.load(enc_dir / "encoder", registry).eval()
    normalizer = GraphNormalizer.from_state_dict(zoo.spec, load_tensors(enc_dir / "normalizer.safetensors")[0])
    codec = WeightCodec(encoder, normalizer, zoo.adapter)

    gen_key = content_hash(enc_key, resolved["generator"], resolved["prompter"], config_to_dict(generator_training))
    gen_dir = cache / f"generator-{gen_key}"
    if not (gen_dir / "stage.json").is_file():
        with torch.no_grad():
            latents = codec.encode(params)[0]
            fresh = zoo.adapter.init_params(len(latents), seed=config.seed)
            source = codec.encode(fresh)[0]
        tokens, dim = encoder.latent_shape
        torch.manual_seed(config.seed)
        prompter = _component(registry, "prompters", s["prompter"], context)
        full = Context(context.spec_json, context.state_shape, context.n_env_params, tokens, dim, prompter.dim)
        generator = _component(registry, "generators", s["generator"], full)
        env_scale = EnvironmentScale.fit(seen_params)
        group = torch.searchsorted(seen, expert_env)
        progress.stage(
            f"generator {s['generator']['name']} + prompter {s['prompter']['name']}", generator_training.steps
        )
        history = fit_generator(
            generator,
            prompter,
            latents,
            group,
            traj,
            env_scale.normalize(seen_params),
            zoo.scale,
            generator_training,
            config.seed,
            progress.advance,
            source_latents=source,
        )
        generator.save(gen_dir / "generator")
        prompter.save(gen_dir / "prompter")
        save_tensors(gen_dir / "environments.safetensors", {"low": env_scale.low, "high": env_scale.high})
        _write_json(gen_dir / "stage.json", {"history": history})

    folders = {"zoo": cache / f"zoo-{zoo_key}", "encoder": enc_dir, "generator": gen_dir}
    stages = {stage: os.path.relpath(folder, out) for stage, folder in folders.items()}
    _write_json(out / "run.json", {"config": {**config.to_dict(), **s}, "stages": stages})
    return Run.load(out, registry)
