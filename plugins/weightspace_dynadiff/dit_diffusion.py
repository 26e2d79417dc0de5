"""The ``dit-diffusion`` generator: DynaDiff's latent diffusion, with the DiT denoiser.

Objective, sampler and options are those of :class:`weightspace.nn.latent_diffusion.LatentDiffusion`
(the network predicts the noise by default, the paper's choice); this class adds the network, a
:class:`weightspace.nn.dit.DiT` over the latent tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from weightspace.nn.dit import DiT, require_dit_shape
from weightspace.nn.latent_diffusion import DiffusionConfig, LatentDiffusion


@dataclass(frozen=True)
class DiTDiffusionConfig(DiffusionConfig):
    hidden: int = 128
    depth: int = 4
    heads: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        require_dit_shape(self)


class DiTDiffusion(LatentDiffusion):
    name = "dit-diffusion"
    Config = DiTDiffusionConfig

    def build_denoiser(self) -> nn.Module:
        c, ctx = self.config, self.context
        return DiT(ctx.latent_tokens, ctx.latent_dim, ctx.condition_dim, c.hidden, c.depth, c.heads)
