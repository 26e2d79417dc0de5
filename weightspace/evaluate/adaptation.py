"""What adaptation methods share: the frames they may observe, the trajectories an environment's
own expert trains on, and fine-tuning the zoo's base expert.

Every method (:mod:`weightspace.method`) gets an environment from the same seed streams: the
observed frames from stream ``observed``, an unseen environment's training trajectories from stream
``oracle``, so methods compared on one split see exactly the same data. Fine-tuning starts from the
base (One-for-All) with the zoo experts' own training settings, so a fine-tuned expert differs from
a zoo expert only in its data and budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from weightspace.data.simulation import observed_frames as observed_frames  # its home; plugins import it here
from weightspace.data.simulation import simulate_split
from weightspace.data.trajectories import by_environment
from weightspace.graph import Params
from weightspace.method import Environments
from weightspace.pipeline.run import Run
from weightspace.system import derived_seed
from weightspace.zoo import Zoo
from weightspace.zoo.trainer import TrainConfig, TrainingData, TrainResult, train_experts


def base_experts(zoo: Zoo, n_envs: int) -> Params:
    """The zoo's base expert (ERM over all seen environments) stacked ``n_envs`` times."""
    return {k: v.expand(n_envs, *v.shape[1:]).clone() for k, v in zoo.base().items()}


def environment_trajectories(zoo: Zoo, split: str, env_index: torch.Tensor) -> torch.Tensor:
    """The training trajectories ``[E, n, T, *state]`` of each environment of ``split``: the zoo's
    own for seen environments (``test_in``), simulated from the seed stream ``oracle`` for unseen
    ones (what an expert trained on the environment would have had)."""
    if split == "test_in":
        train_index, _, train = by_environment(zoo.dataset()["train"])
        return train[torch.searchsorted(train_index, env_index)]
    system = zoo.system()
    return simulate_split(system, env_index, system.settings.n_train, zoo.manifest["seed"], "oracle")


@dataclass(frozen=True)
class SplitExperts:
    """A run's generated experts for one split's environments, in its order."""

    params: Params
    latencies: list[float]
    """Milliseconds per environment."""
    residual: torch.Tensor
    """Each chosen expert's residual on its observed frames ``[E]``."""
    range_score: torch.Tensor
    """``[E]``, see :class:`weightspace.pipeline.generation.Generated`."""


def generate_split(run: Run, environments: Environments, length: int, candidates: int) -> SplitExperts:
    """The run's expert for each environment of ``environments`` from its ``length`` observed frames,
    each generated on its own (so that its latency is one environment's) with the sampling seed
    evaluation uses for that environment: the same candidates wherever an environment is generated.
    The environments' parameters are passed on for the oracle prompter (no other prompter reads them)."""
    seed = run.zoo.manifest["seed"]
    frames = observed_frames(run.zoo.system(), environments.env_index, length, seed)
    outs = [
        run.generate(
            frames[i : i + 1],
            candidates,
            seed=derived_seed(seed, "generate", int(env)),
            env_params=environments.env_params[i : i + 1],
        )
        for i, env in enumerate(environments.env_index)
    ]
    return SplitExperts(
        {k: torch.cat([out.params[k] for out in outs]) for k in outs[0].params},
        [1000 * out.seconds for out in outs],
        torch.cat([out.residual for out in outs]),
        torch.cat([out.range_score for out in outs]),
    )


def training_data(zoo: Zoo, train: torch.Tensor) -> TrainingData:
    """Trajectories ``[E, n, T, *state]`` as training data, the last ``n_val`` held out for validation."""
    n_val = zoo.zoo_settings.n_val if train.shape[1] > zoo.zoo_settings.n_val else 0
    return TrainingData(train[:, : train.shape[1] - n_val], train[:, -max(n_val, 1) :], zoo.scale, zoo.dt)


def train_environments(
    zoo: Zoo, init: Params, env_index: torch.Tensor, data: TrainingData, config: TrainConfig, label: str
) -> tuple[TrainResult, float]:
    """Expert e trained from ``init`` (``{name: [E, ...]}``, row e) on environment e's ``data`` with the
    zoo's trainer and ``config``, its minibatches seeded by ``label`` and its environment; returns the
    trainer's result (each expert's best-by-validation parameters, loss and step) and the seconds per
    expert."""
    n = len(env_index)
    seeds = [derived_seed(zoo.manifest["seed"], label, int(e)) for e in env_index]
    start = time.perf_counter()
    result = train_experts(
        zoo.adapter, init, data, list(range(n)), seeds, config, expert_batch=zoo.zoo_settings.expert_batch
    )
    return result, (time.perf_counter() - start) / n


def finetune_base(
    zoo: Zoo, env_index: torch.Tensor, data: TrainingData, config: TrainConfig, label: str
) -> tuple[Params, float]:
    """The base fine-tuned on each environment's ``data`` with the zoo's trainer and ``config``, each
    expert seeded by ``label`` and its environment; returns the experts and the seconds per expert."""
    result, seconds = train_environments(zoo, base_experts(zoo, len(env_index)), env_index, data, config, label)
    return result.params, seconds
