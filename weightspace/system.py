"""The System interface: a dynamical system simulated over a grid of environments.

A system names its environment parameters and state channels, holds its simulation settings as a
frozen dataclass chosen by profile (``quick`` for a CPU, ``paper`` for the paper's scale: profiles
are data, not code branches), splits its environments three ways (seen: the zoo's; validation: unseen
ones every choice is made on; test: unseen ones that are only reported), and simulates
trajectories ``[E, N, T, *state]`` where frame 0 is the initial condition. The per-frame physical
statistics it reports are what the prompter will condition on.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch

from weightspace.config import MAX_COUNT, make_config, require_at_most, require_positive
from weightspace.errors import ConfigError

MAX_TRAJECTORIES = 10_000
"""Upper bound of environments seen and trajectories per environment: a dataset holds every one
of them in memory, so a typo is refused before the solver allocates it."""


@dataclass(frozen=True)
class SystemSettings:
    """Settings every system has; systems extend this with their solver's own fields."""

    n_frames: int = 101
    """Saved frames per trajectory, the initial condition included."""
    dt: float = 0.1
    """Time between saved frames."""
    n_seen: int = 24
    """Environments whose trajectories are used for training (the rest are unseen)."""
    split_seed: int = 0
    """Seed of the environment split, apart from the run's seed: every seed of a study is scored on
    the same validation and test environments, so methods pair environment by environment across
    seeds, while zoos, training and trajectories vary with the run's seed."""
    val_fraction: float = 0.5
    """Share of the unseen environments set aside for validation (rounded, at least one, leaving at
    least one for test): every setting, checkpoint and candidate count is chosen on them, so the
    remaining unseen (test) environments only ever report. A fraction rather than a count, so that a
    profile's split still holds when a grid is made smaller or larger."""
    n_train: int = 6
    """Training trajectories per seen environment."""
    n_test: int = 2
    """Test trajectories per environment (new initial conditions), seen and unseen alike."""

    def __post_init__(self) -> None:
        require_positive(self, "n_frames", "dt", "n_seen", "n_train", "n_test")
        require_at_most(self, MAX_TRAJECTORIES, "n_seen", "n_train", "n_test")
        if not 0 <= self.split_seed < 2**63:
            raise ValueError(f"split_seed must be in [0, 2**63), got {self.split_seed}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        require_at_most(self, MAX_COUNT, "n_frames")


class System(ABC):
    """A dynamical system with a profile's settings. Subclasses set the class attributes below."""

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    channel_names: ClassVar[tuple[str, ...]]
    Settings: ClassVar[type[SystemSettings]]
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]]
    """Profile name -> settings overrides, e.g. ``{"quick": {...}, "paper": {...}}``."""
    is_ode: ClassVar[bool] = False
    """True when a state is a vector ``[D]``; otherwise it is a field ``[C, H, W]``."""

    def __init__(self, profile: str = "quick", overrides: Mapping[str, Any] | None = None) -> None:
        if profile not in self.profiles:
            raise ConfigError(
                f"unknown profile {profile!r} for system {self.name!r}; profiles: {', '.join(self.profiles)}"
            )
        self.profile = profile
        self.settings = make_config(
            self.Settings, {**self.profiles[profile], **(overrides or {})}, owner=f"system {self.name!r}"
        )
        check_split(self.name, len(self.environments()), self.settings.n_seen, self.n_val_envs)

    # -- what a subclass provides ---------------------------------------------------------------
    @abstractmethod
    def environments(self) -> torch.Tensor:
        """The full environment grid ``[E, P]`` (float64), in a fixed order."""

    @abstractmethod
    def state_shape(self) -> tuple[int, ...]:
        """Shape of one saved frame: ``(C, H, W)`` for fields, ``(D,)`` for ODE states."""

    @abstractmethod
    def initial_conditions(self, env: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` random initial states ``[n, *state]`` for one environment ``[P]``."""

    @abstractmethod
    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Trajectories ``[E, N, T, *state]`` from ``x0`` ``[E, N, *state]`` under ``envs`` ``[E, P]``,
        all in one batched solve on ``x0``'s device; frame 0 is ``x0`` (after any spin-up the system
        documents)."""

    def solver_attributes(self) -> dict[str, Any]:
        """Solver settings worth recording beside the data (the settings are recorded anyway)."""
        return {}

    # -- provided --------------------------------------------------------------------------------
    @property
    def n_val_envs(self) -> int:
        """Validation environments: ``val_fraction`` of the unseen ones, rounded, kept between one and
        all but one of them."""
        unseen = len(self.environments()) - self.settings.n_seen
        return max(1, min(unseen - 1, round(self.settings.val_fraction * unseen)))

    def split(self, seed: int) -> EnvironmentSplit:
        """Indices of the seen, validation and test environments: a seeded random partition."""
        return random_split(len(self.environments()), self.settings.n_seen, self.n_val_envs, seed)

    def simulate(
        self, env_index: torch.Tensor, n_traj: int, seed: int, stream: str = "", device: str | torch.device = "cpu"
    ) -> torch.Tensor:
        """Trajectories of the environments at ``env_index``, ``[E, n_traj, T, *state]``.

        Each environment draws its initial conditions from its own generator, seeded by
        ``(seed, stream, environment index)``, so the data do not depend on how environments are
        batched together (nor on the device: they are drawn on the CPU); the solve itself runs on
        ``device``, batched over environments and trajectories.
        """
        envs = self.environments()[env_index]
        x0 = torch.stack(
            [
                self.initial_conditions(env, n_traj, torch.Generator().manual_seed(derived_seed(seed, stream, i)))
                for i, env in zip(env_index.tolist(), envs)
            ]
        )
        return self.solve(envs.to(device), x0.to(device))

    def polynomial_coefficients(self, env_params: torch.Tensor) -> dict[str, dict[str, float]] | None:
        """The true right-hand side of an ODE system in environment ``env_params`` ``[P]`` as polynomial
        terms: ``{channel: {term: coefficient}}``, terms named as pysindy names them (``"prey"``,
        ``"prey predator"``, ``"prey^2"``, ``"1"``); ``None`` when not a polynomial ODE (the default)."""
        return None

    def statistics(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame physical statistics ``[..., S]`` of states ``[..., *state]`` (see :func:`frame_statistics`)."""
        return frame_statistics(frames, ode=self.is_ode)


class EnvironmentSplit(NamedTuple):
    """A partition of an environment grid, each part sorted."""

    seen: torch.Tensor
    """Environments the zoo is trained on (``train`` and ``test_in``)."""
    val: torch.Tensor
    """Unseen environments every choice is made on (``val_out``)."""
    test: torch.Tensor
    """Unseen environments that are only reported (``test_out``)."""


def check_split(owner: str, n_envs: int, n_seen: int, n_val: int) -> None:
    """Raise a :class:`ConfigError` unless ``n_seen`` seen and ``n_val`` validation environments
    leave at least one test environment of ``n_envs``."""
    if n_seen < 1 or n_val < 1 or n_seen + n_val >= n_envs:
        raise ConfigError(
            f"{owner} has {n_envs} environments: {n_seen} seen and {n_val} for validation leave "
            f"{n_envs - n_seen - n_val} for test; every part needs at least one (lower n_seen or enlarge the grid)"
        )


def random_split(n_envs: int, n_seen: int, n_val: int, seed: int) -> EnvironmentSplit:
    """A seeded random partition of ``n_envs`` environments into ``n_seen`` seen, ``n_val``
    validation and the rest test. The seen environments are the first of one permutation, so they
    do not depend on ``n_val``: a zoo stays the same zoo when validation is carved out of the rest."""
    order = torch.randperm(n_envs, generator=torch.Generator().manual_seed(seed))
    parts = order[:n_seen], order[n_seen : n_seen + n_val], order[n_seen + n_val :]
    return EnvironmentSplit(*(p.sort().values for p in parts))


def derived_seed(seed: int, *parts: Any) -> int:
    """A 63-bit seed from ``seed`` and labels, stable across runs and platforms."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def frame_statistics(frames: torch.Tensor, ode: bool) -> torch.Tensor:
    """Statistics of each frame, summed over channels.

    Fields ``[..., C, H, W]`` (periodic grid, unit spacing): spatial mean, variance, energy
    (mean of u^2 / 2) and enstrophy (mean of |grad u|^2 / 2, central differences).
    ODE states ``[..., D]``: the components, their squares and pairwise products (first and
    second moments of the state).
    """
    if ode:
        d = frames.shape[-1]
        i, j = torch.triu_indices(d, d)
        return torch.cat([frames, frames[..., i] * frames[..., j]], dim=-1)
    dims = (-2, -1)
    mean = frames.mean(dim=dims)
    var = frames.var(dim=dims, correction=0)
    energy = 0.5 * (frames**2).mean(dim=dims)
    gx = 0.5 * (frames.roll(-1, -1) - frames.roll(1, -1))
    gy = 0.5 * (frames.roll(-1, -2) - frames.roll(1, -2))
    enstrophy = 0.5 * (gx**2 + gy**2).mean(dim=dims)
    return torch.stack([s.sum(dim=-1) for s in (mean, var, energy, enstrophy)], dim=-1)


def linspace_grid(*axes: tuple[float, float, int]) -> torch.Tensor:
    """The Cartesian grid ``[prod(n), len(axes)]`` of ``(low, high, n)`` axes, first axis slowest."""
    values = [torch.linspace(lo, hi, n, dtype=torch.float64) for lo, hi, n in axes]
    mesh = torch.meshgrid(*values, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)
