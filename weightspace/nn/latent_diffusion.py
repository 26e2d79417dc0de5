"""Latent diffusion: the diffusion objective and DDIM on a :class:`LatentModel`, with the network left open.

The network predicts the noise (``prediction = "epsilon"``, DynaDiff's choice and the default), the
clean latent (``x0``) or the velocity (``v``). DDIM's x0 estimates are bounded by ``clip_sample``
standard deviations. :class:`LatentDiffusion` leaves the network to its subclasses, so that
denoisers of any shape (a DiT over latent tokens, an MLP over flattened weights) share the
objective and the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from weightspace.components import Context
from weightspace.config import require_positive
from weightspace.nn.diffusion import PREDICTIONS, NoiseSchedule, Prediction, ddim_sample, diffusion_loss
from weightspace.nn.latent_model import GuidanceConfig, LatentModel


@dataclass(frozen=True)
class DiffusionConfig(GuidanceConfig):
    schedule: Literal["cosine", "linear"] = "cosine"
    train_steps: int = 1000
    """Discrete diffusion timesteps of the objective."""
    sample_steps: int = 50
    """DDIM steps when sampling."""
    clip_sample: float = 4.0
    """Bound on DDIM's x0 estimates, in units of the latents' std (0: no bound)."""
    prediction: Prediction = "epsilon"
    """What the denoiser predicts: ``epsilon``, ``x0`` or ``v``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "train_steps", "sample_steps")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")


class LatentDiffusion(LatentModel):
    """A diffusion model over standardized latent tokens, sampled by DDIM; subclasses pick the network."""

    def __init__(self, config: DiffusionConfig, context: Context) -> None:
        super().__init__(config, context)
        self.schedule = NoiseSchedule(config.schedule, config.train_steps)

    def training_loss(self, latents: torch.Tensor, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x0, condition, regression = self.training_targets(latents, condition, generator)
        loss = diffusion_loss(
            lambda x, t: self.denoiser(x, t, condition), x0, self.schedule, generator, self.config.prediction
        )
        return loss + regression

    def sample(self, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        with torch.no_grad():
            x = ddim_sample(
                self.guided(condition),
                (condition.shape[0], *self.latent_shape),
                self.schedule,
                self.config.sample_steps,
                generator,
                condition.device,
                self.config.clip_sample or None,
                self.config.prediction,
            )
        return self.sampled_latents(x, condition)
