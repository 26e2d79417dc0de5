"""``gray-scott``: the Gray-Scott reaction-diffusion system, two chemical species on a periodic grid.

    u_t = D_u laplace(u) - u v^2 + F (1 - u)
    v_t = D_v laplace(v) + u v^2 - (F + k) v

The environments are the feed rate F and the kill rate k on a regular grid; the state is the field
pair ``[2, H, W]`` (channels ``u`` and ``v``). The solver is the simplest that is right: explicit
Euler steps of at most ``max_step`` time units, landing on the saved frames, with the five-point
Laplacian on a unit-spaced periodic grid. Explicit diffusion is stable only while D max_step <= 1/4
on such a grid, so the settings refuse larger steps. An initial condition is the trivial state
u = 1, v = 0 with a square of u = 1/2, v = 1/4 at a random place (the classic way to start spots),
plus a little noise; frame 0 is that state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from weightspace.config import require_positive
from weightspace.system import System, SystemSettings, linspace_grid


@dataclass(frozen=True)
class GrayScottSettings(SystemSettings):
    feed_range: tuple[float, float] = (0.030, 0.050)
    kill_range: tuple[float, float] = (0.055, 0.065)
    n_feed: int = 4
    n_kill: int = 4
    resolution: int = 16
    """Grid points per side; unit spacing."""
    diffusion_u: float = 0.16
    diffusion_v: float = 0.08
    max_step: float = 1.0
    """Longest explicit Euler step; each frame interval is split into equal steps no longer."""
    seed_size: float = 0.25
    """Side of the initial square of v, as a fraction of the grid."""
    noise: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "feed_range", "kill_range", "n_feed", "n_kill", "resolution")
        require_positive(self, "diffusion_u", "diffusion_v", "max_step", "seed_size")
        for key in ("feed_range", "kill_range"):
            lo, hi = getattr(self, key)
            if lo > hi:
                raise ValueError(f"{key} must be (low, high), got {(lo, hi)}")
        if max(self.diffusion_u, self.diffusion_v) * self.max_step > 0.25:
            raise ValueError("explicit diffusion is unstable: need max(diffusion_u, diffusion_v) * max_step <= 0.25")
        if not 0 < self.seed_size < 1 or self.noise < 0:
            raise ValueError("seed_size must be in (0, 1) and noise must not be negative")


class GrayScott(System):
    name = "gray-scott"
    param_names = ("F", "k")
    channel_names = ("u", "v")
    Settings = GrayScottSettings
    profiles = {
        "quick": {"n_feed": 3, "n_kill": 3, "n_seen": 5, "n_train": 4, "n_test": 2, "n_frames": 11, "dt": 5.0},
        "paper": {
            "n_feed": 8,
            "n_kill": 8,
            "n_seen": 32,
            "n_train": 20,
            "n_test": 10,
            "n_frames": 41,
            "dt": 5.0,
            "resolution": 32,
        },
    }

    def environments(self) -> torch.Tensor:
        s = self.settings
        return linspace_grid((*s.feed_range, s.n_feed), (*s.kill_range, s.n_kill))

    def state_shape(self) -> tuple[int, ...]:
        return (2, self.settings.resolution, self.settings.resolution)

    def initial_conditions(self, env: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        s = self.settings
        side = max(1, round(s.seed_size * s.resolution))
        state = torch.zeros(n, 2, s.resolution, s.resolution, dtype=torch.float64)
        state[:, 0] = 1.0
        state[:, 0, :side, :side] = 0.5
        state[:, 1, :side, :side] = 0.25
        shifts = torch.randint(0, s.resolution, (n, 2), generator=generator).tolist()
        state = torch.stack([x.roll(shift, dims=(-2, -1)) for x, shift in zip(state, shifts)])
        return state + s.noise * torch.randn(state.shape, generator=generator, dtype=torch.float64)

    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        s = self.settings
        feed, kill = envs[:, 0].view(-1, 1, 1, 1), envs[:, 1].view(-1, 1, 1, 1)
        steps = max(1, math.ceil(s.dt / s.max_step - 1e-9))
        h = s.dt / steps
        u, v = x0[:, :, 0].double(), x0[:, :, 1].double()  # [E, N, H, W]
        frames = [torch.stack([u, v], dim=2)]
        for _ in range(s.n_frames - 1):
            for _ in range(steps):
                uvv = u * v * v
                u, v = (
                    u + h * (s.diffusion_u * laplacian(u) - uvv + feed * (1 - u)),
                    v + h * (s.diffusion_v * laplacian(v) + uvv - (feed + kill) * v),
                )
            frames.append(torch.stack([u, v], dim=2))
        return torch.stack(frames, dim=2).float()  # [E, N, T, 2, H, W]

    def solver_attributes(self) -> dict[str, Any]:
        return {
            "method": "explicit Euler, five-point Laplacian",
            "dtype": "float64",
            "domain": "periodic, unit grid spacing",
            "max_step": self.settings.max_step,
        }


def laplacian(field: torch.Tensor) -> torch.Tensor:
    """Five-point Laplacian of periodic fields ``[..., H, W]`` on a unit grid."""
    return field.roll(1, -1) + field.roll(-1, -1) + field.roll(1, -2) + field.roll(-1, -2) - 4 * field
