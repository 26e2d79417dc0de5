"""The ``gaussian`` generator: a conditional Gaussian over latent tokens.

Latents are first standardized, coordinate by coordinate, with the mean and spread of the zoo's
training latents (buffers set once by ``fit_scale``). The standardized latent of an expert is
modelled as ``N(A c + b, diag(s^2))``: its mean a linear map of the prompter's condition ``c``, its
standard deviation ``s`` a learned vector shared by all conditions. Training minimises the
negative log-likelihood (up to a constant), jointly with the prompter; sampling draws
``A c + b + temperature * s * eps``. No denoising steps: the smallest generator that reads its prompt,
and a floor that a diffusion or flow generator should beat on environments the zoo has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from weightspace.components import Context, Generator

LOG_STD_RANGE = (-7.0, 2.0)


@dataclass(frozen=True)
class GaussianConfig:
    temperature: float = 1.0
    """Scales the learned spread when sampling (0: every sample is the mean for its condition)."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must not be negative, got {self.temperature}")


class GaussianGenerator(Generator):
    name = "gaussian"
    Config = GaussianConfig

    def __init__(self, config: GaussianConfig, context: Context) -> None:
        super().__init__(config, context)
        shape = (context.latent_tokens, context.latent_dim)
        self.mean = nn.Linear(context.condition_dim, shape[0] * shape[1])
        self.log_std = nn.Parameter(torch.zeros(shape))
        self.register_buffer("latent_mean", torch.zeros(shape))
        self.register_buffer("latent_std", torch.ones(shape))

    def fit_scale(self, latents: torch.Tensor) -> None:
        self.latent_mean.copy_(latents.mean(dim=0))
        spread = (latents - self.latent_mean).std(dim=0, correction=0)
        self.latent_std.copy_(spread.clamp_min(max(1e-3 * float(spread.max()), 1e-8)))

    def _mean(self, condition: torch.Tensor) -> torch.Tensor:
        return self.mean(condition).view(len(condition), *self.latent_std.shape)

    def training_loss(self, latents: torch.Tensor, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = (latents - self.latent_mean) / self.latent_std
        log_std = self.log_std.clamp(*LOG_STD_RANGE)
        return (0.5 * ((x - self._mean(condition)) / log_std.exp()).pow(2) + log_std).mean()

    def sample(self, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mean = self._mean(condition)
        noise = torch.randn(mean.shape, generator=generator).to(mean.device)
        x = mean + self.config.temperature * self.log_std.clamp(*LOG_STD_RANGE).exp() * noise
        return x * self.latent_std + self.latent_mean
