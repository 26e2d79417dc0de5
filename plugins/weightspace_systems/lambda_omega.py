"""``lambda-omega``: the lambda-omega reaction-diffusion system, beta in [1.0, 1.5].

    u_t = mu laplace(u) + lambda(A) u - omega(A) v
    v_t = mu laplace(v) + omega(A) u + lambda(A) v,      A^2 = u^2 + v^2, lambda = 1 - A^2, omega = -beta A^2

with mu = 0.5 on the periodic square [-10, 10]^2. Pseudo-spectral in space; in time an integrating
factor for diffusion (the only linear part, never positive) and classical RK4 for the reaction,
growth term included (putting the +u growth in the linear operator makes the modes the inverse real
FFT ignores grow like e^t and float32 runs blow up). Steps are at most ``max_step`` long and land on
the saved frames. Initial conditions are one-armed spirals u + i v = tanh(r) exp(i (chi theta - r + phi))
around a random centre in [-2, 2]^2, with chirality chi = +-1 and phase phi. A single spiral is not
periodic (its winding cannot be balanced on a torus): the seam it leaves at the boundary is healed by
``burn_in`` time units of simulation before frame 0. Sharp spirals drift in phase on coarse grids, so
the solve runs at ``sim_resolution`` and frames are truncated to ``resolution``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from weightspace.config import require_positive
from weightspace.errors import SimulationError
from weightspace.system import linspace_grid
from weightspace_systems.grid import (
    GridSettings,
    GridSystem,
    periodic_coordinates,
    rfft_wavenumbers,
    spectral_downsample,
)
from weightspace_systems.timestepping import ifrk4_step


@dataclass(frozen=True)
class LambdaOmegaSettings(GridSettings):
    mu: float = 0.5
    beta_range: tuple[float, float] = (1.0, 1.5)
    n_beta: int = 51
    length: float = 20.0
    max_step: float = 0.02
    burn_in: float = 1.0
    """Heals the seam the non-periodic initial spiral leaves at the boundary."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "mu", "beta_range", "n_beta", "length", "max_step")


class LambdaOmega(GridSystem):
    name = "lambda-omega"
    param_names = ("beta",)
    channel_names = ("u", "v")
    Settings = LambdaOmegaSettings
    profiles = {
        "quick": {
            "n_beta": 17,
            "n_seen": 4,
            "val_fraction": 0.4,
            "n_train": 6,
            "n_test": 5,
            "n_frames": 41,
            "dt": 0.1,
            "resolution": 32,
            "sim_resolution": 128,
            "max_step": 0.05,
        },
        "paper": {
            "n_beta": 51,
            "n_seen": 12,
            "val_fraction": 0.25,
            "n_train": 20,
            "n_test": 20,
            "n_frames": 101,
            "dt": 0.04,
            "resolution": 64,
            "sim_resolution": 128,
            "max_step": 0.02,
        },
    }

    def environments(self) -> torch.Tensor:
        s = self.settings
        return linspace_grid((*s.beta_range, s.n_beta))

    def initial_conditions(self, env: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        s = self.settings
        y, x = periodic_coordinates(s.sim_resolution, s.length, origin=-s.length / 2)
        centre = 4 * torch.rand(n, 2, 1, 1, generator=generator, dtype=torch.float64) - 2
        chirality = torch.randint(0, 2, (n, 1, 1), generator=generator).double() * 2 - 1
        phase = 2 * math.pi * torch.rand(n, 1, 1, generator=generator, dtype=torch.float64)
        dx, dy = x - centre[:, 0], y - centre[:, 1]
        r = torch.sqrt(dx**2 + dy**2)
        z = torch.tanh(r) * torch.exp(1j * (chirality * torch.atan2(dy, dx) - r + phase))
        return torch.stack([z.real, z.imag], dim=1)  # [n, 2, H, W]

    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        s = self.settings
        n = s.sim_resolution
        ky, kx = rfft_wavenumbers(n, s.length, x0.device)
        linear = -s.mu * (kx**2 + ky**2)  # diffusion only: never positive
        beta = envs[:, 0].view(-1, 1, 1, 1)

        def reaction(state_hat: torch.Tensor) -> torch.Tensor:
            u, v = torch.fft.irfft2(state_hat, s=(n, n)).unbind(dim=2)
            a2 = u**2 + v**2
            lam, om = 1 - a2, -beta * a2
            return torch.fft.rfft2(torch.stack([lam * u - om * v, om * u + lam * v], dim=2))

        substeps = max(1, math.ceil(s.dt / s.max_step - 1e-9))
        h = s.dt / substeps
        e_half = torch.exp(linear * h / 2)
        state = torch.fft.rfft2(x0.double())  # [E, N, 2, n, n//2+1]
        n_burn = round(s.burn_in / s.dt)
        frame, frames = x0.double(), []
        for i in range(n_burn + s.n_frames):
            if i >= n_burn:
                frames.append(frame)
            if len(frames) == s.n_frames:
                break
            state = torch.fft.rfft2(frame)  # re-projected each frame: drops what the inverse real FFT ignores
            for _ in range(substeps):
                state = ifrk4_step(state, h, e_half, reaction)
            frame = torch.fft.irfft2(state, s=(n, n))
            if not torch.isfinite(frame).all():
                raise SimulationError("lambda-omega solve produced NaN or inf (lower max_step)")
        return spectral_downsample(torch.stack(frames, dim=2), s.resolution).float()

    def solver_attributes(self) -> dict[str, Any]:
        return {
            "method": "pseudo-spectral, integrating-factor RK4 (diffusion exact)",
            "dtype": "float64",
            "domain": "[-10, 10]^2 periodic",
            "max_step": self.settings.max_step,
        }
