"""A 2-D wavelet neural operator (WNO, Tripura & Chakraborty 2023) on ptwt's differentiable DWT.

Each layer transforms its input with a multilevel 2-D DWT, multiplies the coarsest approximation
band and the coarsest detail bands (horizontal, vertical, diagonal) by learned real weights
``(in, out, m1, m2)``, drops the finer detail bands, inverts the transform, and adds a 1x1 conv
of the input, as in the reference implementation. Weights are tied to the band size, so a WNO is
built for one grid size. Everything is out of place, so ``torch.func.vmap`` batches it.
"""

from __future__ import annotations

import ptwt
import pywt
import torch
import torch.nn.functional as F
from ptwt.constants import WaveletDetailTuple2d
from torch import nn

BANDS = ("approx", "horizontal", "vertical", "diagonal")


def coarsest_band_shape(grid_size: tuple[int, int], wavelet: str, level: int, mode: str) -> tuple[int, int]:
    """Size of the coarsest DWT band of a ``grid_size`` field (e.g. 13x13 for db4, level 2, 32x32)."""
    coeffs = ptwt.wavedec2(torch.zeros(1, 1, *grid_size), pywt.Wavelet(wavelet), mode=mode, level=level)
    return tuple(coeffs[0].shape[-2:])


class WaveletConv2d(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, band_shape: tuple[int, int], wavelet: str, level: int, mode: str
    ) -> None:
        super().__init__()
        self.wavelet, self.level, self.mode = pywt.Wavelet(wavelet), level, mode
        scale = 1.0 / (in_channels * out_channels)
        for band in BANDS:
            self.register_parameter(
                f"weight_{band}", nn.Parameter(scale * torch.rand(in_channels, out_channels, *band_shape))
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        coeffs = ptwt.wavedec2(x, self.wavelet, mode=self.mode, level=self.level)
        mix = lambda band, w: torch.einsum("bixy,ioxy->boxy", band, w)  # noqa: E731
        approx = mix(coeffs[0], self.weight_approx)
        coarse = WaveletDetailTuple2d(*(mix(d, getattr(self, f"weight_{b}")) for d, b in zip(coeffs[1], BANDS[1:])))
        # finer detail bands are dropped (zeroed), as in the reference WNO
        finer = [
            WaveletDetailTuple2d(*(approx.new_zeros(*approx.shape[:-2], *d.shape[-2:]) for d in level))
            for level in coeffs[2:]
        ]
        y = ptwt.waverec2((approx, coarse, *finer), self.wavelet)
        return y[..., :height, :width]


class WNO2d(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int,
        n_layers: int,
        band_shape: tuple[int, int],
        wavelet: str,
        level: int,
        mode: str,
        projection_channels: int,
        positional_embedding: bool,
    ) -> None:
        super().__init__()
        self.positional_embedding = positional_embedding
        self.lifting = nn.Conv2d(in_channels + (2 if positional_embedding else 0), width, 1)
        self.wavelet_convs = nn.ModuleList(
            WaveletConv2d(width, width, band_shape, wavelet, level, mode) for _ in range(n_layers)
        )
        self.skips = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(n_layers))
        self.projection_hidden = nn.Conv2d(width, projection_channels, 1)
        self.projection_out = nn.Conv2d(projection_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.positional_embedding:
            batch, _, height, width = x.shape
            gy, gx = torch.meshgrid(
                torch.linspace(0, 1, height, device=x.device, dtype=x.dtype),
                torch.linspace(0, 1, width, device=x.device, dtype=x.dtype),
                indexing="ij",
            )
            x = torch.cat([x, torch.stack([gx, gy]).expand(batch, 2, height, width)], dim=1)
        x = self.lifting(x)
        for i, (conv, skip) in enumerate(zip(self.wavelet_convs, self.skips)):
            x = conv(x) + skip(x)
            if i < len(self.skips) - 1:
                x = F.gelu(x)
        return self.projection_out(F.gelu(self.projection_hidden(x)))
