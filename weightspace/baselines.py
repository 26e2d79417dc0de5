"""The reference baselines, made by the zoo's own trainer: One-for-All, One-per-Env and finetune-L.

Each gives one expert per evaluated environment, stacked ``[E, ...]``, and the wall time it took:

- ``one-for-all``: the zoo's base expert (ERM over all seen environments), the same for every environment.
- ``one-per-env``: the base fine-tuned on the evaluated environment's own training trajectories
  (simulated for unseen environments): the upper bound a generated expert is compared with.
- ``finetune-L``: the base fine-tuned for a fixed number of gradient steps on only the first L
  observed frames of one trajectory of the environment: the gradient-based adaptation that
  generation from the same L frames must beat in time and accuracy.
- ``nearest-zoo``: the zoo expert that best reproduces the observed frames (the residual generation
  uses to pick among its candidates): retrieval without generation, which generation must beat on
  unseen environments to show it does more than look experts up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from weightspace.errors import ConfigError
from weightspace.graph import Params
from weightspace.metrics import observation_residual
from weightspace.simulation import simulate_split
from weightspace.system import System, derived_seed
from weightspace.trainer import TrainingData, train_experts
from weightspace.trajectories import by_environment
from weightspace.zoo import Zoo

BASELINES = ("one-for-all", "one-per-env", "finetune-L", "nearest-zoo")


@dataclass(frozen=True)
class Adapted:
    """One expert per environment and the adaptation's wall time per environment."""

    params: Params
    seconds_per_env: float


def observed_frames(system: System, env_index: torch.Tensor, length: int, seed: int) -> torch.Tensor:
    """The first ``length`` frames ``[E, L, *state]`` of one trajectory per environment, from the seed
    stream ``observed``: what every adaptation method (finetune-L, generation) gets to see."""
    if not 0 < length <= system.settings.n_frames:
        raise ConfigError(
            f"{length} observed frames requested; a {system.name} trajectory has {system.settings.n_frames}"
        )
    return simulate_split(system, env_index, 1, seed, "observed")[:, 0, :length].float()


def one_for_all(zoo: Zoo, n_envs: int) -> Adapted:
    base = zoo.base()
    return Adapted({k: v.expand(n_envs, *v.shape[1:]).clone() for k, v in base.items()}, 0.0)


def environment_trajectories(zoo: Zoo, split: str, env_index: torch.Tensor) -> torch.Tensor:
    """The training trajectories ``[E, n, T, *state]`` of each environment of ``split``: the zoo's
    own for seen environments (``test_in``), simulated from the seed stream ``oracle`` for unseen
    ones (what an expert trained on the environment would have had)."""
    if split == "test_in":
        train_index, _, train = by_environment(zoo.dataset()["train"])
        return train[torch.searchsorted(train_index, env_index)]
    system = zoo.system()
    return simulate_split(system, env_index, system.settings.n_train, zoo.manifest["seed"], "oracle")


def training_data(zoo: Zoo, train: torch.Tensor) -> TrainingData:
    """Trajectories ``[E, n, T, *state]`` as training data, the last ``n_val`` held out for validation."""
    n_val = zoo.zoo_settings.n_val if train.shape[1] > zoo.zoo_settings.n_val else 0
    return TrainingData(train[:, : train.shape[1] - n_val], train[:, -max(n_val, 1) :], zoo.scale, zoo.dt)


def one_per_env(zoo: Zoo, env_index: torch.Tensor, train: torch.Tensor, steps: int | None = None) -> Adapted:
    """The base fine-tuned on each environment's trajectories ``train`` ``[E, n, T, *state]`` (the
    last ``n_val`` held out for early stopping); ``steps`` defaults to twice the zoo experts' budget."""
    config = zoo.zoo_settings.training(base=False)
    config = replace(config, steps=steps or 2 * config.steps)
    return _finetune(zoo, env_index, training_data(zoo, train), config, "one-per-env")


def nearest_zoo(zoo: Zoo, observed: torch.Tensor) -> Adapted:
    """Per environment, the zoo expert with the lowest residual on its observed frames ``[E, L, *state]``."""
    if observed.shape[1] < 2:
        raise ConfigError(f"nearest-zoo needs at least 2 observed frames to compare experts; got L={observed.shape[1]}")
    start = time.perf_counter()
    experts, _ = zoo.experts()
    n = len(next(iter(experts.values())))
    with torch.no_grad():
        chosen = [
            int(observation_residual(zoo.adapter, experts, frames.expand(n, *frames.shape), zoo.scale, zoo.dt).argmin())
            for frames in observed
        ]
    return Adapted({k: v[chosen] for k, v in experts.items()}, (time.perf_counter() - start) / len(observed))


def finetune_observed(
    zoo: Zoo, env_index: torch.Tensor, observed: torch.Tensor, steps: int, lr: float | None = None
) -> Adapted:
    """The base fine-tuned for ``steps`` steps on observed frames ``[E, L, *state]`` (L >= 2), at
    ``lr`` (default: the zoo experts' learning rate). The observed frames are also the validation
    data, so an expert whose fit of them got worse than the base's stays the base."""
    n_obs = observed.shape[1]
    if n_obs < 2:
        raise ConfigError(f"finetune-L needs at least 2 observed frames to fit a step; got L={n_obs}")
    if steps < 1 or (lr is not None and not lr > 0):
        raise ConfigError(f"finetune-L needs a positive number of steps and learning rate; got {steps} and {lr}")
    base = zoo.zoo_settings.training(base=False)
    config = replace(
        base, steps=steps, lr=lr or base.lr, unroll=min(base.unroll, n_obs - 1), eval_every=steps, patience=steps
    )
    data = TrainingData(observed[:, None], observed[:, None], zoo.scale, zoo.dt)
    return _finetune(zoo, env_index, data, config, f"finetune-{n_obs}")


def _finetune(zoo: Zoo, env_index: torch.Tensor, data: TrainingData, config, label: str) -> Adapted:
    n = len(env_index)
    init = one_for_all(zoo, n).params
    seeds = [derived_seed(zoo.manifest["seed"], label, int(e)) for e in env_index]
    start = time.perf_counter()
    result = train_experts(
        zoo.adapter, init, data, list(range(n)), seeds, config, expert_batch=zoo.zoo_settings.expert_batch
    )
    return Adapted(result.params, (time.perf_counter() - start) / n)
