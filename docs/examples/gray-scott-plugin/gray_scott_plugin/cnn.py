"""``residual-cnn``: a small convolutional one-step operator for fields of any number of channels.

The network predicts the change of the state: x -> x + project(gelu(mix(gelu(lift(x))))), three
periodic convolutions. Predicting the change keeps an untrained network close to the identity,
which is where a one-step operator on finely sampled dynamics starts anyway.

It extends :class:`~weightspace.architecture.GridOperatorAdapter`, whose ``data_overrides`` set
``in_channels``, ``out_channels`` and ``grid_size`` from the system's state shape, so the same
architecture fits any ``[C, H, W]`` system with no ``--set``. Its weight graph has one node per
output channel of each convolution; the two hidden layers are two sets of interchangeable units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from weightspace.architecture import GridOperatorAdapter
from weightspace.graph import Layout, LayoutBuilder


@dataclass(frozen=True)
class ResidualCNNConfig:
    in_channels: int = 2
    out_channels: int = 2
    grid_size: tuple[int, int] = (16, 16)
    """Only the size of example inputs: the convolutions take any grid."""
    hidden: int = 16
    kernel_size: int = 3

    def __post_init__(self) -> None:
        if min(self.in_channels, self.hidden, *self.grid_size) <= 0:
            raise ValueError("in_channels, hidden and grid_size must be positive")
        if self.out_channels != self.in_channels:
            raise ValueError("x + f(x) needs out_channels == in_channels")
        if self.kernel_size <= 0 or self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd, so that the output grid equals the input grid")


class ResidualNet(nn.Module):
    def __init__(self, channels: int, hidden: int, kernel_size: int) -> None:
        super().__init__()
        conv = {"kernel_size": kernel_size, "padding": kernel_size // 2, "padding_mode": "circular"}
        self.lift = nn.Conv2d(channels, hidden, **conv)
        self.mix = nn.Conv2d(hidden, hidden, **conv)
        self.project = nn.Conv2d(hidden, channels, **conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(nn.functional.gelu(self.mix(nn.functional.gelu(self.lift(x)))))


class ResidualCNN(GridOperatorAdapter):
    name = "residual-cnn"
    Config = ResidualCNNConfig
    test_space = {"hidden": (2, 3, 5), "grid_size": ((6, 6), (8, 5)), "kernel_size": (1, 3)}
    profiles = {
        "quick": {"architecture": {"hidden": 16}, "zoo": {"expert_batch": 8}},
        "paper": {"architecture": {"hidden": 32, "kernel_size": 5}},
    }

    def _build(self) -> nn.Module:
        c = self.config
        return ResidualNet(c.in_channels, c.hidden, c.kernel_size)

    def layout(self) -> Layout:
        b = LayoutBuilder()
        b.dense("lift", "lift", permutation="hidden0", inputs=None)  # nodes: the hidden channels of lift
        b.dense("mix", "mix", permutation="hidden1", inputs="hidden0")  # its weight's axis 1 moves with lift's
        b.dense("project", "project", permutation=None, inputs="hidden1")  # output channels: fixed
        return b.build()
