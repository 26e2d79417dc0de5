"""The ``dit-diffusion`` generator: a DiT denoiser trained with a diffusion objective, sampled by DDIM.

The denoiser predicts the noise (``prediction = "epsilon"``, the paper's choice and the default), the
clean latent (``x0``) or the velocity (``v``).

Latents are centred on the zoo's mean latent and divided, coordinate by coordinate, by the standard
deviation of what remains (buffers fitted once on the training latents), so the diffusion runs at
unit variance on what distinguishes experts: zoo experts descend from one base, and their latents
differ from each other far less than tokens differ from each other.

Classifier-free guidance: during training the condition is replaced by a learned null condition
with probability ``condition_dropout``; sampling mixes the conditional and unconditional
predictions with ``guidance`` (1 = conditional only). DDIM's x0 estimates are bounded by
``clip_sample`` standard deviations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from weightspace.components import Context, Generator
from weightspace.config import require_positive
from weightspace_dynadiff.diffusion import PREDICTIONS, NoiseSchedule, Prediction, ddim_sample, diffusion_loss
from weightspace_dynadiff.dit import DiT


@dataclass(frozen=True)
class DiTDiffusionConfig:
    hidden: int = 128
    depth: int = 4
    heads: int = 4
    schedule: Literal["cosine", "linear"] = "cosine"
    train_steps: int = 1000
    """Discrete diffusion timesteps of the objective."""
    sample_steps: int = 50
    """DDIM steps when sampling."""
    condition_dropout: float = 0.1
    guidance: float = 1.0
    clip_sample: float = 4.0
    """Bound on DDIM's x0 estimates, in units of the latents' std (0: no bound)."""
    prediction: Prediction = "epsilon"
    """What the denoiser predicts: ``epsilon``, ``x0`` or ``v``."""

    def __post_init__(self) -> None:
        require_positive(self, "hidden", "depth", "heads", "train_steps", "sample_steps", "guidance")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} must be divisible by heads {self.heads}")
        if not 0 <= self.condition_dropout < 1:
            raise ValueError("condition_dropout must be in [0, 1)")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")


class DiTDiffusion(Generator):
    name = "dit-diffusion"
    Config = DiTDiffusionConfig

    def __init__(self, config: DiTDiffusionConfig, context: Context) -> None:
        super().__init__(config, context)
        self.denoiser = DiT(
            context.latent_tokens, context.latent_dim, context.condition_dim, config.hidden, config.depth, config.heads
        )
        self.null_condition = nn.Parameter(torch.zeros(context.condition_dim))
        self.register_buffer("latent_mean", torch.zeros(context.latent_tokens, context.latent_dim))
        self.register_buffer("latent_std", torch.ones(context.latent_tokens, context.latent_dim))
        self.schedule = NoiseSchedule(config.schedule, config.train_steps)

    def fit_scale(self, latents: torch.Tensor) -> None:
        self.latent_mean.copy_(latents.mean(dim=0))
        spread = (latents - self.latent_mean).std(dim=0)
        self.latent_std.copy_(spread.clamp_min(1e-3 * float(spread.max())))

    def training_loss(self, latents: torch.Tensor, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        drop = torch.rand(condition.shape[0], generator=generator).to(condition.device) < self.config.condition_dropout
        condition = torch.where(drop[:, None], self.null_condition.expand_as(condition), condition)
        return diffusion_loss(
            lambda x, t: self.denoiser(x, t, condition),
            (latents - self.latent_mean) / self.latent_std,
            self.schedule,
            generator,
            self.config.prediction,
        )

    def sample(self, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, guidance = condition.shape[0], self.config.guidance
        null = self.null_condition.expand_as(condition)

        def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if guidance == 1.0:
                return self.denoiser(x, t, condition)
            both = self.denoiser(torch.cat([x, x]), torch.cat([t, t]), torch.cat([condition, null]))
            cond, uncond = both.chunk(2)
            return uncond + guidance * (cond - uncond)

        shape = (n, self.context.latent_tokens, self.context.latent_dim)
        with torch.no_grad():
            clip = self.config.clip_sample or None
            x = ddim_sample(
                denoise,
                shape,
                self.schedule,
                self.config.sample_steps,
                generator,
                condition.device,
                clip,
                self.config.prediction,
            )
        return x * self.latent_std + self.latent_mean
