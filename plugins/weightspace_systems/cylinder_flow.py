"""``cylinder-flow``: flow past a cylinder with a D2Q9 lattice-Boltzmann solver (BGK collisions).

The scheme follows Latt's classic cylinder example: a channel of ``nx`` x ``ny`` cells, periodic across
the flow, a Zou-He velocity inlet on the left (speed ``inlet_speed``, with a tiny sinusoidal
perturbation), a zero-gradient outlet on the right, and full-way bounce-back on the cylinder, which
sits at x = nx / 4, one cell off the centre line so that the wake sheds vortices. Environments are
the Reynolds number Re = U D / nu (D = 2 r, in cells) and the radius r. The paper's r in [10, 25]
blocks most of a 64-cell channel (it blows up or stops shedding), so radii are given as fractions of
the channel height: [0.078, 0.195] ny, i.e. r in [5, 12.5] on 128 x 64. BGK goes unstable as the
relaxation time nears 1/2, about Re / D > 80: these ranges keep Re / D <= 50.

Shedding is started by a transverse velocity kick in the wake; its random sign and strength (and
small random noise) give each trajectory of an environment a different shedding phase. The spin-up
lasts ``burn_in`` convective times D / U of the largest cylinder in the batch (shedding starts later
for larger cylinders). The inlet speed is 0.05: at 0.1 the flow around r = 12.5 at Re = 500 reaches
Mach ~0.5 and goes NaN after about 30 D / U, while 0.05 stayed stable at all four corners of the
environment grid (tested); shedding then has Strouhal number ~0.2. Frames are the velocity (u, v)
in lattice units every ``dt`` lattice steps; frame 0 is the state after the spin-up. The solver state
also holds non-equilibrium populations, so restarting from a saved frame (at equilibrium) reproduces
a trajectory only approximately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from weightspace.config import require_positive
from weightspace.errors import SimulationError
from weightspace.system import System, SystemSettings, linspace_grid

# D2Q9 velocities ordered as in Latt's example: 0-2 move right, 3-5 vertical only, 6-8 move left
VELOCITIES = torch.tensor([[1, 1], [1, 0], [1, -1], [0, 1], [0, 0], [0, -1], [-1, 1], [-1, 0], [-1, -1]])
WEIGHTS = torch.tensor([1 / 36, 1 / 9, 1 / 36, 1 / 9, 4 / 9, 1 / 9, 1 / 36, 1 / 9, 1 / 36], dtype=torch.float64)
OPPOSITE = [8, 7, 6, 5, 4, 3, 2, 1, 0]
RIGHT, VERTICAL, LEFT = [0, 1, 2], [3, 4, 5], [6, 7, 8]


@dataclass(frozen=True)
class CylinderFlowSettings(SystemSettings):
    re_range: tuple[float, float] = (200.0, 500.0)
    n_re: int = 31
    radius_range: tuple[float, float] = (0.078125, 0.1953125)
    """Cylinder radius as a fraction of the channel height ny."""
    n_radius: int = 16
    nx: int = 128
    ny: int = 64
    inlet_speed: float = 0.05
    burn_in: float = 3.0
    """Spin-up in convective times D / U (of the largest cylinder in a batch) before frame 0."""
    kick: float = 0.5
    """Peak transverse velocity, in units of the inlet speed, of the wake kick that starts shedding."""
    perturbation: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(
            self, "re_range", "n_re", "radius_range", "n_radius", "nx", "ny", "inlet_speed", "burn_in", "kick"
        )
        if self.dt != int(self.dt):
            raise ValueError(f"dt counts lattice steps between frames and must be an integer, got {self.dt}")
        if self.inlet_speed > 0.1:
            raise ValueError("inlet_speed above 0.1 (lattice units) goes unstable behind large cylinders")


class CylinderFlow(System):
    name = "cylinder-flow"
    param_names = ("Re", "r")
    channel_names = ("u", "v")
    Settings = CylinderFlowSettings
    profiles = {
        "quick": {
            "n_re": 3,
            "n_radius": 3,
            "n_seen": 4,
            "val_fraction": 0.4,
            "n_train": 4,
            "n_test": 2,
            "n_frames": 21,
            "dt": 25,
        },
        "paper": {
            "n_re": 31,
            "n_radius": 16,
            "n_seen": 96,
            "val_fraction": 0.1,
            "n_train": 20,
            "n_test": 20,
            "n_frames": 101,
            "dt": 25,
        },
    }

    def environments(self) -> torch.Tensor:
        s = self.settings
        grid = linspace_grid((*s.re_range, s.n_re), (*s.radius_range, s.n_radius))
        grid[:, 1] *= s.ny  # radius in cells
        return grid

    def state_shape(self) -> tuple[int, ...]:
        return (2, self.settings.ny, self.settings.nx)

    def initial_conditions(self, env: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """Velocity fields ``[n, 2, ny, nx]``: the inlet speed, a transverse kick of random sign and
        strength (0.5 to 1.5 times ``kick``) in a blob behind the cylinder, and small random noise."""
        s = self.settings
        radius = float(env[1])
        y = torch.arange(s.ny, dtype=torch.float64).view(-1, 1)
        x = torch.arange(s.nx, dtype=torch.float64).view(1, -1)
        blob = torch.exp(-((x - s.nx / 4 - 2.5 * radius) ** 2 + (y - s.ny / 2) ** 2) / (2 * radius**2))
        sign = torch.randint(0, 2, (n, 1, 1), generator=generator).double() * 2 - 1
        strength = s.kick * (0.5 + torch.rand(n, 1, 1, generator=generator, dtype=torch.float64))
        velocity = s.perturbation * s.inlet_speed * torch.randn(n, 2, s.ny, s.nx, generator=generator).double()
        velocity[:, 0] += s.inlet_speed
        velocity[:, 1] += s.inlet_speed * sign * strength * blob
        return velocity

    def obstacle(self, radius: torch.Tensor) -> torch.Tensor:
        """Solid cells ``[E, nx, ny]`` of cylinders of the given radii."""
        s = self.settings
        x = torch.arange(s.nx, dtype=torch.float64, device=radius.device).view(1, -1, 1)
        y = torch.arange(s.ny, dtype=torch.float64, device=radius.device).view(1, 1, -1)
        cx, cy = s.nx / 4, s.ny / 2 + 1
        return (x - cx) ** 2 + (y - cy) ** 2 < radius.view(-1, 1, 1) ** 2

    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        s = self.settings
        n_env, n_traj = x0.shape[:2]
        batch = n_env * n_traj
        re, radius = envs[:, 0].repeat_interleave(n_traj), envs[:, 1].repeat_interleave(n_traj)
        omega = (1.0 / (3 * s.inlet_speed * 2 * radius / re + 0.5)).float().view(-1, 1, 1, 1)
        solid = self.obstacle(radius).unsqueeze(1)  # [B, 1, nx, ny]
        y = torch.arange(s.ny, dtype=torch.float32, device=x0.device)
        inlet = torch.zeros(2, s.ny, device=x0.device)
        inlet[0] = s.inlet_speed * (1 + 1e-4 * torch.sin(2 * math.pi * y / (s.ny - 1)))

        vel = x0.reshape(batch, 2, s.ny, s.nx).transpose(-1, -2).float()  # [B, 2, nx, ny]
        vel = torch.where(solid, torch.zeros_like(vel), vel)
        f = equilibrium(torch.ones(batch, s.nx, s.ny, device=x0.device), vel)

        def step(f: torch.Tensor) -> torch.Tensor:  # f is always a fresh tensor: edited in place
            f[:, LEFT, -1] = f[:, LEFT, -2]  # outflow: zero gradient
            rho, u = macroscopic(f)
            u[:, :, 0] = inlet  # Zou-He velocity inlet
            rho[:, 0] = (f[:, VERTICAL, 0].sum(1) + 2 * f[:, LEFT, 0].sum(1)) / (1 - u[:, 0, 0])
            feq = equilibrium(rho, u)
            f[:, RIGHT, 0] = feq[:, RIGHT, 0] + f[:, LEFT[::-1], 0] - feq[:, LEFT[::-1], 0]
            post = f - omega * (f - feq)
            post = torch.where(solid, f[:, OPPOSITE], post)  # bounce-back inside the cylinder
            return stream(post)

        # spin-up: burn_in convective times D / U of the largest cylinder in the batch
        for _ in range(int(s.burn_in * 2 * float(radius.max()) / s.inlet_speed)):
            f = step(f)
        frames = []
        for i in range(s.n_frames):
            if i:
                for _ in range(int(s.dt)):
                    f = step(f)
            _, u = macroscopic(f)
            if not torch.isfinite(u).all():
                raise SimulationError("cylinder-flow lattice Boltzmann went unstable (NaN): lower Re / D")
            frames.append(torch.where(solid, torch.zeros_like(u), u))
        out = torch.stack(frames, dim=1).transpose(-1, -2)  # [B, T, 2, ny, nx]
        return out.reshape(n_env, n_traj, s.n_frames, 2, s.ny, s.nx)

    def solver_attributes(self) -> dict[str, Any]:
        return {
            "method": "D2Q9 lattice Boltzmann, BGK, Zou-He inlet, bounce-back cylinder",
            "dtype": "float32",
            "units": "lattice (dx = dt = 1)",
            "inlet_speed": self.settings.inlet_speed,
        }


def macroscopic(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Density ``[B, nx, ny]`` and velocity ``[B, 2, nx, ny]`` of populations ``[B, 9, nx, ny]``."""
    rho = f.sum(dim=1)
    c = VELOCITIES.to(f)
    u = torch.einsum("bixy,id->bdxy", f, c) / rho.unsqueeze(1)
    return rho, u


def equilibrium(rho: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    c = VELOCITIES.to(u)
    cu = 3 * torch.einsum("id,bdxy->bixy", c, u)
    usqr = 1.5 * (u**2).sum(dim=1, keepdim=True)
    return WEIGHTS.to(u).view(1, 9, 1, 1) * rho.unsqueeze(1) * (1 + cu + 0.5 * cu**2 - usqr)


def stream(f: torch.Tensor) -> torch.Tensor:
    """Move each population one cell along its velocity (periodic; the inlet and outlet overwrite x edges)."""
    out = torch.empty_like(f)
    for i, (cx, cy) in enumerate(VELOCITIES.tolist()):
        out[:, i] = torch.roll(f[:, i], shifts=(cx, cy), dims=(1, 2))
    return out
