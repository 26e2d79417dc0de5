"""Trajectories grouped by environment, their per-channel scale, and training windows cut from them.

Trainers and evaluation see a split as ``[E, n, T, *state]`` (environments, trajectories, frames).
Losses and metrics are computed on per-channel normalized states, ``(x - mean) / std`` with the
mean and standard deviation of the training split over trajectories, frames and grid points, so
that RMSE figures compare across channels and systems. Experts themselves map raw states to raw
states, so a generated expert is usable without weightspace.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weightspace.data.dataset import Split
from weightspace.errors import StorageError


@dataclass(frozen=True)
class ChannelScale:
    """Per-channel mean and std of states, shaped to broadcast over one state (``[C, 1, 1]`` or ``[D]``)."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, trajectories: torch.Tensor, state_ndim: int) -> ChannelScale:
        """Statistics of ``trajectories`` ``[..., *state]`` per channel (the first state axis)."""
        channels = trajectories.shape[-state_ndim]
        values = trajectories.movedim(-state_ndim, 0).reshape(channels, -1).double()
        shape = (channels,) + (1,) * (state_ndim - 1)
        std = values.std(dim=1)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return cls(values.mean(dim=1).float().reshape(shape), std.float().reshape(shape))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]], state_ndim: int) -> ChannelScale:
        shape = (-1,) + (1,) * (state_ndim - 1)
        return cls(torch.tensor(data["mean"]).reshape(shape), torch.tensor(data["std"]).reshape(shape))


def by_environment(split: Split) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(env_index [E], env_params [E, P], trajectories [E, n, T, *state])`` of a split.

    Every environment of a split must hold the same number of trajectories (as simulated)."""
    envs, counts = split.env_index.unique(sorted=True, return_counts=True)
    if len(counts.unique()) != 1:
        raise StorageError(f"environments hold different numbers of trajectories: {counts.tolist()}")
    order = torch.sort(split.env_index, stable=True).indices
    first = torch.searchsorted(split.env_index[order], envs)
    traj = split.trajectories[order].reshape(len(envs), int(counts[0]), *split.trajectories.shape[1:])
    return envs, split.env_params[order][first], traj


def window_starts(n_frames: int, length: int) -> int:
    """How many windows of ``length + 1`` frames a trajectory of ``n_frames`` holds (checked)."""
    count = n_frames - length
    if count < 1:
        raise StorageError(f"trajectories of {n_frames} frames are too short for windows of {length} steps")
    return count


def gather_windows(
    trajectories: torch.Tensor, group: torch.Tensor, traj: torch.Tensor, start: torch.Tensor, length: int
) -> torch.Tensor:
    """Windows ``[B, M, length + 1, *state]`` from ``trajectories`` ``[G, n, T, *state]``: for each
    expert b and sample m, frames ``start[b, m] ...`` of trajectory ``traj[b, m]`` of group ``group[b]``."""
    frames = start[..., None] + torch.arange(length + 1, device=start.device)
    return trajectories[group[:, None, None], traj[..., None], frames]
