"""The ``descriptor`` prompter: a task descriptor made of moments of the observed frames.

The conditioning of "Task-Conditioned Diffusion Models in Weight Space for Rapid Transfer": dataset
statistics rather than physics. Per channel, over all observed frames and grid points: mean,
standard deviation, skewness and excess kurtosis of the values, and mean and standard deviation of
the changes between consecutive frames (zero for a single frame), through an MLP.
"""

from __future__ import annotations

import torch
from torch import nn

from weightspace.components import Context, Prompter
from weightspace.nn.prompter import PrompterConfig

MOMENTS = 6


def moments(frames: torch.Tensor) -> torch.Tensor:
    """Per-channel moments ``[B, C * 6]`` of frames ``[B, L, C, ...]`` (ODE states: ``[B, L, D]``)."""
    x = frames.unsqueeze(-1) if frames.dim() == 3 else frames.flatten(3)  # [B, L, C, points]
    values = x.transpose(1, 2).flatten(2)  # [B, C, L * points]
    mean = values.mean(dim=-1)
    std = values.std(dim=-1, correction=0)
    z = (values - mean[..., None]) / std[..., None].clamp_min(1e-6)
    change = torch.diff(x, dim=1).transpose(1, 2).flatten(2) if x.shape[1] > 1 else torch.zeros_like(values)
    stats = [mean, std, z.pow(3).mean(dim=-1), z.pow(4).mean(dim=-1) - 3, change.mean(dim=-1)]
    stats.append(change.std(dim=-1, correction=0))
    return torch.stack(stats, dim=-1).flatten(1)


class DescriptorPrompter(Prompter):
    name = "descriptor"
    Config = PrompterConfig

    def __init__(self, config: PrompterConfig, context: Context) -> None:
        super().__init__(config, context)
        channels = context.state_shape[0]
        h = config.hidden
        self.net = nn.Sequential(nn.Linear(MOMENTS * channels, h), nn.GELU(), nn.Linear(h, h), nn.GELU())
        self.out = nn.Linear(h, config.dim)

    @property
    def dim(self) -> int:
        return self.config.dim

    def forward(self, frames: torch.Tensor, env_params: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(moments(frames)))
