"""CoDA (Kirchmeyer et al., ICML 2022): ``theta_e = theta + W xi_e``, a linear hypernetwork of a small context.

Every parameter of the expert moves along ``context_dim`` shared directions: ``W`` has one row per
real number of the network (a complex weight counts its real and imaginary parts), as in the
reference code (``yuan-yin/CoDA``, ``ode_model.py``: one bias-free linear layer onto all of the
root network's parameters). Its regularization is the reference's default ``l12m-l2c``: a group
lasso over the rows of ``W`` (``lambda_w`` times the sum of their L2 norms: a parameter that needs
no adaptation gets none) and ``lambda_xi`` times the squared norm of the contexts. Contexts start at
zero for training, as there, and for adaptation too unless the ``coda`` method's ``start`` says
otherwise (:class:`weightspace_meta.methods.Coda`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from weightspace.errors import ConfigError
from weightspace.graph import Params
from weightspace_meta.context import ContextModel, as_shaped, flat_real


class CodaModel(ContextModel):
    def __init__(self, base: Params, context_dim: int, lambda_w: float, lambda_xi: float, seed: int = 0) -> None:
        super().__init__(base, context_dim)
        for name, value in (("lambda_w", lambda_w), ("lambda_xi", lambda_xi)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"CoDA's {name} must be a finite number >= 0, got {value!r}")
        self.lambda_w, self.lambda_xi = float(lambda_w), float(lambda_xi)
        # nn.Linear's default initialization, as the reference's hypernetwork (bias-free Linear) has:
        # the contexts start at zero, so W must not, or neither would get a gradient
        bound, generator = 1 / math.sqrt(context_dim), torch.Generator().manual_seed(seed)
        self.directions = nn.ParameterList(
            [
                nn.Parameter((2 * torch.rand(flat_real(p).numel(), context_dim, generator=generator) - 1) * bound)
                for p in self.shared
            ]
        )

    def delta(self, contexts: torch.Tensor) -> list[torch.Tensor]:
        return [as_shaped(contexts @ w.T, p) for w, p in zip(self.directions, self.shared, strict=True)]

    def penalty(self, contexts: torch.Tensor) -> torch.Tensor:
        rows = sum(w.norm(dim=1).sum() for w in self.directions)
        return self.lambda_w * rows + self.lambda_xi * contexts.pow(2).sum()
