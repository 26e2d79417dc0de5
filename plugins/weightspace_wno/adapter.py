"""The ``wno`` architecture adapter.

Node groups: ``lifting`` (1x1 conv), ``layer{i}`` (one node per output channel: its incoming
weights in the four kept wavelet bands, plus the row and bias of the 1x1 skip conv that merges into
it), ``projection.0`` and ``projection.1``. Permutable hidden units: ``lifting.out``,
``layer{i}.out`` and ``projection.hidden``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pywt
from torch import nn

from weightspace.architecture import GridOperatorAdapter
from weightspace.config import require_positive
from weightspace.graph import Layout, LayoutBuilder, Member, dense_members
from weightspace_wno.model import BANDS, WNO2d, coarsest_band_shape


@dataclass(frozen=True)
class WNOConfig:
    in_channels: int = 1
    out_channels: int = 1
    width: int = 16
    n_layers: int = 3
    wavelet: str = "db4"
    level: int = 2
    mode: Literal["symmetric", "reflect", "zero", "periodic"] = "symmetric"
    projection_channels: int = 64
    positional_embedding: bool = True
    grid_size: tuple[int, int] = (32, 32)
    """The input resolution; wavelet weights are sized by its coarsest band."""

    def __post_init__(self) -> None:
        require_positive(
            self, "in_channels", "out_channels", "width", "n_layers", "level", "projection_channels", "grid_size"
        )
        if self.wavelet not in pywt.wavelist(kind="discrete"):
            raise ValueError(f"unknown discrete wavelet {self.wavelet!r} (see pywt.wavelist(kind='discrete'))")


class WNOAdapter(GridOperatorAdapter):
    name = "wno"
    Config = WNOConfig
    test_space = {
        "in_channels": (1, 2),
        "out_channels": (1, 2),
        "width": (2, 3, 4),
        "n_layers": (1, 2),
        "wavelet": ("db2", "db4", "haar"),
        "level": (1, 2),
        "projection_channels": (2, 5),
        "positional_embedding": (True, False),
        "grid_size": ((8, 8), (16, 12)),
    }
    # quick: two layers of width 16 on the Haar transform's level-3 bands (4 x 4 on a 32 x 32 grid,
    # the scales FNO quick's 8 modes keep), 34k parameters against FNO quick's 23k; the default
    # (three db4 level-2 layers) has 521k. paper: the WNO paper's db4 on four layers of width 32,
    # level 4 so the coarsest band of a 64 x 64 grid stays 10 x 10
    profiles = {
        "quick": {
            "architecture": {"width": 16, "n_layers": 2, "wavelet": "haar", "level": 3, "projection_channels": 32},
            "zoo": {},
        },
        "paper": {
            "architecture": {"width": 32, "n_layers": 4, "wavelet": "db4", "level": 4, "projection_channels": 128},
            "zoo": {},
        },
    }

    def _build(self) -> nn.Module:
        c = self.config
        band = coarsest_band_shape(c.grid_size, c.wavelet, c.level, c.mode)
        return WNO2d(
            c.in_channels,
            c.out_channels,
            c.width,
            c.n_layers,
            band,
            c.wavelet,
            c.level,
            c.mode,
            c.projection_channels,
            c.positional_embedding,
        )

    def layout(self) -> Layout:
        b = LayoutBuilder()
        b.dense("lifting", "lifting", permutation="lifting.out", inputs=None)
        previous = "lifting.out"
        for i in range(self.config.n_layers):
            weights = [f"wavelet_convs.{i}.weight_{band}" for band in BANDS]  # (in, out, m1, m2)
            b.group(
                f"layer{i}",
                (*(Member(w, 1) for w in weights), *dense_members(f"skips.{i}")),
                permutation=f"layer{i}.out",
            )
            for w in weights:
                b.moves(previous, w, 0)
            b.moves(previous, f"skips.{i}.weight", 1)
            previous = f"layer{i}.out"
        b.dense("projection.0", "projection_hidden", permutation="projection.hidden", inputs=previous)
        b.dense("projection.1", "projection_out", permutation=None, inputs="projection.hidden")
        return b.build()
