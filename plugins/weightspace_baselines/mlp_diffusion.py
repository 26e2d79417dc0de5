"""The ``mlp-diffusion`` generator: diffusion over flattened weights with an MLP denoiser.

The generator of "Task-Conditioned Diffusion Models in Weight Space for Rapid Transfer": the latent
tokens (with the ``identity`` encoder, the normalized weights themselves) are flattened into one
vector per network, standardized coordinate by coordinate (the :class:`LatentModel` buffers), and
denoised by an MLP shaped like a U-Net: residual blocks narrowing by half per level, then widening
again with a skip connection from the matching level; every block is layer-normed and FiLM-
conditioned (a scale and a shift) on the timestep embedding plus the condition vector (a task
descriptor, e.g. the ``descriptor`` prompter). Objective and DDIM sampler are the latent
diffusion's. Its intended use is initialization: sample, then fine-tune (``evaluate --method
diffusion-init``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from weightspace.config import require_positive
from weightspace.nn.dit import timestep_embedding
from weightspace.nn.latent_diffusion import DiffusionConfig, LatentDiffusion


@dataclass(frozen=True)
class MLPDiffusionConfig(DiffusionConfig):
    hidden: int = 256
    """Width of the outermost level."""
    levels: int = 2
    """Levels of the U-Net; each halves the width on the way down."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "hidden", "levels")
        if self.hidden >> (self.levels - 1) < 4:
            raise ValueError(f"hidden {self.hidden} is too narrow for {self.levels} levels")


class FiLMBlock(nn.Module):
    """``x + MLP(FiLM(LayerNorm(x), c))`` at a fixed width, mapped to ``out`` features."""

    def __init__(self, width: int, out: int, cond: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.film = nn.Linear(cond, 2 * width)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.out = nn.Linear(width, out) if out != width else nn.Identity()

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(c).chunk(2, dim=-1)
        return self.out(x + self.mlp(self.norm(x) * (1 + scale) + shift))


class MLPUNet(nn.Module):
    """``forward(x [B, N, z], t [B], condition [B, c]) -> [B, N, z]`` through an MLP on the flattened ``x``."""

    def __init__(self, tokens: int, latent_dim: int, condition_dim: int, hidden: int, levels: int) -> None:
        super().__init__()
        self.shape = (tokens, latent_dim)
        widths = [hidden >> i for i in range(levels)]
        self.hidden = hidden
        self.time = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.condition = nn.Sequential(nn.Linear(condition_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.input = nn.Linear(tokens * latent_dim, hidden)
        self.down = nn.ModuleList(FiLMBlock(w, widths[min(i + 1, levels - 1)], hidden) for i, w in enumerate(widths))
        self.up = nn.ModuleList(
            FiLMBlock(w, widths[max(i - 1, 0)], hidden) for i, w in reversed(list(enumerate(widths)))
        )
        self.output = nn.Linear(hidden, tokens * latent_dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        c = self.time(timestep_embedding(t, self.hidden)) + self.condition(condition)
        h, skips = self.input(x.flatten(1)), []
        for block in self.down:
            skips.append(h)
            h = block(h, c)
        for block in self.up:  # each level adds the input of its mirror on the way down
            h = block(h + skips.pop(), c)
        return self.output(h).view(-1, *self.shape)


class MLPDiffusion(LatentDiffusion):
    name = "mlp-diffusion"
    Config = MLPDiffusionConfig

    def build_denoiser(self) -> nn.Module:
        c, ctx = self.config, self.context
        return MLPUNet(ctx.latent_tokens, ctx.latent_dim, ctx.condition_dim, c.hidden, c.levels)
