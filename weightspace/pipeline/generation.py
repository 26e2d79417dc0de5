"""Train a generator with its prompter on a zoo's latents, and generate experts from observed frames.

Training pairs every zoo expert's latent (the encoder's mean) with L consecutive frames of a
training trajectory of the expert's environment, L drawn at random in [1, L_max] per step so that
any observation length works at test time. The prompter (condition) and the generator (denoising
objective) are trained jointly, plus ``aux_weight`` times the prompter's regression of the
environment parameters. An exponential moving average of both is kept and is what gets saved: the
last one, or, when training validates (``validate_every``), the one whose generated experts rolled
out best on the validation environments (:func:`validation_rmse`), never a test environment. The
denoising loss says how well latents are modelled, not how well the experts decoded from them
predict; the validation rollout measures what the run is for.

Adaptation is gradient-free: prompt, sample N candidate latents, decode them to parameters, and keep
the candidate whose rollout best reproduces the observed frames (one-step operators predict frame
t+1 from frame t; vector fields integrate from the first frame); non-finite candidates are rejected.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from weightspace.architecture import ArchitectureAdapter
from weightspace.components import Generator, Prompter
from weightspace.config import MAX_COUNT, config_to_dict, require_at_most, require_positive
from weightspace.data.trajectories import ChannelScale
from weightspace.errors import ConfigError, WeightError
from weightspace.graph import Params, check_params
from weightspace.metrics import observation_residual, rollout_experts
from weightspace.pipeline.encoding import WeightCodec
from weightspace.storage import atomic_path, load_tensors, read_json, save_tensors


@dataclass(frozen=True)
class GeneratorTraining:
    steps: int = 3000
    lr: float = 3e-4
    batch_size: int = 32
    max_frames: int = 8
    """L_max: observation lengths are drawn from [1, max_frames] during training."""
    aux_weight: float = 0.1
    ema: float = 0.995
    seed: int | None = None
    """Seeds this stage alone (initialization, batches, noise), for a seed study of the generator
    over one zoo and encoder; default: the run's seed."""
    validate_every: int = 0
    """Steps between validations of the EMA weights on the validation environments (and at the
    last step); the best validated weights are kept. 0: no validation, the last weights are kept."""
    patience: int = 0
    """Validations without improvement after which training stops early (0: never)."""
    val_observed_frames: int = 4
    """L of the validation: observed frames per validation environment (as the evaluation's L)."""
    val_candidates: int = 16
    """Candidates per validation environment (as the evaluation's; 1 when L = 1)."""

    def __post_init__(self) -> None:
        require_positive(self, "steps", "lr", "batch_size", "max_frames", "ema", "val_observed_frames")
        require_positive(self, "val_candidates")
        require_at_most(self, MAX_COUNT, "steps", "batch_size", "max_frames", "val_candidates")
        if self.aux_weight < 0 or self.ema >= 1:
            raise ValueError("aux_weight must be >= 0 and ema < 1")
        if self.validate_every < 0 or self.patience < 0:
            raise ValueError("validate_every and patience must be >= 0 (0: off)")
        if self.patience and not self.validate_every:
            raise ValueError("patience counts validations: set validate_every too")


@dataclass(frozen=True)
class EnvironmentScale:
    """Min-max normalization of environment parameters to [-1, 1] over the seen environments."""

    low: torch.Tensor
    high: torch.Tensor

    @classmethod
    def fit(cls, env_params: torch.Tensor) -> EnvironmentScale:
        low, high = env_params.amin(dim=0), env_params.amax(dim=0)
        return cls(low, torch.where(high > low, high, low + 1))

    def normalize(self, env_params: torch.Tensor) -> torch.Tensor:
        return 2 * (env_params - self.low) / (self.high - self.low) - 1


@dataclass(frozen=True)
class GeneratorFit:
    """What :func:`fit_generator` records."""

    history: list[dict[str, float]]
    """Mean denoising and auxiliary losses every 50 steps (``step``, ``diffusion``, ``aux``)."""
    validation: list[dict[str, float]]
    """``step`` and ``val_rmse`` of every validation (empty without one)."""
    kept_step: int
    """The step whose EMA weights were kept: the best validated one, else the last trained."""


def fit_generator(
    generator: Generator,
    prompter: Prompter,
    latents: torch.Tensor,
    expert_group: torch.Tensor,
    trajectories: torch.Tensor,
    env_params: torch.Tensor,
    scale: ChannelScale,
    training: GeneratorTraining,
    seed: int,
    advance: Callable[[int], None] | None = None,
    source_latents: torch.Tensor | None = None,
    validate: Callable[[Generator, Prompter], float] | None = None,
) -> GeneratorFit:
    """Train ``generator`` and ``prompter`` jointly; on return both hold their EMA weights (with
    ``validate`` and ``training.validate_every``, the EMA weights that ``validate`` scored lowest).

    ``latents`` ``[N, tokens, z]`` of N experts; ``expert_group[i]`` indexes the environment of expert i
    into ``trajectories`` ``[G, n, T, *state]`` (raw) and ``env_params`` ``[G, P]`` (normalized).
    ``source_latents`` are latents of freshly initialized networks (:meth:`Generator.fit_source`).
    After training the generator sees every expert with the condition of the first ``max_frames``
    frames of its environment's first trajectory (:meth:`Generator.fit_memory`).

    Training runs on the generator's device (move both modules first); the data follow it, while
    every random draw comes from a CPU generator, so a seed gives the same batches on any device.
    Returns the mean losses every 50 steps and the validation scores."""
    rng = torch.Generator().manual_seed(seed)
    device = generator.device
    latents, trajectories, env_params = (t.to(device) for t in (latents, trajectories, env_params))
    if source_latents is not None:
        source_latents = source_latents.to(device)
    n_traj, n_frames = trajectories.shape[1], trajectories.shape[2]
    max_frames = min(training.max_frames, n_frames)
    normalized = scale.normalize(trajectories)
    modules = torch.nn.ModuleDict({"generator": generator, "prompter": prompter})
    ema = copy.deepcopy(modules).requires_grad_(False)
    optimizer = torch.optim.AdamW(modules.parameters(), lr=training.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, training.steps, eta_min=0.1 * training.lr)
    for target in (modules, ema):
        target["generator"].fit_scale(latents)
        if source_latents is not None:
            target["generator"].fit_source(source_latents)
        target["prompter"].fit_scale(normalized)
    history, totals = [], torch.zeros(2)
    with torch.no_grad():
        first_frames = normalized[:, 0, :max_frames]

    def remember(target: torch.nn.ModuleDict) -> None:
        with torch.no_grad():
            condition = target["prompter"](first_frames, env_params)[expert_group]
        target["generator"].fit_memory(latents, condition, expert_group)

    validating = validate is not None and training.validate_every > 0
    validation: list[dict[str, float]] = []
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    best_step = stale = 0
    modules.train()
    for step in range(1, training.steps + 1):
        idx = torch.randint(len(latents), (training.batch_size,), generator=rng)
        group = expert_group[idx]
        length = int(torch.randint(1, max_frames + 1, (1,), generator=rng))
        traj = torch.randint(n_traj, (len(idx),), generator=rng)
        start = torch.randint(n_frames - length + 1, (len(idx),), generator=rng)
        frames = normalized[group[:, None], traj[:, None], start[:, None] + torch.arange(length)]
        condition = prompter(frames, env_params[group])
        diffusion = generator.training_loss(latents[idx], condition, rng)
        aux = prompter.aux_loss(condition, env_params[group])
        loss = diffusion + training.aux_weight * aux
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), modules.parameters()):
                e.lerp_(p, 1 - training.ema)
        totals += torch.tensor([diffusion.item(), aux.item()])
        if advance is not None:
            advance(1)
        if step % 50 == 0 or step == training.steps:
            count = (step - 1) % 50 + 1
            history.append({"step": step, "diffusion": float(totals[0] / count), "aux": float(totals[1] / count)})
            totals.zero_()
        if validating and (step % training.validate_every == 0 or step == training.steps):
            ema.eval()
            remember(ema)
            score = validate(ema["generator"], ema["prompter"])
            validation.append({"step": step, "val_rmse": score})
            if best is None or score < best[0]:
                best, best_step, stale = (score, copy.deepcopy(ema.state_dict())), step, 0
            else:
                stale += 1
            if training.patience and stale >= training.patience:
                break
    modules.load_state_dict(best[1] if best is not None else ema.state_dict())
    modules.eval()
    remember(modules)
    return GeneratorFit(history, validation, best_step if best is not None else step)


def validation_rmse(
    codec: WeightCodec,
    observed: torch.Tensor,
    env_params: torch.Tensor,
    trajectories: torch.Tensor,
    scale: ChannelScale,
    dt: float,
    n_candidates: int,
    seed: int,
) -> Callable[[Generator, Prompter], float]:
    """A score for :func:`fit_generator`'s ``validate``: the mean rollout RMSE of the experts generated
    (:func:`generate_experts`, ``n_candidates`` each, sampled from ``seed`` every time, so checkpoints
    are compared on the same noise) for the validation environments from their observed frames
    ``[E, L, *state]`` (``env_params`` normalized, for the oracle prompter) on their trajectories
    ``[E, n, T, *state]``; inf when every candidate of an environment is non-finite."""
    n_candidates = n_candidates if observed.shape[1] > 1 else 1  # one frame gives no residual to choose by

    def score(generator: Generator, prompter: Prompter) -> float:
        device = generator.device
        try:
            generated = generate_experts(
                codec, generator, prompter, observed.to(device), env_params.to(device), scale, dt, n_candidates, seed
            )
        except WeightError:
            return math.inf
        rmse = rollout_experts(codec.adapter, generated.params, trajectories.to(device), scale, dt).rmse.mean()
        return float(rmse) if torch.isfinite(rmse) else math.inf

    return score


@dataclass(frozen=True)
class Generated:
    params: Params
    """The chosen expert per environment ``[E, ...]``."""
    residual: torch.Tensor
    """Its normalized MSE on the observed frames ``[E]``."""
    candidate_residuals: torch.Tensor
    """Every candidate's residual ``[E, N]`` (inf for rejected ones)."""
    rejected: torch.Tensor
    """Non-finite candidates per environment ``[E]``."""
    seconds: float
    """Wall time of prompting, sampling, decoding and selection for all E environments."""
    range_score: torch.Tensor
    """How far outside the seen parameter range the prompter places each environment ``[E]``: the
    largest ``|estimate|`` of its parameters by the prompter's ``aux`` head, in units where the seen
    range is [-1, 1] (above 1: outside; :mod:`weightspace.evaluate.shift`)."""


def generate_experts(
    codec: WeightCodec,
    generator: Generator,
    prompter: Prompter,
    observed: torch.Tensor,
    env_params: torch.Tensor,
    scale: ChannelScale,
    dt: float,
    n_candidates: int,
    seed: int,
) -> Generated:
    """Experts for E environments from their observed frames ``[E, L, *state]`` (raw), no gradient step.

    ``env_params`` (normalized, ``[E, P]``) is read only by the oracle prompter."""
    if observed.dim() < 3 or observed.shape[0] < 1 or observed.shape[1] < 1:
        raise ConfigError(f"observed frames must be [E >= 1, L >= 1, *state], got {list(observed.shape)}")
    if not isinstance(n_candidates, int) or isinstance(n_candidates, bool) or n_candidates < 1:
        raise ConfigError(f"n_candidates must be a positive integer, got {n_candidates!r}")
    if observed.shape[1] < 2 and n_candidates > 1:
        # every rollout starts from the first frame, so with nothing after it each candidate's residual is 0
        # and the "best" would be an arbitrary one, possibly an expert that blows up on the next step
        raise ConfigError(
            f"one observed frame gives no residual to choose among {n_candidates} candidates by: "
            "use n_candidates=1 or observe 2 or more frames"
        )
    if not torch.isfinite(observed).all():
        raise ConfigError("the observed frames hold non-finite values (nan or inf)")
    start = time.perf_counter()
    n_envs = observed.shape[0]
    adapter = codec.adapter
    with torch.no_grad():
        condition = prompter(scale.normalize(observed), env_params)
        range_score = prompter.aux(condition).abs().amax(dim=1)
        condition = condition.repeat_interleave(n_candidates, dim=0)
        latents = generator.sample(condition, torch.Generator().manual_seed(seed))
        params = codec.decode(latents)
        finite = torch.stack([torch.isfinite(v.flatten(1)).all(dim=1) for v in params.values()]).all(dim=0)
        target = observed.repeat_interleave(n_candidates, dim=0)
        residual = observation_residual(adapter, params, target, scale, dt)
        residual = torch.where(finite, residual, torch.full_like(residual, torch.inf))
        residual = residual.view(n_envs, n_candidates)
        best = residual.argmin(dim=1)
        if torch.isinf(residual.gather(1, best[:, None])).any():
            bad = torch.isinf(residual).all(dim=1).nonzero().flatten().tolist()
            raise WeightError(f"every one of {n_candidates} candidates was non-finite for environment(s) {bad}")
        chosen = best + torch.arange(n_envs) * n_candidates
        out = {k: v[chosen] for k, v in params.items()}
    return Generated(
        out,
        residual.gather(1, best[:, None])[:, 0],
        residual,
        (~finite.view(n_envs, n_candidates)).sum(dim=1),
        time.perf_counter() - start,
        range_score,
    )


def save_expert(adapter: ArchitectureAdapter, params: Params, folder: str | Path, record: dict[str, Any]) -> None:
    """Write one expert (``params`` without a batch axis) as ``expert.safetensors`` plus ``config.json``
    naming the architecture and its config: loadable into the plain module (e.g. neuraloperator's FNO)
    with ``load_state_dict``, no weightspace training state needed."""
    folder = Path(folder)
    check_params(adapter.spec, params, batched=False)
    save_tensors(folder / "expert.safetensors", params)
    meta = {"architecture": adapter.name, "config": config_to_dict(adapter.config), **record}
    with atomic_path(folder / "config.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1))


def read_expert_config(folder: Path) -> dict[str, Any]:
    """The ``config.json`` :func:`save_expert` wrote, checked for the architecture and its config, so
    that a missing, damaged or hand-edited file is named in one line rather than as a KeyError."""
    path = folder / "config.json"
    if not path.is_file():
        raise WeightError(f"{folder} holds no expert: missing config.json (write one with `weightspace generate`)")
    meta = read_json(path, WeightError)
    if not (
        isinstance(meta, dict) and isinstance(meta.get("architecture"), str) and isinstance(meta.get("config"), dict)
    ):
        raise WeightError(f"{path} must be a JSON object with 'architecture' (a name) and 'config' (an object)")
    # an expert generated for a simulated environment names it (save_expert's record from `generate --env`)
    simulated = {"profile": str, "system_settings": dict, "env_params": dict, "dt": (int, float)}
    bad = [k for k, kind in simulated.items() if "system" in meta and not isinstance(meta.get(k), kind)]
    if bad:
        raise WeightError(f"{path} names a system but not a valid {', '.join(bad)}")
    return meta


def load_expert(folder: str | Path, registry: Any = None) -> torch.nn.Module:
    """The module saved by :func:`save_expert`, built by its architecture's adapter."""
    from weightspace.registry import default_registry

    folder = Path(folder)
    meta = read_expert_config(folder)
    adapter = (registry or default_registry()).architecture(meta["architecture"], meta["config"])
    state = load_tensors(folder / "expert.safetensors")[0]
    check_params(adapter.spec, state, batched=False)
    module = adapter.build(0)
    module.load_state_dict(state, strict=False)
    return module
