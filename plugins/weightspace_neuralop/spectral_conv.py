"""A SpectralConv that torch.func.vmap can batch.

neuraloperator's ``SpectralConv.forward`` writes the kept Fourier modes into a zero tensor in place
(``out_fft[slices] = ...``), which ``vmap`` cannot batch when the weights are batched. This subclass
computes the same modes and pads them out of place instead. It keeps the parameter names and gives
the same outputs, so weights move freely between it and a stock FNO/UNO (tested). Only the dense,
real-valued, full-precision, non-separable variant is supported: the one the adapters build.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from neuralop.layers.spectral_convolution import SpectralConv


class FunctionalSpectralConv(SpectralConv):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.complex_data or self.separable or self.fno_block_precision != "full" or self.factorization is not None:
            raise ValueError("FunctionalSpectralConv supports only dense, real, full-precision, non-separable convs")

    def forward(self, x: torch.Tensor, output_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        _, _, *mode_sizes = x.shape
        fft_size = list(mode_sizes)
        fft_size[-1] = fft_size[-1] // 2 + 1  # real input: the last axis keeps only non-negative frequencies
        fft_dims = list(range(-self.order, 0))

        x = torch.fft.rfftn(x, norm=self.fft_norm, dim=fft_dims)
        if self.order > 1:
            x = torch.fft.fftshift(x, dim=fft_dims[:-1])

        # the same mode selection as SpectralConv.forward (weights centred after the fft shift)
        starts = [max_m - min(size, n_m) for size, n_m, max_m in zip(fft_size, self.n_modes, self.max_n_modes)]
        slices_w = [slice(None), slice(None)]
        slices_w += [slice(s // 2, -s // 2) if s else slice(s, None) for s in starts[:-1]]
        slices_w += [slice(None, -starts[-1]) if starts[-1] else slice(None)]
        weight = self.weight.tensor[tuple(slices_w)]

        slices_x = [slice(None), slice(None)]
        pads: list[int] = []
        for all_modes, kept in zip(fft_size[:-1], weight.shape[2:-1]):
            lo = all_modes // 2 - kept // 2
            hi = all_modes // 2 + kept // 2 + kept % 2
            slices_x.append(slice(lo, hi))
            pads = [lo, all_modes - hi] + pads
        kept_last = min(weight.shape[-1], fft_size[-1])
        slices_x.append(slice(None, kept_last))
        pads = [0, fft_size[-1] - kept_last] + pads

        modes = torch.einsum("bi...,io...->bo...", x[tuple(slices_x)], weight)
        out_fft = F.pad(modes, pads)

        if self.resolution_scaling_factor is not None and output_shape is None:
            mode_sizes = [round(s * r) for s, r in zip(mode_sizes, self.resolution_scaling_factor)]
        if output_shape is not None:
            mode_sizes = list(output_shape)
        if self.order > 1:
            out_fft = torch.fft.fftshift(out_fft, dim=fft_dims[:-1])
        x = torch.fft.irfftn(out_fft, s=mode_sizes, dim=fft_dims, norm=self.fft_norm)
        if self.bias is not None:
            x = x + self.bias
        return x
