"""The ``uno`` architecture: neuraloperator's U-shaped neural operator (UNO) on 2-D fields.

Each layer is an FNO block that may change width and resolution; horizontal skips (linear 1x1
convs) carry early outputs to later layers, where they are concatenated to the layer's input.
Widths change, so the channel-MLP skips are linear (neuraloperator's soft gating cannot change
width), and each layer has its own output channel order. Node groups per layer ``i``:
``block{i}.spectral`` (spectral weights, bias and the linear skip of each output channel),
``block{i}.mlp.0``, ``block{i}.mlp.1`` (which also carries the linear channel-MLP skip, merged there),
and ``hskip{i}`` for a horizontal skip leaving layer ``i``; plus the lifting and projection MLPs.

Permutable hidden units: ``lifting.hidden``, ``lifting.out``, ``block{i}.inner``, ``block{i}.mlp``,
``block{i}.out``, ``hskip{i}`` and ``projection.hidden``. A concatenated input is permuted slice by
slice, each slice by the permutation of the path it came from.
"""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import dataclass

from neuralop.layers.fno_block import FNOBlocks
from neuralop.models import UNO
from torch import nn

from weightspace.architecture import GridOperatorAdapter
from weightspace.config import require_positive
from weightspace.graph import Layout, LayoutBuilder, Member, dense_members
from weightspace_neuralop.pointwise import as_matmuls
from weightspace_neuralop.spectral_conv import FunctionalSpectralConv


@dataclass(frozen=True)
class UNOConfig:
    in_channels: int = 1
    out_channels: int = 1
    hidden_channels: int = 16
    lifting_channels: int = 32
    projection_channels: int = 32
    layer_channels: tuple[int, ...] = (16, 32, 32, 16)
    layer_modes: tuple[tuple[int, int], ...] = ((8, 8), (6, 6), (6, 6), (8, 8))
    layer_scalings: tuple[tuple[float, float], ...] = ((1.0, 1.0), (0.5, 0.5), (2.0, 2.0), (1.0, 1.0))
    channel_mlp_expansion: float = 0.5
    positional_embedding: bool = True
    grid_size: tuple[int, int] = (32, 32)
    """Resolution of example inputs; it must survive the layers' down-scalings."""

    def __post_init__(self) -> None:
        require_positive(
            self,
            "in_channels",
            "out_channels",
            "hidden_channels",
            "lifting_channels",
            "projection_channels",
            "channel_mlp_expansion",
            "layer_channels",
            "layer_modes",
            "layer_scalings",
            "grid_size",
        )
        n = len(self.layer_channels)
        if n == 0 or len(self.layer_modes) != n or len(self.layer_scalings) != n:
            raise ValueError(
                f"layer_channels, layer_modes and layer_scalings must have the same non-zero length, "
                f"got {n}, {len(self.layer_modes)}, {len(self.layer_scalings)}"
            )
        if min(self.layer_channels) * self.channel_mlp_expansion < 1:
            raise ValueError("every layer's channels * channel_mlp_expansion must be at least 1")

    @property
    def skips(self) -> dict[int, int]:
        """UNO's default horizontal skips: layer ``n-1-i`` receives the output of layer ``i``."""
        n = len(self.layer_channels)
        return {n - i - 1: i for i in range(n // 2)}


class UNOAdapter(GridOperatorAdapter):
    name = "uno"
    Config = UNOConfig
    test_space = {
        "in_channels": (1, 2),
        "hidden_channels": (2, 3),
        "lifting_channels": (2, 4),
        "projection_channels": (2, 3),
        "layer_channels": ((2, 3, 2), (3, 2, 4)),
        "layer_modes": (((3, 3), (2, 2), (3, 3)), ((4, 2), (3, 4), (2, 3))),
        "layer_scalings": (((1.0, 1.0), (0.5, 0.5), (2.0, 2.0)), ((1.0, 1.0), (1.0, 1.0), (1.0, 1.0))),
        "channel_mlp_expansion": (0.5, 1.0),
        "grid_size": ((8, 8), (12, 8)),
    }
    # quick: a three-layer U (full, half and full resolution, one horizontal skip) of FNO quick's
    # width and modes, 41k parameters against FNO quick's 23k, so that the backbone comparison
    # (benchmarks/matrices/backbones.toml) sets like against like; paper: the width and modes of
    # FNO's paper profile on neuraloperator's four-layer U
    profiles = {
        "quick": {
            "architecture": {
                "hidden_channels": 16,
                "lifting_channels": 32,
                "projection_channels": 32,
                "layer_channels": (16, 16, 16),
                "layer_modes": ((8, 8), (6, 6), (8, 8)),
                "layer_scalings": ((1.0, 1.0), (0.5, 0.5), (2.0, 2.0)),
            },
            "zoo": {},
        },
        "paper": {
            "architecture": {
                "hidden_channels": 32,
                "lifting_channels": 64,
                "projection_channels": 64,
                "layer_channels": (32, 64, 64, 32),
                "layer_modes": ((12, 12), (8, 8), (8, 8), (12, 12)),
                "layer_scalings": ((1.0, 1.0), (0.5, 0.5), (2.0, 2.0), (1.0, 1.0)),
            },
            "zoo": {},
        },
    }

    def _build(self) -> nn.Module:
        c = self.config
        # neuraloperator's UNO prints its skip settings from __init__; keep the user's terminal clean
        with contextlib.redirect_stdout(io.StringIO()):
            uno = UNO(
                in_channels=c.in_channels,
                out_channels=c.out_channels,
                hidden_channels=c.hidden_channels,
                lifting_channels=c.lifting_channels,
                projection_channels=c.projection_channels,
                positional_embedding="grid" if c.positional_embedding else None,
                n_layers=len(c.layer_channels),
                uno_out_channels=list(c.layer_channels),
                uno_n_modes=[list(m) for m in c.layer_modes],
                uno_scalings=[list(s) for s in c.layer_scalings],
                horizontal_skips_map=c.skips,
                channel_mlp_expansion=c.channel_mlp_expansion,
                channel_mlp_skip="linear",
                # UNO does not forward integral_operator to its blocks; the block factory does
                operator_block=functools.partial(FNOBlocks, conv_module=FunctionalSpectralConv),
            )
        return as_matmuls(uno)

    def layout(self) -> Layout:
        c = self.config
        b = LayoutBuilder()
        b.dense("lifting.0", "lifting.fcs.0", permutation="lifting.hidden", inputs=None)
        b.dense("lifting.1", "lifting.fcs.1", permutation="lifting.out", inputs="lifting.hidden")
        inputs = [("lifting.out", c.hidden_channels)]  # (permutation, width) of each concatenated slice
        for i, width in enumerate(c.layer_channels):
            if i in c.skips:
                src = c.skips[i]
                inputs.append((f"hskip{src}", c.layer_channels[src]))
            blk = f"fno_blocks.{i}"
            conv, mlp = f"{blk}.convs.0", f"{blk}.channel_mlp.0.fcs"
            fno_skip, mlp_skip = f"{blk}.fno_skips.0.conv.weight", f"{blk}.channel_mlp_skips.0.conv.weight"
            b.group(
                f"block{i}.spectral",
                (Member(f"{conv}.weight.tensor", 1), Member(f"{conv}.bias", 0), Member(fno_skip, 0)),
                permutation=f"block{i}.inner",
            )
            start = 0
            for perm, w in inputs:
                b.moves(perm, f"{conv}.weight.tensor", 0, start)
                b.moves(perm, fno_skip, 1, start)
                b.moves(perm, mlp_skip, 1, start)
                start += w
            b.dense(f"block{i}.mlp.0", f"{mlp}.0", permutation=f"block{i}.mlp", inputs=f"block{i}.inner")
            b.group(f"block{i}.mlp.1", (*dense_members(f"{mlp}.1"), Member(mlp_skip, 0)), permutation=f"block{i}.out")
            b.moves(f"block{i}.mlp", f"{mlp}.1.weight", 1)
            if i in c.skips.values():
                b.dense(
                    f"hskip{i}",
                    f"horizontal_skips.{i}.conv",
                    permutation=f"hskip{i}",
                    inputs=f"block{i}.out",
                    bias=False,
                )
            inputs = [(f"block{i}.out", width)]
        b.dense("projection.0", "projection.fcs.0", permutation="projection.hidden", inputs=inputs[0][0])
        b.dense("projection.1", "projection.fcs.1", permutation=None, inputs="projection.hidden")
        return b.build()
