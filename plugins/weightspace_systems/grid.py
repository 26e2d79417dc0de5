"""Fields simulated on a fine periodic grid and saved on a coarse one.

Spectral solvers resolve sharp features (spirals, vortex filaments) only on grids finer than the one
the experts learn on, so the PDE systems solve at ``sim_resolution`` and keep the Fourier modes that
``resolution`` can represent. They also spin up for ``burn_in`` time units before frame 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from weightspace.config import require_positive
from weightspace.system import System, SystemSettings


@dataclass(frozen=True)
class GridSettings(SystemSettings):
    resolution: int = 64
    """Saved grid (resolution x resolution)."""
    sim_resolution: int = 64
    """Solver grid; frames are spectrally truncated to ``resolution``."""
    burn_in: float = 10.0
    """Time simulated before frame 0."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "resolution", "sim_resolution")
        if self.burn_in < 0:
            raise ValueError("burn_in must not be negative")
        if self.resolution > self.sim_resolution or self.resolution % 2 or self.sim_resolution % 2:
            raise ValueError("resolution and sim_resolution must be even, with resolution <= sim_resolution")


class GridSystem(System):
    """A system of fields on a periodic ``resolution`` x ``resolution`` grid (settings: :class:`GridSettings`)."""

    def state_shape(self) -> tuple[int, ...]:
        return (len(self.channel_names), self.settings.resolution, self.settings.resolution)


def spectral_downsample(fields: torch.Tensor, n: int) -> torch.Tensor:
    """Periodic fields ``[..., m, m]`` to ``[..., n, n]`` by truncating Fourier modes (n <= m, even)."""
    m = fields.shape[-1]
    if n == m:
        return fields
    f_hat = torch.fft.rfft2(fields)
    half = n // 2
    kept = torch.cat([f_hat[..., :half, : half + 1], f_hat[..., m - half :, : half + 1]], dim=-2)
    kept[..., half, :] = 0  # the Nyquist row of the coarse grid has no unique partner
    kept[..., :, half] = 0
    return torch.fft.irfft2(kept, s=(n, n)) * (n * n) / (m * m)


def periodic_coordinates(
    n: int, length: float, origin: float = 0.0, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates ``(y, x)``, each ``[n, n]``, of the cell corners of [origin, origin + length)^2."""
    c = origin + length * torch.arange(n, dtype=torch.float64, device=device) / n
    return torch.meshgrid(c, c, indexing="ij")


def rfft_wavenumbers(
    n: int, length: float, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Angular wavenumbers ``(ky, kx)``, each ``[n, n // 2 + 1]``, in the layout of ``torch.fft.rfft2``."""
    d = length / (2 * math.pi * n)
    k = torch.fft.fftfreq(n, d=d, dtype=torch.float64, device=device)
    kr = torch.fft.rfftfreq(n, d=d, dtype=torch.float64, device=device)
    return torch.meshgrid(k, kr, indexing="ij")
