"""The reference baselines, made by the zoo's own trainer from the zoo alone.

- ``one-for-all``: the zoo's base expert (ERM over all seen environments), the same for every environment.
- ``one-per-env``: the base fine-tuned on the evaluated environment's own training trajectories
  (simulated for unseen environments): the reference a generated expert is compared with.
- ``finetune-L``: the base fine-tuned for a fixed number of gradient steps on only the first L
  observed frames of one trajectory of the environment: the gradient-based adaptation that
  generation from the same L frames must beat in time and accuracy.
- ``nearest-zoo``: the zoo expert that best reproduces the observed frames (the residual generation
  uses to pick among its candidates): retrieval without generation, which generation must beat on
  unseen environments to show it does more than look experts up.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from weightspace.errors import ConfigError
from weightspace.evaluate.adaptation import (
    base_experts,
    environment_trajectories,
    finetune_base,
    observed_frames,
    training_data,
)
from weightspace.evaluate.evaluation import rollout_summary
from weightspace.method import Adapted, Environments, EvaluationOptions, Method
from weightspace.metrics import observation_residual
from weightspace.zoo import Zoo
from weightspace.zoo.trainer import TrainingData


class OneForAll(Method):
    name = "one-for-all"

    def adapt(self, zoo: Zoo, run: None, environments: Environments, options: EvaluationOptions) -> Adapted:
        return Adapted(base_experts(zoo, len(environments.env_index)), 0.0)


class OnePerEnv(Method):
    """The base fine-tuned on each environment's training trajectories (the last ``n_val`` held out
    for early stopping) for twice the zoo experts' budget."""

    name = "one-per-env"
    reference = True

    def adapt(self, zoo: Zoo, run: None, environments: Environments, options: EvaluationOptions) -> Adapted:
        env_index = environments.env_index
        config = zoo.zoo_settings.training(base=False)
        config = replace(config, steps=2 * config.steps)
        data = training_data(zoo, environment_trajectories(zoo, environments.split, env_index))
        return Adapted(*finetune_base(zoo, env_index, data, config, self.name))


def nearest_zoo(zoo: Zoo, observed: torch.Tensor) -> Adapted:
    """Per environment, the zoo expert with the lowest residual on its observed frames ``[E, L, *state]``."""
    if observed.shape[1] < 2:
        raise ConfigError(f"nearest-zoo needs at least 2 observed frames to compare experts; got L={observed.shape[1]}")
    start = time.perf_counter()
    experts, _ = zoo.experts()
    n = len(next(iter(experts.values())))
    with torch.no_grad():
        chosen = [
            int(observation_residual(zoo.adapter, experts, f.expand(n, *f.shape), zoo.scale, zoo.dt).argmin())
            for f in observed
        ]
    return Adapted({k: v[chosen] for k, v in experts.items()}, (time.perf_counter() - start) / len(observed))


class NearestZoo(Method):
    """Retrieval: see :func:`nearest_zoo`."""

    name = "nearest-zoo"
    options = ("observed_frames",)

    def adapt(self, zoo: Zoo, run: None, environments: Environments, options: EvaluationOptions) -> Adapted:
        seed = zoo.manifest["seed"]
        return nearest_zoo(zoo, observed_frames(zoo.system(), environments.env_index, options.observed_frames, seed))


class FinetuneL(Method):
    """The base fine-tuned for ``finetune_steps`` steps on the observed frames (L >= 2) at
    ``finetune_lr`` (default: the zoo experts' learning rate). The observed frames are also the
    validation data, so an expert whose fit of them got worse than the base's stays the base.

    With ``finetune_budgets``, its out-of-domain row also holds ``budget_curve``: the RMSE and wall
    time per environment at each budget, each a fine-tuning run of its own (with its own
    learning-rate schedule, as a user with that budget would run it): what it costs fine-tuning to
    reach the RMSE a generated expert has at once."""

    name = "finetune-L"
    fine_tunes_observed = True
    options = ("observed_frames", "finetune_steps", "finetune_lr", "finetune_budgets")

    def adapt(self, zoo: Zoo, run: None, environments: Environments, options: EvaluationOptions) -> Adapted:
        if options.observed_frames < 2:
            raise ConfigError(
                f"finetune-L needs at least 2 observed frames to fit a step; got L={options.observed_frames}"
            )
        observed = observed_frames(zoo.system(), environments.env_index, options.observed_frames, zoo.manifest["seed"])
        adapted = Adapted(*self.finetune(zoo, environments, observed, options.finetune_steps, options.finetune_lr))
        if environments.split != "test_out" or not options.finetune_budgets:
            return adapted
        curve = []
        for steps in sorted(set(options.finetune_budgets)):
            params, seconds = self.finetune(zoo, environments, observed, steps, options.finetune_lr)
            rmse = rollout_summary(zoo, params, environments)["rmse_mean"]
            curve.append({"steps": steps, "rmse": rmse, "seconds_per_env": seconds})
        return replace(adapted, fields={"budget_curve": curve})

    def finetune(
        self, zoo: Zoo, environments: Environments, observed: torch.Tensor, steps: int, lr: float | None
    ) -> tuple[dict[str, torch.Tensor], float]:
        n_obs = observed.shape[1]
        base = zoo.zoo_settings.training(base=False)
        config = replace(
            base, steps=steps, lr=lr or base.lr, unroll=min(base.unroll, n_obs - 1), eval_every=steps, patience=steps
        )
        data = TrainingData(observed[:, None], observed[:, None], zoo.scale, zoo.dt)
        return finetune_base(zoo, environments.env_index, data, config, f"finetune-{n_obs}")
