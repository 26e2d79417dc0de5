"""The ``pca`` encoder: a linear autoencoder with tied weights over a network's flattened weights.

A network's normalized node features (every node group flattened and concatenated: ``F`` numbers)
are projected onto ``K = tokens * latent_dim`` directions, the rows of one matrix ``W [K, F]``, and
mapped back by its transpose::

    z = W (x - m)            x' = W^T z + m

Trained on the reconstruction MSE alone, the optimum of this model is PCA's: the rows of ``W`` span
the zoo's top ``K`` principal directions (they start orthonormal). The pipeline's loss adds the
KL term of a learned per-coordinate variance (weight ``beta``) and the function loss (weight
``function_weight``), which tilt the directions towards what changes the networks' outputs.
Every encoder with parameters must have these two options: :func:`weightspace.pipeline.encoding.fit_encoder`
reads them from its config.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from weightspace.components import Context, Encoder
from weightspace.config import require_positive
from weightspace.errors import ConfigError


@dataclass(frozen=True)
class PCAConfig:
    latent_dim: int = 16
    """Features per latent token."""
    tokens: int = 1
    """Latent tokens per network: ``tokens * latent_dim`` principal directions in all."""
    beta: float = 1e-4
    """Weight of the KL term of the learned latent variance."""
    function_weight: float = 1.0
    """Weight of the function loss (decoded and original networks compared on probe inputs)."""

    def __post_init__(self) -> None:
        require_positive(self, "latent_dim", "tokens")
        if self.beta < 0 or self.function_weight < 0:
            raise ValueError("beta and function_weight must not be negative")


class PCAEncoder(Encoder):
    name = "pca"
    Config = PCAConfig

    def __init__(self, config: PCAConfig, context: Context) -> None:
        super().__init__(config, context)
        self.shapes = [(g.n_nodes, g.feat_dim) for g in context.spec.groups]
        n_weights = sum(n * f for n, f in self.shapes)
        n_components = config.tokens * config.latent_dim
        if n_components > n_weights:
            raise ConfigError(
                f"encoder 'pca': {config.tokens} x {config.latent_dim} components exceed the {n_weights} "
                f"weight features of architecture {context.spec.architecture!r}"
            )
        self.components = nn.Parameter(nn.init.orthogonal_(torch.empty(n_components, n_weights)))
        self.offset = nn.Parameter(torch.zeros(n_weights))
        self.log_variance = nn.Parameter(torch.full((config.tokens, config.latent_dim), -6.0))

    @property
    def latent_shape(self) -> tuple[int, int]:
        return self.config.tokens, self.config.latent_dim

    def encode(self, nodes: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        flat = torch.cat([x.flatten(1) for x in nodes], dim=1)  # [B, F]
        mean = ((flat - self.offset) @ self.components.T).view(len(flat), *self.latent_shape)
        return mean, self.log_variance.clamp(-12.0, 4.0).expand_as(mean)

    def decode(self, latents: torch.Tensor) -> tuple[torch.Tensor, ...]:
        flat = latents.flatten(1) @ self.components + self.offset
        parts = flat.split([n * f for n, f in self.shapes], dim=1)
        return tuple(p.reshape(-1, n, f) for p, (n, f) in zip(parts, self.shapes))
