"""``lotka-volterra``: predator-prey dynamics dx = a x - b x y, dy = d x y - c y (a = c = 0.5).

Environments are (b, d) on a regular grid over [0.5, 1.0]^2 (11 x 11 in the paper, 24 seen).
Initial conditions are uniform in [1, 3]^2. All trajectories of all environments are integrated in
one ``torchdiffeq.odeint`` call with dopri5 in float64 at rtol = atol = 1e-9 and saved as float32
every dt = 0.1 up to T = 10. The first integral V = d x - c ln x + b y - a ln y is conserved to
about the solver tolerance (tested). The period (about 12.6) exceeds T, so a trajectory covers
less than one cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torchdiffeq import odeint

from weightspace.config import require_positive
from weightspace.system import System, SystemSettings, linspace_grid


@dataclass(frozen=True)
class LotkaVolterraSettings(SystemSettings):
    a: float = 0.5
    c: float = 0.5
    b_range: tuple[float, float] = (0.5, 1.0)
    d_range: tuple[float, float] = (0.5, 1.0)
    n_b: int = 11
    n_d: int = 11
    x0_range: tuple[float, float] = (1.0, 3.0)
    tolerance: float = 1e-9

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "a", "c", "b_range", "d_range", "n_b", "n_d", "x0_range", "tolerance")
        for key in ("b_range", "d_range", "x0_range"):
            lo, hi = getattr(self, key)
            if lo > hi:
                raise ValueError(f"{key} must be (low, high), got {(lo, hi)}")


class LotkaVolterra(System):
    name = "lotka-volterra"
    param_names = ("b", "d")
    channel_names = ("prey", "predator")
    is_ode = True
    Settings = LotkaVolterraSettings
    profiles = {
        "quick": {"n_b": 10, "n_d": 10, "n_seen": 48, "val_fraction": 0.5, "n_train": 6, "n_test": 5},
        "paper": {"n_b": 11, "n_d": 11, "n_seen": 24, "val_fraction": 0.2, "n_train": 20, "n_test": 20},
    }

    def environments(self) -> torch.Tensor:
        s = self.settings
        return linspace_grid((*s.b_range, s.n_b), (*s.d_range, s.n_d))

    def state_shape(self) -> tuple[int, ...]:
        return (2,)

    def initial_conditions(self, env: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        lo, hi = self.settings.x0_range
        return lo + (hi - lo) * torch.rand(n, 2, generator=generator, dtype=torch.float64)

    def vector_field(self, envs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """dx/dt for states ``[E, N, 2]`` under ``envs`` ``[E, 2]`` (b, d)."""
        s = self.settings
        b, d = envs[:, None, 0], envs[:, None, 1]
        x, y = state[..., 0], state[..., 1]
        return torch.stack([s.a * x - b * x * y, d * x * y - s.c * y], dim=-1)

    def polynomial_coefficients(self, env_params: torch.Tensor) -> dict[str, dict[str, float]]:
        s = self.settings
        b, d = (float(v) for v in env_params)
        return {"prey": {"prey": s.a, "prey predator": -b}, "predator": {"prey predator": d, "predator": -s.c}}

    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        s = self.settings
        times = torch.arange(s.n_frames, dtype=torch.float64, device=x0.device) * s.dt
        path = odeint(
            lambda _t, y: self.vector_field(envs, y),
            x0.double(),
            times,
            method="dopri5",
            rtol=s.tolerance,
            atol=s.tolerance,
        )
        return path.movedim(0, 2).float()  # [T, E, N, 2] -> [E, N, T, 2]

    def first_integral(self, envs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """V = d x - c ln x + b y - a ln y for states ``[E, ..., 2]``; constant along exact trajectories."""
        s = self.settings
        shape = (envs.shape[0],) + (1,) * (states.dim() - 2)
        b, d = envs[:, 0].view(shape), envs[:, 1].view(shape)
        x, y = states[..., 0].double(), states[..., 1].double()
        return d * x - s.c * torch.log(x) + b * y - s.a * torch.log(y)

    def solver_attributes(self) -> dict[str, Any]:
        return {
            "method": "torchdiffeq dopri5",
            "dtype": "float64",
            "rtol": self.settings.tolerance,
            "atol": self.settings.tolerance,
        }
