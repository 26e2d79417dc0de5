"""The ``flat-vae`` encoder: the paper's sequence baseline (DynaDiff, Table 8).

A network's normalized weights are flattened layer by layer (node group by node group, node by node)
into one vector, cut into fixed-length chunks (the tokens), and each chunk is projected to the
attention width plus a learned positional embedding. The rest mirrors ``graph-vae``: attention
blocks, a per-token latent (mean, log-variance), a mirrored decoder. What it lacks is the graph:
a token mixes the weights of neighbouring neurons, and its position, not its role, identifies it,
so nothing ties it to the network's permutation structure. The loss options (beta, lambda and the
function loss) are the same as ``graph-vae``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from weightspace.components import Context, Encoder
from weightspace.config import require_positive
from weightspace.nn.attention import AttentionVAEConfig, attention_stack


@dataclass(frozen=True)
class FlatVAEConfig(AttentionVAEConfig):
    chunk: int = 64
    """Weights per token."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "chunk")


class FlatVAE(Encoder):
    name = "flat-vae"
    Config = FlatVAEConfig

    def __init__(self, config: FlatVAEConfig, context: Context) -> None:
        super().__init__(config, context)
        groups = context.spec.groups
        self.shapes = [(g.n_nodes, g.feat_dim) for g in groups]
        self.n_weights = sum(n * f for n, f in self.shapes)
        self.n_tokens = math.ceil(self.n_weights / config.chunk)
        w = config.width
        self.input = nn.Linear(config.chunk, w)
        self.position = nn.Parameter(0.02 * torch.randn(self.n_tokens, w))
        self.encoder = attention_stack(w, config.heads, config.depth)
        self.to_latent = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, 2 * config.latent_dim))
        self.from_latent = nn.Linear(config.latent_dim, w)
        self.decoder = attention_stack(w, config.heads, config.depth)
        self.output = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, config.chunk))

    @property
    def latent_shape(self) -> tuple[int, int]:
        return self.n_tokens, self.config.latent_dim

    def encode(self, nodes: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        flat = torch.cat([x.flatten(1) for x in nodes], dim=1)
        flat = nn.functional.pad(flat, (0, self.n_tokens * self.config.chunk - self.n_weights))
        tokens = self.input(flat.view(flat.shape[0], self.n_tokens, self.config.chunk)) + self.position
        mean, logvar = self.to_latent(self.encoder(tokens)).chunk(2, dim=-1)
        return mean, logvar.clamp(-12.0, 8.0)

    def decode(self, latents: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = self.decoder(self.from_latent(latents) + self.position)
        flat = self.output(hidden).flatten(1)[:, : self.n_weights]
        parts = flat.split([n * f for n, f in self.shapes], dim=1)
        return tuple(p.view(-1, n, f) for p, (n, f) in zip(parts, self.shapes))
