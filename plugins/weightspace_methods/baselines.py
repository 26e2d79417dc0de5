"""The reference baselines, made by the zoo's own trainer from the zoo alone.

- ``one-for-all``: the zoo's base expert (ERM over all seen environments), the same for every environment.
- ``one-per-env``: the ceiling, an expert trained to convergence on the evaluated environment's own
  training trajectories (simulated for unseen environments), once from the base and once from
  scratch, keeping per environment the run with the lower validation loss on the environment's
  held-out trajectories: the reference a generated expert is compared with. It is meant as an upper
  bound a reviewer cannot call undertrained: neither the start (the base may be a poor start for an
  environment far from the seen ones) nor a fixed budget limits it, and it never returns a diverged
  expert (each run keeps its best-by-validation checkpoint). See :class:`OnePerEnv`.
- ``finetune-L``: the base fine-tuned for a fixed number of gradient steps on only the first L
  observed frames of one trajectory of the environment: the gradient-based adaptation that
  generation from the same L frames must beat in time and accuracy.
- ``nearest-zoo``: the zoo expert that best reproduces the observed frames (the residual generation
  uses to pick among its candidates): retrieval without generation, which generation must beat on
  unseen environments to show it does more than look experts up.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch

from weightspace.errors import ConfigError
from weightspace.evaluate.adaptation import (
    base_experts,
    environment_trajectories,
    finetune_base,
    observed_frames,
    train_environments,
    training_data,
)
from weightspace.evaluate.evaluation import rollout_summary
from weightspace.graph import Params
from weightspace.method import Adapted, Environments, EvaluationOptions, Method
from weightspace.metrics import observation_residual
from weightspace.system import derived_seed
from weightspace.zoo import TrainingError, Zoo, ZooSettings
from weightspace.zoo.trainer import TrainConfig, TrainingData, TrainResult


class OneForAll(Method):
    name = "one-for-all"

    def adapt(self, zoo: Zoo, run: None, environments: Environments, options: EvaluationOptions) -> Adapted:
        return Adapted(base_experts(zoo, len(environments.env_index)), 0.0)


CEILING_STEPS: dict[str, int] = {"base": 5, "scratch": 2}
"""Step caps of One-per-Env's two runs, as multiples of the budget the zoo gave the same start:
``expert_steps`` from the base (the zoo's experts are fine-tuned from it), ``base_steps`` from
scratch (the base itself is trained from scratch). A cap is a safeguard, not the budget: early
stopping ends a run once its validation loss stops improving."""


def ceiling_configs(settings: ZooSettings) -> dict[str, TrainConfig]:
    """The trainer configs of One-per-Env's run from the base (``"base"``) and from scratch
    (``"scratch"``). Each takes from the zoo its minibatch size, unroll, gradient clipping and
    ``eval_every``, and the learning rate and budget the zoo used from the same start (``expert_lr``
    and ``expert_steps`` from the base, ``lr`` and ``base_steps`` from scratch). Its step cap is
    :data:`CEILING_STEPS` times that budget, and its patience at least that budget: a run is given up
    only after it went as many steps without a better validation loss as the zoo gave that start in
    all (the zoo's own ``patience`` if longer), since the validation loss of a run at its peak
    learning rate is noisy and may take that long to beat its start."""
    config = settings.training(base=True)
    budgets = {"base": (settings.expert_steps, settings.expert_lr), "scratch": (settings.base_steps, settings.lr)}
    return {
        start: replace(
            config,
            steps=CEILING_STEPS[start] * steps,
            lr=lr,
            patience=max(settings.patience, math.ceil(steps / settings.eval_every)),
        )
        for start, (steps, lr) in budgets.items()
    }


def scratch_experts(zoo: Zoo, env_index: torch.Tensor, label: str) -> Params:
    """A fresh initialization per environment ``{name: [E, ...]}``, seeded by ``label`` and the
    environment alone (not by which other environments are evaluated)."""
    seed = zoo.manifest["seed"]
    inits = [zoo.adapter.init_params(1, seed=derived_seed(seed, label, "init", int(e))) for e in env_index]
    return {k: torch.cat([p[k] for p in inits]) for k in inits[0]}


STARTS: tuple[str, ...] = ("base", "scratch")
"""One-per-Env's starts, in the order that breaks ties: the zoo's base, then a fresh initialization."""


def one_per_env(
    zoo: Zoo,
    env_index: torch.Tensor,
    data: TrainingData,
    configs: Mapping[str, TrainConfig] | None = None,
    label: str = "one-per-env",
    starts: Sequence[str] = STARTS,
) -> Adapted:
    """One expert per environment of ``env_index``, trained on its ``data`` (data group e is
    environment e) from each of ``starts`` (``configs``: :func:`ceiling_configs` by default),
    keeping per environment the run with the lowest best validation loss (the earlier start of
    :data:`STARTS` on a tie).

    Raises :class:`~weightspace.zoo.TrainingError` naming the environments whose runs all diverged
    (no finite validation loss at any evaluation, not even of the initial parameters)."""
    return one_per_env_parts(zoo, env_index, data, [len(env_index)], configs, label, starts)[0]


def one_per_env_parts(
    zoo: Zoo,
    env_index: torch.Tensor,
    data: TrainingData,
    sizes: Sequence[int],
    configs: Mapping[str, TrainConfig] | None = None,
    label: str = "one-per-env",
    starts: Sequence[str] = STARTS,
) -> list[Adapted]:
    """:func:`one_per_env` trained for all of ``env_index`` at once and returned as consecutive parts
    of ``sizes`` environments (e.g. the evaluated splits), each with its own row fields and the
    wall time per environment of the whole."""
    configs = configs or ceiling_configs(zoo.zoo_settings)
    inits = {
        "base": lambda: base_experts(zoo, len(env_index)),
        "scratch": lambda: scratch_experts(zoo, env_index, f"{label}-scratch"),
    }
    runs, seconds = [], 0.0
    for start in starts:
        run, run_seconds = train_environments(zoo, inits[start](), env_index, data, configs[start], f"{label}-{start}")
        runs.append(run)
        seconds += run_seconds
    losses = torch.nan_to_num(torch.stack([run.val_loss for run in runs]), nan=math.inf, posinf=math.inf)  # [starts, E]
    diverged = ~torch.isfinite(losses).any(dim=0)
    if diverged.any():
        names = ", ".join(str(int(e)) for e in env_index[diverged])
        tried = " and ".join(f"from {'the base' if start == 'base' else start}" for start in starts)
        raise TrainingError(
            f"{label}: every run ({tried}) of environment(s) {names} diverged: "
            "no finite validation loss at any evaluation"
        )
    kept = losses.argmin(dim=0)  # the first start on a tie
    envs = torch.arange(len(env_index))
    params = {k: torch.stack([run.params[k] for run in runs])[kept, envs] for k in runs[0].params}
    best_step = torch.stack([run.best_step for run in runs])[kept, envs]
    at_cap = torch.stack([_ran_to_cap(run, configs[start]) for run, start in zip(runs, starts)])[kept, envs]
    parts, lo = [], 0
    for size in sizes:
        part = slice(lo, lo + size)
        fields = {
            "ceiling_init": {start: int((kept[part] == i).sum()) for i, start in enumerate(starts)},
            "ceiling_best_step": float(best_step[part].double().mean()),
            "ceiling_at_cap": int(at_cap[part].sum()),
            "ceiling_steps": {start: configs[start].steps for start in starts},
        }
        parts.append(Adapted({k: v[part] for k, v in params.items()}, seconds, fields))
        lo += size
    return parts


def _ran_to_cap(result: TrainResult, config: TrainConfig) -> torch.Tensor:
    """Per expert, whether early stopping never stopped it: fewer than ``patience`` evaluations came
    after its best step, so the cap, not convergence, ended its run."""
    steps = torch.tensor(result.curve_steps)
    return (steps[None, :] > result.best_step[:, None]).sum(dim=1) < config.patience


class OnePerEnv(Method):
    """The ceiling: an expert trained on each environment's own training trajectories to
    convergence, from the best of two starts.

    Rules: each environment's expert is trained twice (``starts`` may keep one) with the zoo's
    trainer, from the zoo's base (at the zoo experts' learning rate) and from a fresh initialization
    seeded by the environment (at the base's learning rate), each until early stopping on the
    environment's last ``n_val`` training trajectories, held out, or until a step cap of
    :data:`CEILING_STEPS` times the zoo's budget for the same start. Early stopping is more patient
    than the zoo's: a run stops only after as many steps without improvement as the zoo's whole
    budget for that start (see :func:`ceiling_configs`). Each run keeps its best-by-validation
    checkpoint, so a run that diverges falls back to its best earlier parameters (at worst its
    start); per environment the run with the lower validation loss is kept. Two starts because the
    base need not be the best start for an environment (unseen ones especially), and early stopping
    instead of a fixed budget so that the reference is not undertrained. Nothing is chosen on test
    trajectories.

    Its rows record the choice: ``ceiling_init`` (environments won by each start),
    ``ceiling_best_step`` (the mean step of the kept checkpoints), ``ceiling_at_cap`` (kept runs the
    cap ended before early stopping did: still improving near the cap, not shown converged) and
    ``ceiling_steps`` (the caps)."""

    name = "one-per-env"
    reference = True

    def __init__(self, starts: Sequence[str] = STARTS) -> None:
        """``starts``: which of :data:`STARTS` to train from (both by default). Drop one only where
        it wins no validation environment over seeds: the ceiling keeps the better start per
        environment, so a start that never wins there costs time and changes nothing chosen."""
        if isinstance(starts, str) or not starts or len(set(starts)) != len(starts) or not set(starts) <= set(STARTS):
            raise ConfigError(
                f"{self.name}: starts must be a non-empty list of distinct starts among {', '.join(STARTS)}, "
                f"got {starts!r}"
            )
        self.starts = tuple(start for start in STARTS if start in starts)

    def adapt(self, zoo: Zoo, run: None, environments: Environments, options: EvaluationOptions) -> Adapted:
        return self.adapt_splits(zoo, run, [environments], options)[0]

    def adapt_splits(
        self, zoo: Zoo, run: None, splits: Sequence[Environments], options: EvaluationOptions
    ) -> list[Adapted]:
        """Every split's environments trained together: an environment's expert does not depend on
        its batch mates (:mod:`weightspace.zoo.trainer`), and one batch of small experts costs about
        what a split's does."""
        env_index = torch.cat([e.env_index for e in splits])
        train = torch.cat([environment_trajectories(zoo, e.split, e.env_index) for e in splits])
        sizes = [len(e.env_index) for e in splits]
        data = training_data(zoo, train)
        return one_per_env_parts(zoo, env_index, data, sizes, label=self.name, starts=self.starts)


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
