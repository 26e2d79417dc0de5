"""The ``flow-matching`` generator: conditional flow matching with straight paths (rectified flow)
and a DiT velocity network, the approach of "Flows and Diffusions on the Neural Manifold".

The objective, the sources (``gaussian`` or ``init``) and the sampler are
:class:`weightspace.nn.latent_flow.LatentFlow`'s; this plugin adds the network. A trained one is what
the ``adjoint-matching`` method fine-tunes toward a reward.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from weightspace.nn.dit import DiT, require_dit_shape
from weightspace.nn.latent_flow import FlowConfig, LatentFlow


@dataclass(frozen=True)
class FlowMatchingConfig(FlowConfig):
    hidden: int = 128
    depth: int = 4
    heads: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        require_dit_shape(self)


class FlowMatching(LatentFlow):
    name = "flow-matching"
    Config = FlowMatchingConfig

    def build_denoiser(self) -> nn.Module:
        c, ctx = self.config, self.context
        return DiT(ctx.latent_tokens, ctx.latent_dim, ctx.condition_dim, c.hidden, c.depth, c.heads)
