"""What every conditional generator over latent tokens shares: standardized latents and guidance.

A :class:`LatentModel` owns a network ``denoiser(x [B, N, z], t [B], condition [B, c])`` whose
output has the shape of ``x`` (noise, clean latent or velocity, as the objective says). The
objective and the sampler are its subclasses' business (diffusion:
:mod:`weightspace.nn.latent_diffusion`; flow matching is another); the network is chosen by
:meth:`LatentModel.build_denoiser`. What it adds to all of them:

- Latents are centred on the zoo's mean latent and divided, coordinate by coordinate, by the
  standard deviation of what remains (buffers fitted once on the training latents), so the model
  works at unit variance on what distinguishes experts: zoo experts descend from one base, and
  their latents differ from each other far less than tokens differ from each other.
- Classifier-free guidance, off by default: during training the condition is replaced by a learned
  null condition with probability ``condition_dropout``; at sampling the conditional and
  unconditional outputs are mixed with ``guidance`` (1 = conditional only). The defaults (no
  dropout, guidance 1) train no null condition, since sampling at guidance 1 never reads it: a
  guidance other than 1 is a setting to choose on validation environments, and needs a dropout.
- Optionally (``mean_head`` > 0, off in the paper's DynaDiff) an MLP regresses the environment's
  mean standardized latent from the condition, and the objective models only what remains, as
  CorrDiff does for weather (Mardani et al., 2023: regression for the mean, diffusion for the rest).
  Why: zoo latents of different environments are far apart in a space of a thousand dimensions, so
  a noised latent names its environment at all but the noisiest timesteps, and the optimal denoiser
  gains from the condition only there. The denoiser's loss barely rewards reading the prompt, so a
  trained denoiser can ignore it and sample experts of the wrong environment; a regression head has
  the full signal. It is off by default because the head also extrapolates the prompt to unseen
  environments, where sampling without it hedges across candidates: out of domain it can cost more
  than it gains.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from weightspace.components import Context, Generator
from weightspace.config import require_positive


@dataclass(frozen=True)
class GuidanceConfig:
    condition_dropout: float = 0.0
    """Share of training conditions replaced by the null condition (classifier-free guidance)."""
    guidance: float = 1.0
    """Weight of the conditional output against the unconditional one at sampling (1: conditional only)."""
    mean_head: int = 0
    """Hidden width of the MLP regressing each environment's mean latent from the condition (0: none)."""

    def __post_init__(self) -> None:
        require_positive(self, "guidance")
        if self.mean_head < 0:
            raise ValueError(f"mean_head must be >= 0 (0: no mean head), got {self.mean_head}")
        if not 0 <= self.condition_dropout < 1:
            raise ValueError("condition_dropout must be in [0, 1)")
        if self.guidance != 1.0 and self.condition_dropout == 0:
            raise ValueError(
                f"guidance {self.guidance} mixes in the unconditional output, which is learned only with "
                "condition_dropout > 0 (e.g. 0.1)"
            )


class LatentModel(Generator):
    """Base of generators whose network maps ``(x, t, condition)`` to a tensor shaped like ``x``."""

    def __init__(self, config: GuidanceConfig, context: Context) -> None:
        super().__init__(config, context)
        self.denoiser = self.build_denoiser()
        self.null_condition = nn.Parameter(torch.zeros(context.condition_dim))
        width, size = config.mean_head, context.latent_tokens * context.latent_dim
        self.mean_head = (
            nn.Sequential(nn.Linear(context.condition_dim, width), nn.GELU(), nn.Linear(width, size)) if width else None
        )
        self.register_buffer("latent_mean", torch.zeros(context.latent_tokens, context.latent_dim))
        self.register_buffer("latent_std", torch.ones(context.latent_tokens, context.latent_dim))

    @abstractmethod
    def build_denoiser(self) -> nn.Module:
        """The network ``(x [B, N, z], t [B], condition [B, c]) -> [B, N, z]``."""

    @property
    def latent_shape(self) -> tuple[int, int]:
        return self.context.latent_tokens, self.context.latent_dim

    def fit_scale(self, latents: torch.Tensor) -> None:
        self.latent_mean.copy_(latents.mean(dim=0))
        spread = (latents - self.latent_mean).std(dim=0)
        self.latent_std.copy_(spread.clamp_min(1e-3 * float(spread.max())))

    def standardize(self, latents: torch.Tensor) -> torch.Tensor:
        return (latents - self.latent_mean) / self.latent_std

    def unstandardize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.latent_std + self.latent_mean

    def regressed_mean(self, condition: torch.Tensor) -> torch.Tensor:
        """The mean head's standardized latent ``[B, N, z]`` for each condition (zeros without a head)."""
        if self.mean_head is None:
            return condition.new_zeros(condition.shape[0], *self.latent_shape)
        return self.mean_head(condition).view(condition.shape[0], *self.latent_shape)

    def training_targets(
        self, latents: torch.Tensor, condition: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What an objective models, from latents ``[B, N, z]`` and their conditions: the standardized
        latents less the regressed mean, the conditions after dropout, and the mean head's MSE (0
        without a head) for the objective to add to its loss."""
        x = self.standardize(latents)
        mean = self.regressed_mean(condition)
        regression = (mean - x).pow(2).mean() if self.mean_head is not None else x.new_zeros(())
        return x - mean.detach(), self.drop_condition(condition, generator), regression

    def sampled_latents(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Latents from what the sampler produced (the inverse of :meth:`training_targets`)."""
        return self.unstandardize(x + self.regressed_mean(condition))

    def drop_condition(self, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The batch's conditions, each replaced by the null condition with probability ``condition_dropout``."""
        drop = torch.rand(condition.shape[0], generator=generator).to(condition.device) < self.config.condition_dropout
        return torch.where(drop[:, None], self.null_condition.expand_as(condition), condition)

    def guided(self, condition: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The network with ``condition`` bound and classifier-free guidance applied: ``(x, t) -> output``."""
        guidance, null = self.config.guidance, self.null_condition.expand_as(condition)

        def output(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if guidance == 1.0:
                return self.denoiser(x, t, condition)
            both = self.denoiser(torch.cat([x, x]), torch.cat([t, t]), torch.cat([condition, null]))
            cond, uncond = both.chunk(2)
            return uncond + guidance * (cond - uncond)

        return output
