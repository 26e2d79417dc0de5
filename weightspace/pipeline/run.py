"""A trained run, loaded: the zoo, the codec (encoder + normalizer), the generator and the prompter
behind one call, ``run.generate(observed, n_candidates, seed)``, as a diffusers pipeline bundles its
models and scheduler.

A run folder holds ``run.json`` (the config, the folders of its three stages and the cache they were
built in, relative to it); the stages themselves are built by :mod:`weightspace.pipeline.stages`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from weightspace.components import Component, Generator, Prompter
from weightspace.errors import ConfigError, StorageError
from weightspace.graph import GraphNormalizer
from weightspace.pipeline.encoding import WeightCodec
from weightspace.pipeline.generation import EnvironmentScale, Generated, generate_experts
from weightspace.registry import Registry, default_registry
from weightspace.storage import load_tensors, read_json
from weightspace.zoo import Zoo

STAGES = ("zoo", "encoder", "generator")
"""A run's stages in order; each depends on the one before."""


def load_codec(zoo: Zoo, folder: Path, registry: Registry) -> WeightCodec:
    """The encoder and weight normalizer an encoder stage folder holds, over ``zoo``'s architecture."""
    encoder = Component.load(folder / "encoder", registry).eval()
    normalizer = GraphNormalizer.from_state_dict(zoo.spec, load_tensors(folder / "normalizer.safetensors")[0])
    return WeightCodec(encoder, normalizer, zoo.adapter)


def _read_run_index(index: Path) -> dict[str, Any]:
    """``run.json``, checked for what :meth:`Run.load` reads, so that a damaged or hand-edited file
    is named in one line instead of failing as a KeyError deep in loading."""
    meta = read_json(index)
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise StorageError(f"{index} must be a JSON object with a 'config' object")
    stages = meta.get("stages")
    if not isinstance(stages, dict) or not all(isinstance(stages.get(s), str) for s in STAGES):
        raise StorageError(f"{index} must name the folder of each stage ({', '.join(STAGES)}) under 'stages'")
    for key in ("cache", "zoo"):
        if key in meta and not (isinstance(meta[key], str) and meta[key] and not Path(meta[key]).is_absolute()):
            raise StorageError(f"{index}: {key!r} must be a folder path relative to the run folder, got {meta[key]!r}")
    return meta


STAGE_HASH = "[0-9a-f]{12}"
"""What follows ``<stage>-`` in the name of a built stage's folder: its content hash (``RunPlan.stage_key``)."""


def _stage_folders(index: Path, meta: dict[str, Any]) -> dict[str, Path]:
    """Each stage's folder named in ``run.json``, accepted only inside the run folder or its declared
    cache and only under its stage's name (``encoder-<hash>``), or for the zoo stage, exactly the
    zoo declared as given with ``train --zoo``. The paths are data, not trusted: an edited run.json
    must not make weightspace load components from anywhere else. A run.json written before the
    cache was declared has its stages in the folder of its encoder stage (one cache held all built
    stages), so that folder stands in for the cache.

    (:func:`weightspace.storage.confined` joins a path to the folder it must stay in; a stage path
    is relative to the run folder but may have to stay in the cache, so both are resolved here.)"""
    run = index.parent
    cache = meta.get("cache", str(Path(meta["stages"]["encoder"]).parent))
    roots = (_resolved(run, f"{index}: the run folder"), _resolved(run / cache, f"{index}: 'cache'"))
    zoo = _resolved(run / meta["zoo"], f"{index}: 'zoo'") if "zoo" in meta else None
    folders = {}
    for stage in STAGES:
        value, what = meta["stages"][stage], f"{index}: stage {stage!r}"
        target = None if Path(value).is_absolute() else _resolved(run / value, what)
        if target is not None and stage == "zoo" and target == zoo:
            folders[stage] = run / value
            continue
        if target is None or not any(target != root and target.is_relative_to(root) for root in roots):
            raise StorageError(f"{what} = {value!r} must be a relative path inside the run folder or cache {cache!r}")
        if not re.fullmatch(f"{stage}-{STAGE_HASH}", Path(value).name):
            raise StorageError(f"{what} = {value!r} is not a folder of that stage (named {stage}-<hash>)")
        if not target.is_dir():
            raise StorageError(f"{what}: folder {run / value} is missing (was the cache moved or cleaned?)")
        folders[stage] = run / value
    return folders


def _resolved(path: Path, what: str) -> Path:
    """``path`` with its symlinks and ``..`` followed, to compare folders; a loop is ``what``'s error."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise StorageError(f"{what}: {path} cannot be resolved: {exc}") from None


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
    stages: dict[str, Path] | None = None
    """Each stage's folder (``zoo``, ``encoder``, ``generator``)."""

    @classmethod
    def load(cls, path: str | Path, registry: Registry | None = None) -> Run:
        path, registry = Path(path), registry or default_registry()
        index = path / "run.json"
        if not index.is_file():
            raise StorageError(f"{path} is not a trained run: no run.json (run `weightspace train` first)")
        meta = _read_run_index(index)
        stages = _stage_folders(index, meta)
        zoo = Zoo.load(stages["zoo"], registry)
        gen_dir = stages["generator"]
        codec = load_codec(zoo, stages["encoder"], registry)
        generator = Component.load(gen_dir / "generator", registry).eval()
        prompter = Component.load(gen_dir / "prompter", registry).eval()
        env = load_tensors(gen_dir / "environments.safetensors")[0]
        env_scale = EnvironmentScale(env["low"], env["high"])
        method = meta["config"].get("method", "dynadiff")
        return cls(path, zoo, codec, generator, prompter, env_scale, method, stages)

    def summary(self, stage: str) -> dict[str, Any]:
        """What a trained stage recorded: the encoder's training history and held-out reconstruction
        (``history``, ``held_out``), the generator's training history (``history``) and, for stages
        built since validation existed, its validations (``validation``) and the step it kept
        (``kept_step``)."""
        if stage not in ("encoder", "generator"):
            raise ConfigError(f"stage summaries exist for encoder and generator, not {stage!r}")
        return json.loads((self.stages[stage] / "stage.json").read_text())

    @property
    def state_shape(self) -> tuple[int, ...]:
        """The shape of one state of the run's system, as its components were built for (read from
        their context, so that checking frames does not read the dataset)."""
        return tuple(self.prompter.context.state_shape)

    def generate(
        self,
        observed: torch.Tensor,
        n_candidates: int = 16,
        seed: int = 0,
        env_params: torch.Tensor | None = None,
    ) -> Generated:
        """Experts for E environments from their observed frames ``[E, L, *state]`` (raw, as the
        system simulates them): ``n_candidates`` sampled per environment, the one that best
        reproduces the frames kept. No gradient step. ``env_params`` (raw, ``[E, P]``) is read only
        by the oracle prompter; without them it is given raw zeros (an environment it cannot know)."""
        state = self.state_shape
        if observed.dim() != 2 + len(state) or tuple(observed.shape[2:]) != state:
            raise ConfigError(
                f"observed frames must be [E, L, {', '.join(map(str, state))}] for {self.zoo.manifest['system']}; "
                f"got {list(observed.shape)}"
            )
        if not isinstance(n_candidates, int) or n_candidates < 1:
            raise ConfigError(f"n_candidates must be a positive integer, got {n_candidates!r}")
        if env_params is None:
            env_params = torch.zeros(len(observed), len(self.zoo.manifest["param_names"]))
        return generate_experts(
            self.codec,
            self.generator,
            self.prompter,
            observed.float(),
            self.env_scale.normalize(env_params),
            self.zoo.scale,
            self.zoo.dt,
            n_candidates,
            seed=seed,
        )
