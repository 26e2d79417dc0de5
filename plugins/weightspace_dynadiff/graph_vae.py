"""The ``graph-vae`` encoder: an attention VAE over the nodes of a weight graph (DynaDiff, section 3.3).

Every node (an output neuron or channel, its incoming weights and bias as features) becomes a token:
a per-group linear projection to a common width plus a learned embedding of its node group (layer).
Self-attention blocks over all tokens of a network give a per-node latent (mean, log-variance); a
mirrored decoder maps latents back through attention and per-group output projections. With no
positional embedding inside a group, reordering a group's tokens reorders its latents the same way
(tested). Permuting hidden units also reorders the next layer's incoming-weight features, which the
per-group projections see, so a network and its permuted twin are encoded alike only as far as
training on the zoo makes them; that robustness is measured, not built in.

The loss ``MSE + beta * KL + lambda * L_func`` is assembled by :mod:`weightspace.pipeline.encoding`, which owns
the function loss (it needs the architecture); this module is the network. Its attention stack and
its options are shared with ``flat-vae`` (:mod:`weightspace.nn.attention`).
"""

from __future__ import annotations

import torch
from torch import nn

from weightspace.components import Context, Encoder
from weightspace.nn.attention import AttentionVAEConfig, attention_stack


class GraphVAE(Encoder):
    name = "graph-vae"
    Config = AttentionVAEConfig

    def __init__(self, config: AttentionVAEConfig, context: Context) -> None:
        super().__init__(config, context)
        groups = context.spec.groups
        w = config.width
        self.inputs = nn.ModuleList(nn.Linear(g.feat_dim, w) for g in groups)
        self.group_embedding = nn.Parameter(0.02 * torch.randn(len(groups), w))
        self.encoder = attention_stack(w, config.heads, config.depth)
        self.to_latent = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, 2 * config.latent_dim))
        self.from_latent = nn.Linear(config.latent_dim, w)
        self.decoder = attention_stack(w, config.heads, config.depth)
        self.outputs = nn.ModuleList(nn.Sequential(nn.LayerNorm(w), nn.Linear(w, g.feat_dim)) for g in groups)
        self.register_buffer("sizes", torch.tensor([g.n_nodes for g in groups]), persistent=False)

    @property
    def latent_shape(self) -> tuple[int, int]:
        return int(self.sizes.sum()), self.config.latent_dim

    def _group_tokens(self) -> torch.Tensor:
        return self.group_embedding.repeat_interleave(self.sizes, dim=0)

    def encode(self, nodes: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.cat([proj(x) for proj, x in zip(self.inputs, nodes)], dim=1) + self._group_tokens()
        mean, logvar = self.to_latent(self.encoder(tokens)).chunk(2, dim=-1)
        return mean, logvar.clamp(-12.0, 8.0)

    def decode(self, latents: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = self.decoder(self.from_latent(latents) + self._group_tokens())
        parts = hidden.split(self.sizes.tolist(), dim=1)
        return tuple(out(h) for out, h in zip(self.outputs, parts))
