"""The ``identity`` encoder: no compression; the normalized weight graph is the generator's input.

Each node is one token; groups with fewer incoming weights are zero-padded to the widest group's
feature size (and the padding dropped on decoding). With ``dit-diffusion`` this is the paper's
single-stage graph diffusion (DynaDiff, Table 7); with ``mlp-diffusion`` the generator sees the
flattened, per-coordinate standardized weights. It has no parameters, so the encoder stage has
nothing to train (the held-out reconstruction error is exactly zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from weightspace.components import Context, Encoder

ZERO_VARIANCE_LOGVAR = -30.0
"""The log-variance reported for the (deterministic) latents."""


@dataclass(frozen=True)
class IdentityConfig:
    pass


class IdentityEncoder(Encoder):
    name = "identity"
    Config = IdentityConfig

    def __init__(self, config: IdentityConfig, context: Context) -> None:
        super().__init__(config, context)
        groups = context.spec.groups
        self.sizes = [g.n_nodes for g in groups]
        self.feat_dims = [g.feat_dim for g in groups]
        self.width = max(self.feat_dims)

    @property
    def latent_shape(self) -> tuple[int, int]:
        return sum(self.sizes), self.width

    def encode(self, nodes: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.cat([nn.functional.pad(x, (0, self.width - x.shape[-1])) for x in nodes], dim=1)
        return tokens, torch.full_like(tokens, ZERO_VARIANCE_LOGVAR)

    def decode(self, latents: torch.Tensor) -> tuple[torch.Tensor, ...]:
        parts = latents.split(self.sizes, dim=1)
        return tuple(p[..., :f] for p, f in zip(parts, self.feat_dims))
