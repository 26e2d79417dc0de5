"""Context models: one shared network whose parameters a small per-environment context modulates.

Both meta-learning rivals of weight generation (``coda``, ``geps``) are a :class:`ContextModel`: the
expert of environment e is ``experts(c)[e]``, a function of shared tensors and of a context vector
``c_e`` of ``context_dim`` numbers. They differ only in that function (:mod:`weightspace_meta.coda`,
:mod:`weightspace_meta.geps`). What they share lives here, adapter-agnostic, on the zoo's trainer
conventions (windows, losses, seeds, early stopping):

- :func:`fit_context_model`: shared tensors and one context per seen environment trained jointly
  (one Adam over all, as both reference implementations do), every environment's windows in one
  batched loss, checkpoints scored and early-stopped by a caller's score (the methods' is the
  validation environments' rollout RMSE after adaptation, as the generator's checkpoints are
  chosen), keeping the best state;
- :func:`adapt_contexts`: for unseen environments, only the contexts are fitted on their observed
  frames, the shared tensors frozen; each environment keeps its context with the lowest loss on the
  frames (its start included), so adaptation never makes the fit of what was observed worse.
"""

from __future__ import annotations

import copy
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from weightspace.architecture import ArchitectureAdapter
from weightspace.data.trajectories import ChannelScale, gather_windows, window_starts
from weightspace.errors import ConfigError
from weightspace.graph import Params
from weightspace.zoo.trainer import TrainConfig, TrainingData, window_loss


def check_context_dim(value: object, owner: str) -> None:
    """Raise a :class:`ConfigError` unless ``value`` is a positive integer (a context size)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{owner}: context size must be a positive integer, got {value!r}")


class ContextModel(nn.Module, ABC):
    """Shared tensors (``nn.Parameter`` s of the subclass) and the map from contexts ``[E, d]`` to
    expert parameters ``{name: [E, ...]}``, started from one expert ``base`` (``{name: [1, ...]}``)."""

    def __init__(self, base: Params, context_dim: int) -> None:
        super().__init__()
        check_context_dim(context_dim, type(self).__name__)
        self.context_dim = context_dim
        self.names = list(base)
        self.shared = nn.ParameterList([nn.Parameter(base[k][0].detach().clone()) for k in self.names])

    @abstractmethod
    def delta(self, contexts: torch.Tensor) -> list[torch.Tensor]:
        """Per shared tensor, the change ``[E, *shape]`` that the contexts make (real)."""

    def penalty(self, contexts: torch.Tensor) -> torch.Tensor:
        """The regularization added to the mean window loss (none by default)."""
        return contexts.new_zeros(())

    def experts(self, contexts: torch.Tensor) -> Params:
        """The expert of each context, ``{name: [E, ...]}``."""
        return {k: p + d for k, p, d in zip(self.names, self.shared, self.delta(contexts), strict=True)}


def flat_real(p: torch.Tensor) -> torch.Tensor:
    """A tensor's real numbers as a flat vector (complex entries give their real and imaginary parts)."""
    return (torch.view_as_real(p) if p.is_complex() else p).reshape(-1)


def as_shaped(change: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Changes ``[E, n]`` of ``like``'s real numbers (:func:`flat_real`) as ``[E, *like.shape]``."""
    if like.is_complex():
        return torch.view_as_complex(change.reshape(len(change), *like.shape, 2).contiguous())
    return change.reshape(len(change), *like.shape)


@dataclass(frozen=True)
class FitResult:
    contexts: torch.Tensor
    """The seen environments' contexts ``[E, d]`` at the kept step."""
    score: float
    """The kept state's score (lower is better)."""
    best_step: int
    seconds: float


Score = Callable[[ContextModel, torch.Tensor], float]
"""A checkpoint's score from the model and the seen environments' contexts ``[E, d]``: lower is
better, inf for a failed one."""


def fit_context_model(
    model: ContextModel,
    adapter: ArchitectureAdapter,
    data: TrainingData,
    config: TrainConfig,
    seed: int,
    score: Score,
) -> FitResult:
    """Train ``model`` and one context per data group (seen environment, starting at zero) jointly on
    ``data.train`` with ``config``'s steps, learning rate (cosine decay), minibatch, unroll and
    clipping; every ``config.eval_every`` steps (and at step 0) ``score`` the checkpoint, stopping
    after ``config.patience`` scores without a better one. ``model`` is left in its best state."""
    start_time = time.perf_counter()
    n_env, n_traj, n_frames = data.train.shape[:3]
    groups = torch.arange(n_env)
    starts = window_starts(n_frames, config.unroll)
    generator = torch.Generator().manual_seed(seed)
    contexts = nn.Parameter(torch.zeros(n_env, model.context_dim))
    tensors = [*model.parameters(), contexts]
    optimizer = torch.optim.Adam(tensors, lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.steps, eta_min=config.lr * config.final_lr_ratio
    )

    def checkpoint() -> float:
        value = score(model, contexts.detach())
        return value if math.isfinite(value) else math.inf

    best_score, best_step, stale = checkpoint(), 0, 0
    best_state, best_contexts = copy.deepcopy(model.state_dict()), contexts.detach().clone()
    for step in range(1, config.steps + 1):
        traj = torch.randint(n_traj, (n_env, config.batch_size), generator=generator)
        first = torch.randint(starts, (n_env, config.batch_size), generator=generator)
        windows = gather_windows(data.train, groups, traj, first, config.unroll)
        loss = window_loss(adapter, model.experts(contexts), windows, data.scale, data.dt).mean()
        loss = loss + model.penalty(contexts)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tensors, config.grad_clip)
        optimizer.step()
        schedule.step()
        if step % config.eval_every == 0 or step == config.steps:
            value = checkpoint()
            if value < best_score:
                best_score, best_step, stale = value, step, 0
                best_state, best_contexts = copy.deepcopy(model.state_dict()), contexts.detach().clone()
            else:
                stale += 1
                if stale >= config.patience:
                    break
    model.load_state_dict(best_state)
    return FitResult(best_contexts, best_score, best_step, time.perf_counter() - start_time)


def observed_windows(frames: torch.Tensor, unroll: int) -> torch.Tensor:
    """Every window of ``unroll`` steps in observed frames ``[E, L, *state]``:
    ``[E, L - unroll, unroll + 1, *state]``."""
    n_env, length = frames.shape[:2]
    count = window_starts(length, unroll)
    first = torch.arange(count).expand(n_env, -1)
    return gather_windows(frames[:, None], torch.arange(n_env), torch.zeros_like(first), first, unroll)


def adapt_contexts(
    model: ContextModel,
    adapter: ArchitectureAdapter,
    frames: torch.Tensor,
    start: torch.Tensor,
    scale: ChannelScale,
    dt: float,
    *,
    steps: int,
    lr: float,
    unroll: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Contexts ``[E, d]`` for E environments from their observed ``frames`` ``[E, L, *state]`` (L >= 2),
    each started at ``start`` (``[d]``) and fitted by Adam with the shared tensors frozen; returns
    the kept contexts and each environment's loss on the frames before and after."""
    if frames.shape[1] < 2:
        raise ConfigError(f"fitting a context needs at least 2 observed frames; got L={frames.shape[1]}")
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"context adaptation needs a positive number of steps, got {steps!r}")
    windows = observed_windows(frames, min(unroll, frames.shape[1] - 1))
    contexts = nn.Parameter(start.detach().expand(len(frames), -1).clone())
    optimizer = torch.optim.Adam([contexts], lr=lr)

    def losses() -> torch.Tensor:
        fit = window_loss(adapter, model.experts(contexts), windows, scale, dt)
        return torch.where(torch.isfinite(fit), fit, torch.full_like(fit, math.inf))

    frozen = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        loss = losses()
        first = best = loss.detach()
        kept = contexts.detach().clone()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            (loss.masked_fill(~torch.isfinite(loss), 0).sum() + model.penalty(contexts)).backward()
            optimizer.step()
            loss = losses()  # at the stepped contexts: kept if better, and the next step's gradient
            with torch.no_grad():
                better = loss.detach() < best
                kept = torch.where(better[:, None], contexts.detach(), kept)
                best = torch.where(better, loss.detach(), best)
    finally:
        for p, flag in zip(model.parameters(), frozen, strict=True):
            p.requires_grad_(flag)
    return kept, first, best
