"""``kolmogorov``: 2-D Kolmogorov flow in vorticity form, Re in [50, 250].

    d(omega)/dt + u . grad(omega) = (1/Re) laplace(omega) - 0.1 omega - n cos(n y),   n = 3

on [-pi, pi]^2, periodic (the pseudo-spectral IFRK4 solver of :mod:`weightspace_systems.vorticity`,
2/3 dealiasing, CFL 1.0). The linear drag 0.1 omega is not in the paper's equation: without a
large-scale sink energy piles up at the largest scale and the flow never becomes statistically
steady. Initial vorticity is a Gaussian random field (unit standard deviation), spun up for
``burn_in`` time units so saved frames are in the developed regime; frame 0 is the state after the
spin-up. The solve runs at ``sim_resolution`` and frames are spectrally truncated to ``resolution``.
The laminar state omega = -n cos(n y) / (n^2 / Re + drag) is an exact solution (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from weightspace.config import require_positive
from weightspace.system import linspace_grid
from weightspace_systems.grid import GridSettings, GridSystem, periodic_coordinates, spectral_downsample
from weightspace_systems.vorticity import VorticitySolver, gaussian_random_field


@dataclass(frozen=True)
class KolmogorovSettings(GridSettings):
    re_range: tuple[float, float] = (50.0, 250.0)
    n_re: int = 51
    forcing_wavenumber: int = 3
    drag: float = 0.1
    cfl: float = 1.0
    ic_alpha: float = 2.5
    ic_tau: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "re_range", "n_re", "forcing_wavenumber", "cfl", "ic_alpha", "ic_tau")
        if self.drag < 0:
            raise ValueError("drag must not be negative")


class Kolmogorov(GridSystem):
    name = "kolmogorov"
    param_names = ("Re",)
    channel_names = ("vorticity",)
    Settings = KolmogorovSettings
    profiles = {
        "quick": {
            "n_re": 9,
            "n_seen": 4,
            "val_fraction": 0.4,
            "n_train": 6,
            "n_test": 2,
            "n_frames": 31,
            "dt": 0.2,
            "resolution": 32,
            "sim_resolution": 64,
            "burn_in": 10.0,
        },
        "paper": {
            "n_re": 51,
            "n_seen": 12,
            "val_fraction": 0.25,
            "n_train": 20,
            "n_test": 20,
            "n_frames": 51,
            "dt": 0.2,
            "resolution": 64,
            "sim_resolution": 64,
            "burn_in": 20.0,
        },
    }
    length = 2 * math.pi

    def environments(self) -> torch.Tensor:
        s = self.settings
        return linspace_grid((*s.re_range, s.n_re))

    def forcing(self, n: int) -> torch.Tensor:
        y, _ = periodic_coordinates(n, self.length, origin=-math.pi)
        k = self.settings.forcing_wavenumber
        return -k * torch.cos(k * y)

    def laminar_state(self, re: float, n: int) -> torch.Tensor:
        s = self.settings
        return self.forcing(n) / (s.forcing_wavenumber**2 / re + s.drag)

    def solver(self, envs: torch.Tensor) -> VorticitySolver:
        s = self.settings
        n = s.sim_resolution
        forcing = self.forcing(n).to(envs.device).expand(len(envs), n, n)
        return VorticitySolver(n, self.length, 1.0 / envs[:, 0], s.drag, forcing, cfl=s.cfl)

    def initial_conditions(self, env: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        s = self.settings
        w = gaussian_random_field(s.sim_resolution, n, s.ic_alpha, s.ic_tau, generator, length=self.length)
        return (w / w.std(dim=(-2, -1), keepdim=True)).unsqueeze(1)  # [n, 1, H, W] at the solver's grid

    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        s = self.settings
        frames = self.solver(envs).solve(x0[:, :, 0], s.n_frames, s.dt, burn_in=s.burn_in)
        return spectral_downsample(frames, s.resolution).unsqueeze(3).float()  # [E, N, T, 1, H, W]

    def solver_attributes(self) -> dict[str, Any]:
        return {
            "method": "pseudo-spectral IFRK4, 2/3 dealiasing, CFL-adaptive substeps",
            "dtype": "float64",
            "domain": "[-pi, pi]^2 periodic",
            "drag": self.settings.drag,
        }
