"""A complete third-party weightspace plugin: a small convolutional one-step operator, ``toy-cnn``.

Two 3x3 conv layers with a ReLU between them. Its weight graph has one node per output channel
(its 3x3 kernels from every input channel, and its bias); the hidden channels are interchangeable.
"""

from dataclasses import dataclass

import torch
from torch import nn

from weightspace.architecture import ArchitectureAdapter, Prediction
from weightspace.graph import Layout, LayoutBuilder
from weightspace.hookspecs import hookimpl


@dataclass(frozen=True)
class ToyCNNConfig:
    channels: int = 1
    hidden: int = 8
    grid_size: tuple[int, int] = (16, 16)


class ToyCNN(ArchitectureAdapter):
    name = "toy-cnn"
    Config = ToyCNNConfig
    prediction = Prediction.ONE_STEP
    input_ndim = 3  # a state is [C, H, W]
    test_space = {"channels": (1, 2), "hidden": (2, 3, 5), "grid_size": ((6, 6), (8, 5))}

    def _build(self) -> nn.Module:
        c = self.config
        return nn.Sequential(
            nn.Conv2d(c.channels, c.hidden, 3, padding=1, padding_mode="circular"),
            nn.ReLU(),
            nn.Conv2d(c.hidden, c.channels, 3, padding=1, padding_mode="circular"),
        )

    def layout(self) -> Layout:
        b = LayoutBuilder()
        b.dense("conv0", "0", permutation="hidden", inputs=None)  # parameters "0.weight", "0.bias"
        b.dense("conv1", "2", permutation=None, inputs="hidden")
        return b.build()

    def example_input(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.config.channels, *self.config.grid_size, generator=generator)


@hookimpl
def weightspace_architectures():
    return [ToyCNN]
