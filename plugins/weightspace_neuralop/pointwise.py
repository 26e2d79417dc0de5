"""neuraloperator's 1x1 convolutions as matrix products.

neuraloperator builds lifting, projection, channel MLPs and linear skips from ``nn.Conv1d`` with
kernel size 1 over the flattened grid. Under ``vmap`` with batched weights (every expert its own),
PyTorch runs each as a grouped oneDNN convolution, which on CPU is slower than the same product as
a batched ``matmul`` (``benchmarks/expert_training.py``). :func:`as_matmuls` switches such modules
to :class:`PointwiseConv1d`, which computes ``weight @ x + bias``: the same parameters, names and
outputs, so weights move freely between it and a stock module (tested against neuraloperator's).
"""

from __future__ import annotations

import torch
from torch import nn


class PointwiseConv1d(nn.Conv1d):
    """A kernel-size-1 ``nn.Conv1d`` computed as a matrix product over channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(self.weight.squeeze(-1), x)
        return y if self.bias is None else y + self.bias.unsqueeze(-1)


def _is_pointwise(module: nn.Module) -> bool:
    return (
        type(module) is nn.Conv1d
        and module.kernel_size == (1,)
        and module.stride == (1,)
        and module.padding == (0,)
        and module.dilation == (1,)
        and module.groups == 1
    )


def as_matmuls(module: nn.Module) -> nn.Module:
    """``module`` with every plain 1x1 ``nn.Conv1d`` in it computed by :class:`PointwiseConv1d` (in place)."""
    for child in module.modules():
        if _is_pointwise(child):
            child.__class__ = PointwiseConv1d
    return module
