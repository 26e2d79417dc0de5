"""Latent flow matching: straight paths and their sampler on a :class:`LatentModel`, with the network left open.

The approach of "Flows and Diffusions on the Neural Manifold": a network learns the velocity
``v(x_t, t | c) = x1 - x0`` along straight paths ``x_t = (1 - t) x0 + t x1`` from a source sample
``x0`` to a standardized latent ``x1``, with t uniform in [0, 1]; sampling integrates ``dx/dt = v``
from a source sample at t = 0 to t = 1 in ``sample_steps`` fixed steps (torchdiffeq's ``euler``,
``midpoint`` or ``rk4``; each step costs 1, 2 or 4 network calls).

The source is selectable:

- ``gaussian``: standard normal in the standardized latent space (as diffusion);
- ``init``: the distribution of latents of networks fresh from the architecture's own initializer,
  a diagonal Gaussian matching their per-coordinate mean and standard deviation (``fit_source``),
  so the flow carries initial weights to trained ones.

:meth:`LatentFlow.velocity` and :meth:`LatentFlow.source` are what reward fine-tuning
(:mod:`weightspace.nn.adjoint_matching`) needs of a flow: the velocity field in flow time and the
distribution it starts from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torchdiffeq import odeint

from weightspace.components import Context
from weightspace.config import require_positive
from weightspace.nn.latent_model import GuidanceConfig, LatentModel

TIME_SCALE = 1000.0
"""Flow time t in [0, 1] is embedded as t * TIME_SCALE, the range of diffusion timesteps the DiT's
sinusoidal embedding is made for."""

SOURCES = ("gaussian", "init")
SOLVERS = ("euler", "midpoint", "rk4")


@dataclass(frozen=True)
class FlowConfig(GuidanceConfig):
    source: Literal["gaussian", "init"] = "gaussian"
    sample_steps: int = 10
    solver: Literal["euler", "midpoint", "rk4"] = "midpoint"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "sample_steps")
        if self.source not in SOURCES:
            raise ValueError(f"source must be 'gaussian' or 'init', got {self.source!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be euler, midpoint or rk4, got {self.solver!r}")


class LatentFlow(LatentModel):
    """A flow over standardized latent tokens along straight paths; subclasses pick the network."""

    def __init__(self, config: FlowConfig, context: Context) -> None:
        super().__init__(config, context)
        self.register_buffer("source_mean", torch.zeros(context.latent_tokens, context.latent_dim))
        self.register_buffer("source_std", torch.ones(context.latent_tokens, context.latent_dim))

    def fit_source(self, latents: torch.Tensor) -> None:
        if self.config.source == "init":
            x = self.standardize(latents)
            self.source_mean.copy_(x.mean(dim=0))
            self.source_std.copy_(x.std(dim=0).clamp_min(1e-6))

    def source(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` samples ``[n, N, z]`` of the distribution at t = 0."""
        noise = torch.randn((n, *self.latent_shape), generator=generator).to(self.source_mean.device)
        return self.source_mean + self.source_std * noise

    def velocity(self, condition: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The velocity field with ``condition [B, c]`` bound (guidance applied): ``(x [B, N, z], t [B]
        in [0, 1]) -> [B, N, z]``."""
        guided = self.guided(condition)
        return lambda x, t: guided(x, TIME_SCALE * t)

    def training_loss(self, latents: torch.Tensor, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x1, condition, regression = self.training_targets(latents, condition, generator)
        x0 = self.source(len(x1), generator)
        t = torch.rand(len(x1), generator=generator).to(x1.device)
        xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * x1
        return (self.denoiser(xt, TIME_SCALE * t, condition) - (x1 - x0)).pow(2).mean() + regression

    def sample(self, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        velocity = self.velocity(condition)
        n = condition.shape[0]
        times = torch.linspace(0.0, 1.0, self.config.sample_steps + 1, device=condition.device)
        with torch.no_grad():
            path = odeint(
                lambda t, x: velocity(x, t.expand(n)), self.source(n, generator), times, method=self.config.solver
            )
        return self.sampled_latents(path[-1], condition)
