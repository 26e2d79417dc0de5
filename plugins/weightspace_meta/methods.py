"""The ``coda`` and ``geps`` adaptation methods: a context model trained on the zoo's seen
environments, adapted to each evaluated environment by fitting its context alone on the observed frames.

Rules, shared by both (the two papers differ in the context model, :mod:`weightspace_meta.coda` and
:mod:`weightspace_meta.geps`, not in the protocol):

- The shared network starts from a fresh initialization, as in both papers (started from the
  converged base, joint training sometimes never beat the base's validation loss), and is trained
  with every seen environment's context on the zoo's own training trajectories (those the zoo's
  experts trained on), with the settings the zoo trained its base with from scratch (learning
  rate, minibatch, unroll, clipping) and a step cap of :data:`TRAIN_STEPS` times the base's budget.
- Its checkpoint is chosen on the validation environments, as the generator's is: :data:`CHECKS`
  times per base budget, their contexts are adapted from their observed frames exactly as at
  evaluation and the experts rolled out on their trajectories; training keeps the state of the
  lowest mean rollout RMSE and stops after :data:`CHECKS` checks (one base budget) without a lower one.
- The trained model is stored in the zoo's folder (:mod:`weightspace_meta.store`, under
  ``methods/<name>-<hash of its settings>``) and loaded by later evaluations with the same
  settings instead of being trained again.
- Adaptation sees what every other method sees: the L observed frames (L >= 2) of one trajectory
  of the environment, from the same seed stream. Its context is fitted for ``finetune_steps`` Adam
  steps (the gradient budget finetune-L gets; the reference implementations' caps are larger) at
  ``adapt_lr`` (each reference implementation's: 1e-3 for CoDA, whose context moves every
  parameter, 1e-2 for GEPS), the shared network frozen, keeping the context that fits the
  frames best. Seen environments (``test_in``) are adapted from their frames too:
  their trained contexts are not looked up, so in- and out-of-domain rows measure the same thing.
- Rows record ``adapted_parameters`` (the context size), ``shared_parameters`` (real numbers of the
  shared network and the context map) and the shared training's ``kept_step``; ``seconds_per_env``
  is the adaptation's time per environment (the one-off shared training is recorded as
  ``training_seconds``, its checkpoint's validation score as ``validation_rmse``).
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any, ClassVar

import torch

from weightspace.data.dataset import Split
from weightspace.data.trajectories import by_environment
from weightspace.errors import ConfigError
from weightspace.evaluate.adaptation import observed_frames, training_data
from weightspace.graph import Params
from weightspace.method import Adapted, Environments, EvaluationOptions, Method
from weightspace.metrics import rollout_experts
from weightspace.system import derived_seed
from weightspace.zoo import Zoo
from weightspace_meta.coda import CodaModel
from weightspace_meta.context import (
    ContextModel,
    Score,
    adapt_contexts,
    check_context_dim,
    fit_context_model,
    flat_real,
)
from weightspace_meta.geps import GepsModel
from weightspace_meta.store import load_context_model, save_context_model, settings_key

TRAIN_STEPS = 2
"""The shared training's step cap, in multiples of the zoo base's budget (early stopping ends it first)."""
CHECKS = 4
"""Validation checks per base budget, and checks without a gain before training stops."""
TRAINING_VERSION = 2
"""Part of a stored model's settings: raised whenever training changes, so older models are retrained."""


class ContextMethod(Method):
    """A context-based meta-learning method (module docstring); subclasses build the context model."""

    options: ClassVar[tuple[str, ...]] = ("observed_frames", "finetune_steps")
    adapt_from_mean: bool = False
    """Start an unseen environment's context at the mean of the training ones (else at zero)."""

    def __init__(self, context_dim: int, adapt_lr: float = 1e-2) -> None:
        if not (isinstance(adapt_lr, (int, float)) and math.isfinite(adapt_lr) and adapt_lr > 0):
            raise ConfigError(f"{self.name}: adapt_lr must be a positive number, got {adapt_lr!r}")
        check_context_dim(context_dim, self.name)
        self.context_dim, self.adapt_lr = context_dim, float(adapt_lr)

    @abstractmethod
    def build(self, base: Params, seed: int) -> ContextModel:
        """The untrained context model around the zoo's base expert, its random draws from ``seed``."""

    def hyperparameters(self) -> dict[str, Any]:
        """The method's own settings (recorded with a stored model)."""
        return {"context_dim": self.context_dim, "adapt_lr": self.adapt_lr}

    def start(self, contexts: torch.Tensor) -> torch.Tensor:
        """Where an evaluated environment's context starts, from the seen ones' ``[E, d]``."""
        return contexts.mean(dim=0) if self.adapt_from_mean else torch.zeros(self.context_dim)

    def fit_contexts(
        self, model: ContextModel, zoo: Zoo, frames: torch.Tensor, contexts: torch.Tensor, steps: int
    ) -> torch.Tensor:
        """Contexts ``[E, d]`` fitted on observed ``frames`` ``[E, L, *state]``, the shared network frozen."""
        start = self.start(contexts)
        unroll = zoo.zoo_settings.unroll
        return adapt_contexts(
            model, zoo.adapter, frames, start, zoo.scale, zoo.dt, steps=steps, lr=self.adapt_lr, unroll=unroll
        )[0]

    def validation_score(self, zoo: Zoo, validation: Split, options: EvaluationOptions) -> Score:
        """A checkpoint's mean rollout RMSE on the ``validation`` environments (the zoo dataset's
        ``val_out``), their contexts fitted on their observed frames as at evaluation (what the
        generator's checkpoints are chosen by)."""
        if not len(validation.env_index):
            raise ConfigError(f"{self.name} chooses its checkpoint on validation environments; {zoo.path} has none")
        index, _, trajectories = by_environment(validation)
        frames = observed_frames(zoo.system(), index, options.observed_frames, zoo.manifest["seed"])

        def score(model: ContextModel, contexts: torch.Tensor) -> float:
            fitted = self.fit_contexts(model, zoo, frames, contexts, options.finetune_steps)
            with torch.no_grad():
                experts = model.experts(fitted)
            batch = zoo.zoo_settings.expert_batch
            return float(rollout_experts(zoo.adapter, experts, trajectories, zoo.scale, zoo.dt, batch).rmse.mean())

        return score

    def train(self, zoo: Zoo, options: EvaluationOptions) -> tuple[ContextModel, torch.Tensor, dict]:
        """The context model trained on the zoo's seen environments (or loaded, if a model trained
        with the same settings is stored in the zoo), their contexts, and row fields."""
        seed = derived_seed(zoo.manifest["seed"], self.name, "init")
        model = self.build(zoo.adapter.init_params(1, seed=seed), seed)
        settings = zoo.zoo_settings
        every = math.ceil(settings.base_steps / CHECKS)
        config = replace(
            settings.training(base=True), steps=TRAIN_STEPS * settings.base_steps, eval_every=every, patience=CHECKS
        )
        stored = {
            "method": self.name,
            "training_version": TRAINING_VERSION,
            "hyperparameters": self.hyperparameters(),
            "train": asdict(config),
            "options": options.select(self.options),
            "zoo": {"seed": zoo.manifest["seed"], "dataset_sha256": zoo.manifest["dataset_sha256"]},
        }
        folder = zoo.path / "methods" / f"{self.name}-{settings_key(stored)}"
        loaded = load_context_model(folder, model, stored)
        if loaded is not None:
            return model, *loaded
        dataset = zoo.dataset()
        _, _, trajectories = by_environment(dataset["train"])
        seed = derived_seed(zoo.manifest["seed"], self.name, "train")
        score = self.validation_score(zoo, dataset["val_out"], options)
        result = fit_context_model(model, zoo.adapter, training_data(zoo, trajectories), config, seed, score)
        fields = {
            "adapted_parameters": self.context_dim,
            "shared_parameters": sum(flat_real(p).numel() for p in model.parameters()),
            "kept_step": result.best_step,
            "validation_rmse": result.score,
            "training_seconds": result.seconds,
        }
        save_context_model(folder, model, result.contexts, stored, fields)
        return model, result.contexts, fields

    def adapt(self, zoo: Zoo, run: None, environments: Environments, options: EvaluationOptions) -> Adapted:
        return self.adapt_splits(zoo, run, [environments], options)[0]

    def adapt_splits(
        self, zoo: Zoo, run: None, splits: Sequence[Environments], options: EvaluationOptions
    ) -> list[Adapted]:
        """The shared training once (or its stored result), then each split's contexts from its observed frames."""
        if options.observed_frames < 2:
            raise ConfigError(
                f"{self.name} fits a context to observed steps: it needs L >= 2, got L={options.observed_frames}"
            )
        model, contexts, fields = self.train(zoo, options)
        adapted = []
        for environments in splits:
            frames = observed_frames(
                zoo.system(), environments.env_index, options.observed_frames, zoo.manifest["seed"]
            )
            began = time.perf_counter()
            fitted = self.fit_contexts(model, zoo, frames, contexts, options.finetune_steps)
            with torch.no_grad():
                params = {k: v.detach() for k, v in model.experts(fitted).items()}
            seconds = (time.perf_counter() - began) / len(frames)
            adapted.append(Adapted(params, seconds, dict(fields)))
        return adapted


CODA_STARTS = ("zero", "mean")


class Coda(ContextMethod):
    """``coda``: :mod:`weightspace_meta.coda`, context size 2, the reference's penalties and its
    adaptation learning rate (1e-3). ``start``: where an evaluated environment's context starts,
    at zero as in the reference, or at the mean of the seen environments' contexts (``"mean"``, as
    ``geps`` does): where the seen contexts share an offset larger than their differences, zero is
    an expert that fits no environment. Checkpoints are chosen with the same start."""

    name = "coda"

    def __init__(
        self, context_dim: int = 2, lambda_w: float = 1e-6, lambda_xi: float = 1e-4, start: str = "zero"
    ) -> None:
        super().__init__(context_dim, adapt_lr=1e-3)
        if start not in CODA_STARTS:
            raise ConfigError(f"{self.name}: start must be one of {', '.join(CODA_STARTS)}, got {start!r}")
        self.lambda_w, self.lambda_xi, self.adapt_from_mean = lambda_w, lambda_xi, start == "mean"

    def hyperparameters(self) -> dict[str, Any]:
        start = {"start": "mean"} if self.adapt_from_mean else {}  # the reference's start keeps stored models' keys
        return super().hyperparameters() | {"lambda_w": self.lambda_w, "lambda_xi": self.lambda_xi} | start

    def build(self, base: Params, seed: int) -> ContextModel:
        return CodaModel(base, self.context_dim, self.lambda_w, self.lambda_xi, seed)


class Geps(ContextMethod):
    """``geps``: :mod:`weightspace_meta.geps`, rank (context size) 8 as in the reference's scripts."""

    name = "geps"
    adapt_from_mean = True

    def __init__(self, context_dim: int = 8) -> None:
        super().__init__(context_dim)

    def build(self, base: Params, seed: int) -> ContextModel:
        return GepsModel(base, self.context_dim, seed)
