"""Reward fine-tuning of a flow by adjoint matching (Domingo-Enrich, Drozdzal, Karrer and Chen,
"Adjoint Matching: Fine-tuning Flow and Diffusion Generative Models with Memoryless Stochastic
Optimal Control", ICLR 2025).

Given a pretrained velocity field ``v_base`` along straight paths (x_t = (1 - t) x0 + t x1, as
:class:`weightspace.nn.latent_flow.LatentFlow` learns it) and a differentiable reward ``r``, the
tuned field ``v`` is trained so that its samples follow ``p_base(x1) exp(lambda r(x1))`` (up to a
constant): the reward tilts the pretrained distribution, and the tilt is the only change, so with a
flat reward the tuned model is the pretrained one. Rules of the method:

- **Memoryless noise.** Trajectories are drawn from the SDE ``dX = b(X, t) dt + sigma(t) dB`` with
  ``b = 2 v - X / t`` and ``sigma(t)^2 = 2 (1 - t) / t``, which has the flow's marginals and makes
  X_1 independent of X_0. Without that independence the tuned model would target the tilt times a
  value-function bias of the starting noise. The drift is singular at t = 0, so the first step
  from the source is the flow's deterministic Euler step (the ODE and the SDE share marginals).
- **Lean adjoint.** Along each trajectory (detached), ``a(1) = -lambda grad r(X_1)`` and
  ``da/dt = -a^T d b_base / dx`` backward in time: vector-Jacobian products of the *pretrained*
  drift only, no gradient through the tuned model or the sampler.
- **Regression.** The control ``u = (b - b_base) / sigma = 2 (v - v_base) / sigma`` regresses onto
  ``-sigma a`` at every interior time of the grid: ``|| 2 (v - v_base) / sigma + sigma a ||^2``.
  Its optimum is the tilted distribution's flow; being a regression onto a fixed target, it stays
  near the pretrained field where the reward has nothing to say.

After tuning, the field is sampled like any flow (the ODE included): the memoryless noise is only
needed to learn it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from weightspace.config import MAX_COUNT
from weightspace.errors import ConfigError

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(x [B, ...], t [B] in [0, 1]) -> dx/dt [B, ...]``."""


@dataclass(frozen=True)
class AdjointMatchingConfig:
    """How a flow is tuned toward a reward. The defaults are the ``adjoint-matching`` method's, chosen on
    the validation environments of the Lotka-Volterra flow run (benchmarks/matrices/adjoint-matching-settings.toml)."""

    steps: int = 10
    """Optimizer steps (each on a fresh batch of trajectories)."""
    batch: int = 4
    """Trajectories of the memoryless SDE per step."""
    sample_steps: int = 10
    """Euler-Maruyama steps of a trajectory (the grid the adjoint and the loss use)."""
    lr: float = 1e-3
    """Adam's learning rate for the tuned field."""
    reward_scale: float = 1.0
    """lambda: the target is p_base(x) exp(lambda r(x))."""
    grad_clip: float = 1.0
    """Gradient-norm bound of each step."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "sample_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_COUNT:
                raise ConfigError(f"adjoint matching: {name} must be an integer in [1, {MAX_COUNT}], got {value!r}")
        if self.sample_steps < 2:
            raise ConfigError(
                f"adjoint matching: sample_steps must be >= 2 (the first is deterministic), got {self.sample_steps}"
            )
        for name in ("lr", "reward_scale", "grad_clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ConfigError(f"adjoint matching: {name} must be a positive finite number, got {value!r}")


def memoryless_sigma(t: torch.Tensor) -> torch.Tensor:
    """The memoryless noise level of straight paths, ``sqrt(2 (1 - t) / t)``."""
    return (2 * (1 - t) / t).sqrt()


def _drift(velocity: Velocity, x: torch.Tensor, t: float) -> torch.Tensor:
    tt = torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device)
    return 2 * velocity(x, tt) - x / t


def sample_memoryless(
    velocity: Velocity, x0: torch.Tensor, times: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """A path ``[K + 1, B, ...]`` of the memoryless SDE on the grid ``times`` (0 = t_0 < ... < t_K = 1),
    from the source samples ``x0``: the flow's Euler step to t_1, then Euler-Maruyama."""
    with torch.no_grad():
        path = [x0, x0 + float(times[1]) * velocity(x0, torch.zeros(len(x0), dtype=x0.dtype, device=x0.device))]
        for k in range(1, len(times) - 1):
            t, h = float(times[k]), float(times[k + 1] - times[k])
            noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
            x = path[-1]
            path.append(x + h * _drift(velocity, x, t) + float(memoryless_sigma(times[k])) * h**0.5 * noise)
    return torch.stack(path)


def lean_adjoint(
    base: Velocity, path: torch.Tensor, times: torch.Tensor, reward: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """The lean adjoint ``[K + 1, B, ...]`` along ``path``: ``-grad reward`` at t = 1, integrated
    backward with the pretrained drift's vector-Jacobian products (entry 0 is unused)."""
    x1 = path[-1].detach().requires_grad_(True)
    with torch.enable_grad():
        value = reward(x1).sum()
        grad = torch.autograd.grad(value, x1, allow_unused=True)[0] if value.requires_grad else None
    adjoint = [torch.zeros_like(x1) if grad is None else -grad]  # a reward that ignores x1 has no gradient
    for k in range(len(times) - 2, 0, -1):
        t, h = float(times[k]), float(times[k + 1] - times[k])
        x = path[k].detach().requires_grad_(True)
        with torch.enable_grad():
            (vjp,) = torch.autograd.grad(_drift(base, x, t), x, grad_outputs=adjoint[-1])
        adjoint.append(adjoint[-1] + h * vjp)
    adjoint.append(torch.zeros_like(adjoint[-1]))
    return torch.stack(adjoint[::-1])


def adjoint_matching_loss(
    tuned: Velocity, base: Velocity, path: torch.Tensor, adjoint: torch.Tensor, times: torch.Tensor
) -> torch.Tensor:
    """``mean || 2 (v - v_base) / sigma + sigma a ||^2`` over the grid's interior times (t = 0, where
    sigma is infinite, and t = 1, where it is 0, carry no control) and the batch, all in one call
    of each field."""
    interior, b = times[1:-1], path.shape[1]
    x = path[1:-1].flatten(0, 1)
    t = interior.repeat_interleave(b).to(x.dtype)
    with torch.no_grad():
        v_base = base(x, t)
    sigma = memoryless_sigma(t).view(-1, *([1] * (x.dim() - 1)))
    residual = 2 * (tuned(x, t) - v_base) / sigma + sigma * adjoint[1:-1].flatten(0, 1)
    return residual.pow(2).flatten(1).sum(dim=1).mean()


def adjoint_matching(
    model: nn.Module,
    velocity: Callable[[nn.Module], Velocity],
    source: Callable[[int, torch.Generator], torch.Tensor],
    reward: Callable[[torch.Tensor], torch.Tensor],
    config: AdjointMatchingConfig,
    generator: torch.Generator,
) -> tuple[nn.Module, list[float]]:
    """A copy of ``model`` tuned toward ``reward`` (``x1 [B, ...] -> [B]``, to maximize), and the loss
    of each step. ``velocity(module)`` is a module's velocity field; ``source(n, generator)`` draws
    the flow's starting samples. ``model`` itself is left as it was (it is the pretrained field the
    tuned one is regularized toward)."""
    base_model = model.eval()
    tuned_model = copy.deepcopy(model).train()
    base, tuned = velocity(base_model), velocity(tuned_model)
    parameters = [p for p in tuned_model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=config.lr)
    times = torch.linspace(0.0, 1.0, config.sample_steps + 1)
    scaled = lambda x: config.reward_scale * reward(x)  # noqa: E731
    losses = []
    for _ in range(config.steps):
        path = sample_memoryless(tuned, source(config.batch, generator), times, generator)
        adjoint = lean_adjoint(base, path, times, scaled)
        if not torch.isfinite(adjoint).all():
            raise ConfigError("adjoint matching: the reward's gradient is not finite on the sampled latents")
        loss = adjoint_matching_loss(tuned, base, path, adjoint, times)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(parameters, config.grad_clip)
        optimizer.step()
        losses.append(float(loss.detach()))
    return tuned_model.eval(), losses
