"""The DiT denoiser: a transformer over latent tokens with adaLN-Zero conditioning (Peebles & Xie, 2023).

Each block modulates its two layer norms by a shift and scale computed from the conditioning vector
(timestep embedding + prompt), and gates its attention and MLP branches; the modulation layers start
at zero, so every block starts as the identity. This module is only the network; the diffusion
objective and the sampler are in :mod:`weightspace.nn.diffusion`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from weightspace.config import require_positive


def require_dit_shape(config: Any) -> None:
    """Raise ``ValueError`` unless the config's ``hidden``, ``depth`` and ``heads`` describe a DiT:
    all positive, and ``heads`` dividing ``hidden`` (attention splits the width between heads).

    The configs of generators with a DiT denoiser call this from ``__post_init__``."""
    require_positive(config, "hidden", "depth", "heads")
    if config.hidden % config.heads:
        raise ValueError(f"hidden {config.hidden} must be divisible by heads {config.heads}")


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``[B, dim]`` of (possibly fractional) timesteps ``[B]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, 4 * hidden), nn.GELU(approximate="tanh"), nn.Linear(4 * hidden, hidden)
        )
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c).chunk(6, dim=-1)
        h = modulate(self.norm1(x), shift1, scale1)
        x = x + gate1[:, None] * self.attn(h, h, h, need_weights=False)[0]
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class DiT(nn.Module):
    """``forward(x [B, N, z], t [B], condition [B, c]) -> epsilon [B, N, z]``."""

    def __init__(self, tokens: int, latent_dim: int, condition_dim: int, hidden: int, depth: int, heads: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.input = nn.Linear(latent_dim, hidden)
        self.position = nn.Parameter(0.02 * torch.randn(tokens, hidden))
        self.time = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.condition = nn.Sequential(nn.Linear(condition_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(DiTBlock(hidden, heads) for _ in range(depth))
        self.final_norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.output = nn.Linear(hidden, latent_dim)
        for layer in (self.final_modulation[1], self.output):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        c = self.time(timestep_embedding(t, self.hidden)) + self.condition(condition)
        h = self.input(x) + self.position
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_modulation(c).chunk(2, dim=-1)
        return self.output(modulate(self.final_norm(h), shift, scale))
