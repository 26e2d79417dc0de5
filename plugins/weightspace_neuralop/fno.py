"""The ``fno`` architecture: neuraloperator's FNO as a one-step operator on 2-D fields.

Graph layout (hidden width C, L Fourier blocks). Each block computes
``y = MLP(act(Spectral(x) + Skip(x))) + gate * x``; the soft gate is diagonal, so every block's input
and output share one channel order, the residual *stream*. Node groups:

- ``lifting.0``, ``lifting.1``: the lifting channel MLP (nodes: its output channels);
- ``block{i}.spectral``: one node per output channel of the spectral conv, features its incoming
  complex weights ``W[:, o]`` (real and imaginary parts), its bias, and the linear skip's row ``o``
  (the skip merges into this node);
- ``block{i}.mlp.0``, ``block{i}.mlp.1``: the block's channel MLP; ``mlp.1`` nodes also carry the
  soft-gating scale of their channel;
- ``projection.0``, ``projection.1``: the projection MLP (``projection.1`` nodes are the outputs).

Permutable hidden units: ``lifting.hidden``, ``stream``, ``block{i}.inner``, ``block{i}.mlp``,
``projection.hidden``.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuralop.models import FNO
from torch import nn

from weightspace.architecture import GridOperatorAdapter
from weightspace.config import require_positive
from weightspace.graph import Layout, LayoutBuilder, Member, dense_members
from weightspace_neuralop.pointwise import as_matmuls
from weightspace_neuralop.spectral_conv import FunctionalSpectralConv


@dataclass(frozen=True)
class FNOConfig:
    in_channels: int = 1
    out_channels: int = 1
    hidden_channels: int = 32
    n_modes: tuple[int, int] = (8, 8)
    """Fourier modes kept per axis, counted as neuraloperator counts them: negative and positive
    wavenumbers together, so (8, 8) keeps k in [-4, 3] x [0, 4], not the first 8 wavenumbers that
    ``modes1 = 8`` kept in the original FNO code. (16, 16) keeps [-8, 7] x [0, 8]."""
    n_layers: int = 4
    lifting_channel_ratio: int = 2
    projection_channel_ratio: int = 2
    channel_mlp_expansion: float = 0.5
    positional_embedding: bool = True
    grid_size: tuple[int, int] = (32, 32)
    """Resolution of example inputs; the FNO itself accepts any resolution."""

    def __post_init__(self) -> None:
        require_positive(
            self,
            "in_channels",
            "out_channels",
            "hidden_channels",
            "n_modes",
            "n_layers",
            "lifting_channel_ratio",
            "projection_channel_ratio",
            "channel_mlp_expansion",
            "grid_size",
        )
        if round(self.hidden_channels * self.channel_mlp_expansion) < 1:
            raise ValueError("hidden_channels * channel_mlp_expansion must be at least 1")


class FNOAdapter(GridOperatorAdapter):
    name = "fno"
    Config = FNOConfig
    test_space = {
        "in_channels": (1, 2),
        "out_channels": (1, 2),
        "hidden_channels": (2, 3, 5),
        "n_modes": ((2, 2), (3, 4), (4, 3)),
        "n_layers": (1, 2, 3),
        "lifting_channel_ratio": (1, 2),
        "channel_mlp_expansion": (0.5, 1.0),
        "positional_embedding": (True, False),
        "grid_size": ((8, 8), (12, 10)),
    }

    profiles = {
        "quick": {"architecture": {"hidden_channels": 16, "n_layers": 2, "n_modes": (8, 8)}, "zoo": {}},
        "paper": {"architecture": {"hidden_channels": 32, "n_layers": 4, "n_modes": (12, 12)}, "zoo": {}},
    }

    def _build(self) -> nn.Module:
        c = self.config
        fno = FNO(
            n_modes=c.n_modes,
            in_channels=c.in_channels,
            out_channels=c.out_channels,
            hidden_channels=c.hidden_channels,
            n_layers=c.n_layers,
            lifting_channel_ratio=c.lifting_channel_ratio,
            projection_channel_ratio=c.projection_channel_ratio,
            channel_mlp_expansion=c.channel_mlp_expansion,
            positional_embedding="grid" if c.positional_embedding else None,
            conv_module=FunctionalSpectralConv,
        )
        return as_matmuls(fno)

    def layout(self) -> Layout:
        b = LayoutBuilder()
        b.dense("lifting.0", "lifting.fcs.0", permutation="lifting.hidden", inputs=None)
        b.dense("lifting.1", "lifting.fcs.1", permutation="stream", inputs="lifting.hidden")
        for i in range(self.config.n_layers):
            conv = f"fno_blocks.convs.{i}"
            skip = f"fno_blocks.fno_skips.{i}.conv.weight"
            mlp = f"fno_blocks.channel_mlp.{i}.fcs"
            gate = f"fno_blocks.channel_mlp_skips.{i}.weight"
            # spectral weights are (in, out, kx, ky): a node is an output channel, axis 1
            b.group(
                f"block{i}.spectral",
                (Member(f"{conv}.weight.tensor", 1), Member(f"{conv}.bias", 0), Member(skip, 0)),
                permutation=f"block{i}.inner",
            )
            b.moves("stream", f"{conv}.weight.tensor", 0)
            b.moves("stream", skip, 1)
            b.dense(f"block{i}.mlp.0", f"{mlp}.0", permutation=f"block{i}.mlp", inputs=f"block{i}.inner")
            b.group(f"block{i}.mlp.1", (*dense_members(f"{mlp}.1"), Member(gate, 1)), permutation="stream")
            b.moves(f"block{i}.mlp", f"{mlp}.1.weight", 1)
        b.dense("projection.0", "projection.fcs.0", permutation="projection.hidden", inputs="stream")
        b.dense("projection.1", "projection.fcs.1", permutation=None, inputs="projection.hidden")
        return b.build()
