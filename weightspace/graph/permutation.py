"""Hidden-unit permutations: the symmetry every weight-space model should respect.

Reordering a set of interchangeable hidden units (and, with them, every parameter axis that the
spec's ``PermutationSpec`` lists) leaves the network's function unchanged. These helpers apply such
permutations to parameters or graphs, for data augmentation and for the equivariance tests.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from weightspace.errors import WeightError
from weightspace.graph.spec import GraphSpec
from weightspace.graph.weight_graph import Params, WeightGraph, check_params


def random_permutations(spec: GraphSpec, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """One random permutation per permutable set and per network: ``{name: [B, size]}``."""
    return {p.name: torch.rand(batch_size, p.size, generator=generator).argsort(dim=1) for p in spec.permutations}


def permute_params(spec: GraphSpec, params: Mapping[str, torch.Tensor], perms: Mapping[str, torch.Tensor]) -> Params:
    """Apply ``perms`` (``{name: [size]}`` shared by the batch, or ``[B, size]``) to batched params.

    Sets not named in ``perms`` stay as they are.
    """
    check_params(spec, params, batched=True, check_finite=False)
    out = dict(params)
    batch = next(iter(params.values())).shape[0]
    for name, perm in perms.items():
        ps = spec.permutation(name)
        index = _batched_index(name, perm, batch, ps.size)
        for ax in ps.axes:
            t = out[ax.param]
            dim = ax.axis + 1
            view = [batch] + [1] * (t.dim() - 1)
            view[dim] = ps.size
            moved = torch.take_along_dim(t.narrow(dim, ax.start, ps.size), index.view(view), dim=dim)
            if ps.size != t.shape[dim]:
                before = t.narrow(dim, 0, ax.start)
                after = t.narrow(dim, ax.start + ps.size, t.shape[dim] - ax.start - ps.size)
                moved = torch.cat([before, moved, after], dim=dim)
            out[ax.param] = moved
    return out


def apply_permutation(graph: WeightGraph, perms: Mapping[str, torch.Tensor]) -> WeightGraph:
    """The graph of the same networks with their hidden units reordered by ``perms``."""
    params = permute_params(graph.spec, graph.to_params(), perms)
    return WeightGraph.from_params(graph.spec, params, check_finite=False)


def _batched_index(name: str, perm: torch.Tensor, batch: int, size: int) -> torch.Tensor:
    perm = torch.as_tensor(perm)
    if perm.dtype not in (torch.int64, torch.int32):
        raise WeightError(f"permutation {name!r} must be an integer tensor, got {perm.dtype}")
    if perm.dim() == 1 and perm.shape[0] == size:
        perm = perm.expand(batch, -1)
    if perm.shape != (batch, size):
        raise WeightError(f"permutation {name!r} has shape {tuple(perm.shape)}, expected [{size}] or [{batch}, {size}]")
    if not torch.equal(perm.sort(dim=1).values, torch.arange(size, device=perm.device).expand(batch, -1)):
        raise WeightError(f"permutation {name!r} is not a permutation of 0..{size - 1}")
    return perm.long()
