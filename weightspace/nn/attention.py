"""The attention VAEs' building blocks: the transformer stack over tokens and the options they share.

An attention VAE (the ``graph-vae`` encoder over a weight graph's nodes, the ``flat-vae`` baseline over
chunks of flattened weights) projects its tokens to a common width, runs :func:`attention_stack`,
reads a per-token latent (mean, log-variance), and decodes through a mirrored stack. Its loss
``MSE + beta * KL + lambda * L_func`` is assembled by :mod:`weightspace.pipeline.encoding`, which reads
``beta`` and ``function_weight`` from :class:`AttentionVAEConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from weightspace.config import require_positive


@dataclass(frozen=True)
class AttentionVAEConfig:
    """The options of an attention VAE: its sizes, and the weights of its loss's terms."""

    width: int = 64
    """Token width inside the attention blocks (the paper's internal size: 1024)."""
    latent_dim: int = 8
    """Latent features per token (the paper's latent: 512 per network before tokenisation)."""
    depth: int = 2
    """Attention blocks in the encoder and again in the decoder."""
    heads: int = 4
    beta: float = 1e-4
    """Weight of the KL term."""
    function_weight: float = 1.0
    """lambda, the weight of the function loss (0: the paper's "w/o function loss" ablation)."""

    def __post_init__(self) -> None:
        require_positive(self, "width", "latent_dim", "depth", "heads")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if self.beta < 0 or self.function_weight < 0:
            raise ValueError("beta and function_weight must not be negative")


def attention_stack(width: int, heads: int, depth: int) -> nn.TransformerEncoder:
    """``depth`` pre-norm transformer blocks of ``width`` without dropout, over ``[B, tokens, width]``."""
    layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
