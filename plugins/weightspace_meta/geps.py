"""GEPS (Kassai Koupai et al., NeurIPS 2024): low-rank adaptive conditioning of every layer.

Each weight tensor of the expert, read as a matrix ``[shape[0], rest]`` (a linear layer's
``(out, in)``, a convolution's ``(out, in * k * k)``, a spectral weight's ``(in, out * modes)``), is
modulated as ``W_e = W + A diag(c_e) B`` with its own ``A`` ``[shape[0], r]`` and ``B`` ``[r, rest]``,
and each bias as ``b_e = b + c_e B_b``, the rank r being the context size, as in the reference code
(``itsakk/geps``, ``geps/model/layers.py``: ``GEPSLinear``, ``GEPSConv*``, the spectral layers, which
also add a real change to complex weights). ``A`` and ``B`` start orthogonal and ``B_b`` at zero;
there is no regularization (the reference's is off). Training contexts start at zero; an unseen
environment's context starts at the mean of the training ones, as the reference's adaptation does.
"""

from __future__ import annotations

import torch
from torch import nn

from weightspace.errors import ConfigError
from weightspace.graph import Params
from weightspace_meta.context import ContextModel


class GepsModel(ContextModel):
    def __init__(self, base: Params, context_dim: int, seed: int = 0) -> None:
        super().__init__(base, context_dim)
        generator = torch.Generator().manual_seed(seed)
        self.left, self.right = nn.ParameterList(), nn.ParameterList()
        for name, p in zip(self.names, self.shared, strict=True):
            if p.dim() >= 2:
                rows, cols = p.shape[0], p[0].numel()
                if context_dim > max(rows, cols):
                    raise ConfigError(
                        f"GEPS rank {context_dim} is above the width of layer {name!r} "
                        f"({rows} x {cols}); choose a context size of at most {max(rows, cols)}"
                    )
                self.left.append(nn.Parameter(nn.init.orthogonal_(torch.empty(rows, context_dim), generator=generator)))
                self.right.append(
                    nn.Parameter(nn.init.orthogonal_(torch.empty(context_dim, cols), generator=generator))
                )
            else:  # a bias, scale or scalar: a linear map of the context
                self.left.append(nn.Parameter(torch.empty(0)))
                self.right.append(nn.Parameter(torch.zeros(context_dim, p.numel())))

    def delta(self, contexts: torch.Tensor) -> list[torch.Tensor]:
        changes = []
        for p, a, b in zip(self.shared, self.left, self.right, strict=True):
            change = torch.einsum("ir,er,rj->eij", a, contexts, b) if a.numel() else contexts @ b
            changes.append(change.reshape(len(contexts), *p.shape))
        return changes
