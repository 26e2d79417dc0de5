"""The ``mlp-node`` architecture: an MLP vector field dx/dt = f(x), integrated with torchdiffeq.

This is the paper's Lotka-Volterra expert (2-128-128-2, tanh, rk4). Rollouts integrate all B
vector fields in one ``odeint`` call: the state is ``[B, N, D]`` and the right-hand side evaluates
the B MLPs with ``vmap`` (an ensemble vector field), since ``odeint`` itself cannot be vmapped.

Node groups: ``layer{i}``, one node per output neuron (weight row and bias). Permutable hidden
units: ``hidden{i}`` for every hidden layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from weightspace.architecture import ArchitectureAdapter, Prediction
from weightspace.config import require_positive
from weightspace.graph import Layout, LayoutBuilder

ACTIVATIONS = {"tanh": nn.Tanh, "softplus": nn.Softplus, "gelu": nn.GELU, "relu": nn.ReLU}


@dataclass(frozen=True)
class MLPNodeConfig:
    state_dim: int = 2
    hidden_width: int = 128
    n_hidden_layers: int = 2
    activation: Literal["tanh", "softplus", "gelu", "relu"] = "tanh"
    solver: Literal["rk4", "midpoint", "euler", "dopri5"] = "rk4"
    substeps: int = 1
    """Fixed-step solvers take this many steps between saved frames."""
    tolerance: float = 1e-6
    """rtol and atol of the adaptive solver (dopri5)."""

    def __post_init__(self) -> None:
        require_positive(self, "state_dim", "hidden_width", "n_hidden_layers", "substeps", "tolerance")


class MLPVectorField(nn.Module):
    """An autonomous vector field: ``forward(x)`` is dx/dt at state ``x`` (``[..., D]``)."""

    def __init__(self, state_dim: int, hidden_width: int, n_hidden_layers: int, activation: str) -> None:
        super().__init__()
        widths = [state_dim] + [hidden_width] * n_hidden_layers + [state_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


class MLPNodeAdapter(ArchitectureAdapter):
    name = "mlp-node"
    Config = MLPNodeConfig
    prediction = Prediction.VECTOR_FIELD
    input_ndim = 1
    test_space = {
        "state_dim": (1, 2, 3),
        "hidden_width": (2, 5, 8),
        "n_hidden_layers": (1, 2, 3),
        "activation": ("tanh", "softplus", "gelu"),
    }

    profiles = {
        # trajectory fitting over windows of 10 frames (1 time unit), as the paper's LV experts
        "quick": {
            "architecture": {"hidden_width": 64},
            "zoo": {
                "unroll": 10,
                "lr": 3e-3,
                "expert_lr": 2e-3,
                "base_steps": 600,
                "expert_steps": 300,
                "expert_batch": 64,
            },
        },
        "paper": {"architecture": {}, "zoo": {"unroll": 10, "expert_batch": 128}},
    }

    @classmethod
    def data_overrides(cls, state_shape: tuple[int, ...]) -> dict[str, Any]:
        return {"state_dim": state_shape[0]}

    def _build(self) -> nn.Module:
        c = self.config
        return MLPVectorField(c.state_dim, c.hidden_width, c.n_hidden_layers, c.activation)

    def example_input(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """States uniform in [1, 3]^D, the Lotka-Volterra initial-condition box."""
        return 1 + 2 * torch.rand(n, self.config.state_dim, generator=generator)

    def solver_options(self, dt: float) -> dict[str, Any]:
        c = self.config
        if c.solver == "dopri5":
            return {"method": "dopri5", "rtol": c.tolerance, "atol": c.tolerance}
        return {"method": c.solver, "options": {"step_size": dt / c.substeps}}

    def layout(self) -> Layout:
        b = LayoutBuilder()
        n = self.config.n_hidden_layers + 1
        for i in range(n):
            b.dense(
                f"layer{i}",
                f"layers.{i}",
                permutation=f"hidden{i}" if i < n - 1 else None,
                inputs=f"hidden{i - 1}" if i > 0 else None,
            )
        return b.build()
