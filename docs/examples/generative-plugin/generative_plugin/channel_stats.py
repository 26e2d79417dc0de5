"""The ``channel-stats`` prompter: three statistics per channel of the observed frames, through an MLP.

Per channel, over all L observed frames and grid points: the mean, the standard deviation, and the
mean absolute change between consecutive frames (zero for a single frame). A field's state
``[C, H, W]`` has C channels; an ODE state ``[D]`` is read as D channels of one point each, so the
same code serves both. The statistics are standardized with their mean and spread over the
training trajectories (buffers set once by ``fit_scale``) before the MLP.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from weightspace.components import Context, Prompter
from weightspace.config import require_positive

STATS = 3
"""Statistics per channel: mean, standard deviation, mean absolute change."""


@dataclass(frozen=True)
class ChannelStatsConfig:
    # the keys of weightspace.nn.prompter.PrompterConfig, so a run config can swap prompters
    dim: int = 32
    """Width of the condition vector."""
    hidden: int = 32

    def __post_init__(self) -> None:
        require_positive(self, "dim", "hidden")


def channel_stats(frames: torch.Tensor, channels: int) -> torch.Tensor:
    """``[B, channels * 3]`` of frames ``[B, L, *state]`` (``[B, L, C, H, W]`` or ``[B, L, D]``)."""
    x = frames.reshape(*frames.shape[:2], channels, -1)  # [B, L, C, points]
    mean = x.mean(dim=(1, 3))
    std = x.std(dim=(1, 3), correction=0)
    change = x.diff(dim=1).abs().mean(dim=(1, 3)) if x.shape[1] > 1 else torch.zeros_like(mean)
    return torch.stack([mean, std, change], dim=-1).flatten(1)


class ChannelStatsPrompter(Prompter):
    name = "channel-stats"
    Config = ChannelStatsConfig

    def __init__(self, config: ChannelStatsConfig, context: Context) -> None:
        super().__init__(config, context)  # builds the auxiliary head, of width self.dim
        self.channels = context.state_shape[0]
        n_features = STATS * self.channels
        self.net = nn.Sequential(nn.Linear(n_features, config.hidden), nn.GELU(), nn.Linear(config.hidden, config.dim))
        self.register_buffer("stats_mean", torch.zeros(n_features))
        self.register_buffer("stats_std", torch.ones(n_features))

    @property
    def dim(self) -> int:
        return self.config.dim

    def fit_scale(self, trajectories: torch.Tensor) -> None:
        stats = channel_stats(trajectories.flatten(0, 1), self.channels)  # one row per trajectory
        spread = stats.std(dim=0, correction=0)
        self.stats_mean.copy_(stats.mean(dim=0))
        self.stats_std.copy_(spread.clamp_min(max(1e-3 * float(spread.max()), 1e-6)))

    def forward(self, frames: torch.Tensor, env_params: torch.Tensor) -> torch.Tensor:
        stats = channel_stats(frames, self.channels)
        return self.net((stats - self.stats_mean) / self.stats_std)
