"""A batched pseudo-spectral solver for 2-D incompressible flow in vorticity form.

    d(omega)/dt + u . grad(omega) = nu * laplace(omega) - drag * omega + f,    u = curl(psi), laplace(psi) = -omega

on a periodic square of side ``length``. The stiff linear part (viscosity and drag, never positive)
is integrated exactly with an integrating factor; the advection and forcing with classical RK4
(IFRK4). Products are dealiased with the 2/3 rule. The step is adaptive from the CFL number of the
fastest flow in the batch, re-measured before every step, so all environments and trajectories
advance together in one tensor and land exactly on the saved frames. A non-finite state stops the
solve with an error instead of saving NaN.
"""

from __future__ import annotations

import math

import torch

from weightspace.errors import SimulationError
from weightspace_systems.grid import rfft_wavenumbers
from weightspace_systems.timestepping import ifrk4_step


class VorticitySolver:
    def __init__(
        self,
        n: int,
        length: float,
        nu: torch.Tensor,
        drag: float,
        forcing: torch.Tensor,
        cfl: float = 1.0,
        max_substeps: int = 10_000,
    ) -> None:
        """``nu`` ``[E]``, ``forcing`` ``[E, n, n]`` (physical space): float64, on the solve's device."""
        self.n, self.length, self.cfl, self.max_substeps = n, length, cfl, max_substeps
        self.ky, self.kx = rfft_wavenumbers(n, length, nu.device)  # axis -2 is y, axis -1 is x
        self.k2 = self.kx**2 + self.ky**2
        self.inv_k2 = torch.where(self.k2 > 0, 1.0 / self.k2.clamp(min=1e-30), torch.zeros_like(self.k2))
        k_max = n // 2
        cut = 2.0 / 3.0 * k_max * (2 * math.pi / length)
        self.dealias = ((self.kx.abs() < cut) & (self.ky.abs() < cut)).to(torch.float64)
        self.linear = -nu.view(-1, 1, 1, 1) * self.k2 - drag  # [E, 1, n, n//2+1], never positive
        self.forcing_hat = torch.fft.rfft2(forcing).unsqueeze(1)  # [E, 1, n, n//2+1]
        self.dx = length / n

    def velocity(self, w_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        psi_hat = w_hat * self.inv_k2
        u = torch.fft.irfft2(1j * self.ky * psi_hat, s=(self.n, self.n))  # d(psi)/dy
        v = torch.fft.irfft2(-1j * self.kx * psi_hat, s=(self.n, self.n))  # -d(psi)/dx
        return u, v

    def nonlinear(self, w_hat: torch.Tensor) -> torch.Tensor:
        u, v = self.velocity(w_hat)
        wx = torch.fft.irfft2(1j * self.kx * w_hat, s=(self.n, self.n))
        wy = torch.fft.irfft2(1j * self.ky * w_hat, s=(self.n, self.n))
        return -self.dealias * torch.fft.rfft2(u * wx + v * wy) + self.forcing_hat

    def advance(self, w_hat: torch.Tensor, interval: float) -> torch.Tensor:
        """Integrate over ``interval`` with IFRK4 steps limited by the CFL number of the fastest flow in
        the batch, re-measured before every step; the last step lands exactly on the interval's end."""
        remaining, steps = interval, 0
        while remaining > 1e-12 * interval:
            u, v = self.velocity(w_hat)
            speed = float((u.abs() + v.abs()).max())
            dt = min(remaining, self.cfl * self.dx / speed) if speed > 0 else remaining
            steps += 1
            if steps > self.max_substeps:
                raise SimulationError(
                    f"vorticity solve needs over {self.max_substeps} steps per frame (flow speed {speed:.3g})"
                )
            w_hat = self._checked(ifrk4_step(w_hat, dt, torch.exp(self.linear * dt / 2), self.nonlinear))
            remaining -= dt
        return w_hat

    def solve(self, w0: torch.Tensor, n_frames: int, dt: float, burn_in: float = 0.0) -> torch.Tensor:
        """Frames ``[E, N, n_frames, n, n]`` of vorticity from ``w0`` ``[E, N, n, n]``; frame 0 is the
        state after ``burn_in`` time units."""
        w_hat = torch.fft.rfft2(w0.double())
        if burn_in > 0:
            steps = max(1, math.ceil(burn_in / dt))
            for _ in range(steps):
                w_hat = self.advance(w_hat, burn_in / steps)
        frames = [torch.fft.irfft2(w_hat, s=(self.n, self.n))]
        for _ in range(n_frames - 1):
            w_hat = self.advance(w_hat, dt)
            frames.append(torch.fft.irfft2(w_hat, s=(self.n, self.n)))
        return torch.stack(frames, dim=2)

    @staticmethod
    def _checked(w_hat: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(w_hat).all():
            raise SimulationError("vorticity solve produced NaN or inf (lower the CFL number or refine the grid)")
        return w_hat


def gaussian_random_field(
    n: int, count: int, alpha: float, tau: float, generator: torch.Generator, length: float = 1.0
) -> torch.Tensor:
    """``count`` periodic Gaussian random fields ``[count, n, n]``, zero mean, with covariance
    sigma^2 (-laplace + tau^2)^(-alpha), sigma = tau^(alpha - 1) (the FNO and CoDA Navier-Stokes data)."""
    k = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64) * (2 * math.pi / length)
    ky, kx = torch.meshgrid(k, k, indexing="ij")
    sigma = tau ** (alpha - 1.0)
    sqrt_eig = (n**2) * math.sqrt(2.0) * sigma * (kx**2 + ky**2 + tau**2) ** (-alpha / 2.0)
    sqrt_eig[0, 0] = 0.0
    noise = torch.randn(count, n, n, 2, generator=generator, dtype=torch.float64)
    coeff = sqrt_eig * torch.view_as_complex(noise)
    return torch.fft.ifft2(coeff).real
