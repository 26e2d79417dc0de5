"""Train many experts at once as one stacked parameter tensor.

B experts of one architecture are trained together: their parameters are stacked ``{name: [B, ...]}``,
the loss of all of them is one ``vmap``-ed call (:meth:`ArchitectureAdapter.rollout`, an ensemble
``odeint`` for vector fields), and one Adam optimizer steps the stacked tensors. Adam, the learning
rate schedule and gradient clipping (per expert) are elementwise or per expert, and every expert
draws its minibatches from its own seeded generator, so an expert's result does not depend on
which experts it was trained with: training them in chunks of ``expert_batch`` (1 = a loop) gives
the same experts up to floating-point round-off. Which chunk size is fastest depends on the
architecture and the hardware (``benchmarks/expert_training.py``).

The loss is the mean squared error on per-channel normalized states over windows of ``unroll``
steps: one-step operators are unrolled autoregressively, vector fields are integrated over the
window (the trajectory fitting of the paper's Lotka-Volterra experts). Early stopping watches a
validation loss per expert and keeps each expert's best parameters; a stopped expert is no longer
run, so a chunk's step costs what its running experts do (architectures whose cost grows with the
number of experts, the operators, gain most).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from weightspace.architecture import ArchitectureAdapter
from weightspace.config import require_positive
from weightspace.data.trajectories import ChannelScale, gather_windows, window_starts
from weightspace.errors import ConfigError
from weightspace.graph import Params


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 500
    """Maximum optimizer steps."""
    lr: float = 1e-3
    """Peak learning rate (Adam), decayed by a cosine to ``lr * final_lr_ratio``."""
    final_lr_ratio: float = 0.05
    batch_size: int = 16
    """Windows per expert per step."""
    unroll: int = 1
    """Steps predicted per window: autoregressive steps for operators, frames integrated for ODEs."""
    grad_clip: float = 1.0
    """Maximum gradient norm per expert."""
    eval_every: int = 50
    """Steps between validation evaluations."""
    patience: int = 4
    """Evaluations without improvement after which an expert stops (its best parameters are kept)."""
    val_windows: int = 64
    """Validation windows per data group (evenly spaced over its validation trajectories)."""

    def __post_init__(self) -> None:
        require_positive(self, "steps", "lr", "batch_size", "unroll", "grad_clip", "eval_every", "patience")
        require_positive(self, "val_windows", "final_lr_ratio")


@dataclass(frozen=True)
class TrainingData:
    """Trajectories ``[G, n, T, *state]`` of G data groups (e.g. environments), for training and validation."""

    train: torch.Tensor
    val: torch.Tensor
    scale: ChannelScale
    dt: float


@dataclass(frozen=True)
class TrainResult:
    params: Params
    """Each expert's best parameters (by validation loss), stacked ``[B, ...]``."""
    val_loss: torch.Tensor
    """Best validation loss per expert ``[B]`` (normalized MSE; inf if never finite)."""
    train_loss: torch.Tensor
    """Mean training loss per expert over the evaluation interval that gave its best parameters."""
    best_step: torch.Tensor
    """Optimizer step of each expert's best parameters (0: its initial parameters)."""
    seconds: float
    val_curve: torch.Tensor
    """Validation loss per expert at every evaluation ``[n_evals + 1, B]``: before the first step,
    then every ``eval_every`` steps and at the last (NaN once the expert stopped early)."""
    curve_steps: list[int]
    """The optimizer steps of ``val_curve``'s rows."""


def train_experts(
    adapter: ArchitectureAdapter,
    init: Mapping[str, torch.Tensor],
    data: TrainingData,
    group: Sequence[int],
    seeds: Sequence[int],
    config: TrainConfig,
    *,
    expert_batch: int | None = None,
    advance: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train B experts from ``init`` (``{name: [B, ...]}``); expert b learns data group ``group[b]``
    with minibatches drawn from ``seeds[b]``. Experts are trained ``expert_batch`` at a time (all at
    once by default). ``advance(n)`` reports n expert-steps done."""
    n = next(iter(init.values())).shape[0]
    if len(group) != n or len(seeds) != n:
        raise ConfigError(f"{n} experts need {n} data groups and seeds, got {len(group)} and {len(seeds)}")
    chunk = n if expert_batch is None else expert_batch
    if chunk < 1:
        raise ConfigError(f"expert_batch must be at least 1, got {chunk}")
    start = time.perf_counter()
    parts = []
    for lo in range(0, n, chunk):
        idx = slice(lo, lo + chunk)
        sub = {k: v[idx] for k, v in init.items()}
        parts.append(_train_chunk(adapter, sub, data, list(group[idx]), list(seeds[idx]), config, advance))
    params = {k: torch.cat([p[0][k] for p in parts]) for k in init}
    val, train, best = (torch.cat([p[i] for p in parts]) for i in (1, 2, 3))
    steps = [0, *range(config.eval_every, config.steps, config.eval_every), config.steps]
    curve = torch.full((len(steps), n), math.nan)
    lo = 0
    for part in parts:
        curve[: len(part[4]), lo : lo + part[4].shape[1]] = part[4]
        lo += part[4].shape[1]
    return TrainResult(params, val, train, best, time.perf_counter() - start, curve, steps)


def window_loss(
    adapter: ArchitectureAdapter,
    params: Mapping[str, torch.Tensor],
    windows: torch.Tensor,
    scale: ChannelScale,
    dt: float,
) -> torch.Tensor:
    """Normalized MSE per expert ``[B]`` of predicting windows ``[B, M, k + 1, *state]`` from their first frame."""
    steps = windows.shape[2] - 1
    pred = adapter.rollout(params, windows[:, :, 0], steps, dt)[:, :, 1:]
    err = scale.normalize(pred) - scale.normalize(windows[:, :, 1:])
    return err.pow(2).flatten(1).mean(dim=1)


def validation_windows(data: TrainingData, groups: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """A fixed, evenly spaced set of validation windows per expert ``[B, M, unroll + 1, *state]``."""
    n_val, n_frames = data.val.shape[1], data.val.shape[2]
    starts = window_starts(n_frames, config.unroll)
    total = n_val * starts
    pick = torch.linspace(0, total - 1, min(total, config.val_windows)).round().long()
    traj, start = (pick // starts).expand(len(groups), -1), (pick % starts).expand(len(groups), -1)
    return gather_windows(data.val, groups, traj, start, config.unroll)


def _train_chunk(
    adapter: ArchitectureAdapter,
    init: Mapping[str, torch.Tensor],
    data: TrainingData,
    group: list[int],
    seeds: list[int],
    config: TrainConfig,
    advance: Callable[[int], None] | None,
) -> tuple[Params, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    b = len(group)
    device = data.train.device
    groups = torch.tensor(group, device=device)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    n_traj, n_frames = data.train.shape[1], data.train.shape[2]
    starts = window_starts(n_frames, config.unroll)
    val_windows = validation_windows(data, groups, config)

    params = {k: v.detach().clone().requires_grad_(True) for k, v in init.items()}
    best = {k: v.detach().clone() for k, v in init.items()}
    optimizer = torch.optim.Adam(params.values(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.steps, eta_min=config.lr * config.final_lr_ratio
    )

    def live(active: torch.Tensor) -> Params:
        """The parameters of the ``active`` experts (all: the leaves themselves)."""
        return params if len(active) == b else {k: v[active.to(device)] for k, v in params.items()}

    def validate(active: torch.Tensor) -> torch.Tensor:
        """Validation loss per expert ``[B]``: inf where not finite, NaN for a stopped expert."""
        with torch.no_grad():
            loss = window_loss(adapter, live(active), val_windows[active.to(device)], data.scale, data.dt).cpu()
        val = torch.full((b,), math.nan)
        val[active] = torch.where(torch.isfinite(loss), loss, torch.full_like(loss, math.inf))
        return val

    best_val = validate(torch.arange(b))
    curve = [best_val]
    best_train = torch.full((b,), math.nan)
    best_step = torch.zeros(b, dtype=torch.long)
    stale = torch.zeros(b, dtype=torch.long)
    stopped = torch.zeros(b, dtype=torch.bool)
    running = torch.zeros(b)

    for step in range(1, config.steps + 1):
        # a stopped expert keeps its best parameters: only the others are run (the optimizer still
        # steps a stopped one's rows, with zero gradients, but they are never read again)
        active = (~stopped).nonzero().squeeze(1)
        drawn = [generators[i] for i in active.tolist()]
        traj = torch.stack([torch.randint(n_traj, (config.batch_size,), generator=g) for g in drawn])
        start = torch.stack([torch.randint(starts, (config.batch_size,), generator=g) for g in drawn])
        windows = gather_windows(
            data.train, groups[active.to(device)], traj.to(device), start.to(device), config.unroll
        )
        loss = window_loss(adapter, live(active), windows, data.scale, data.dt)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # experts are independent: each gets the gradient of its own loss
        _clip_per_expert(params, config.grad_clip)
        optimizer.step()
        schedule.step()
        running[active] += loss.detach().cpu()
        if advance is not None:
            advance(len(active))

        if step % config.eval_every == 0 or step == config.steps:
            interval = (step - 1) % config.eval_every + 1
            val = validate(active)
            curve.append(val)
            better = (val < best_val) & ~stopped
            for k in best:
                mask = better.to(device).view(-1, *([1] * (best[k].dim() - 1)))
                best[k] = torch.where(mask, params[k].detach(), best[k])
            best_val = torch.where(better, val, best_val)
            best_train = torch.where(better, running / interval, best_train)
            best_step = torch.where(better, torch.full_like(best_step, step), best_step)
            stale = torch.where(better, torch.zeros_like(stale), stale + 1)
            stopped |= stale >= config.patience
            running.zero_()
            if stopped.all():
                break
    return best, best_val, best_train, best_step, torch.stack(curve)


def _clip_per_expert(params: Mapping[str, torch.Tensor], max_norm: float) -> None:
    """Scale each expert's gradient so that its norm over all its parameters is at most ``max_norm``."""
    grads = [p.grad for p in params.values() if p.grad is not None]
    if not grads:
        return
    sq = sum(g.abs().pow(2).flatten(1).sum(dim=1) for g in grads)
    factor = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(factor.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))
